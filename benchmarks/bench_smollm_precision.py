"""Issue 17: SmolLM2-135M training and forward speed in float32 and under bf16 autocast, on this CPU.

    flock /tmp/obliviate-bench.lock .venv/bin/python benchmarks/bench_smollm_precision.py

Times a few full fine-tuning steps (AdamW, batch 8 x 64 tokens) and forward passes, each in
float32 and under ``torch.autocast("cpu", dtype=torch.bfloat16)``, alternating the two so a
change in the machine's load hits both; and measures how far bf16 token log-probabilities
are from float32 ones (why evaluation stays in float32). Writes
``benchmarks/results/tofu_smollm/precision.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache-dir", default=None, help="where the converted model is kept (default: the model cache)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/tofu_smollm/precision.json")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from obliviate.fileio import atomic_write_json
    from obliviate.machine import load_average, machine_info
    from obliviate.models.lm import load_lm
    from obliviate.models.smollm2 import ensure_smollm2
    from obliviate.training.cache import default_cache_dir

    folder = ensure_smollm2(args.cache_dir or default_cache_dir())
    model, _ = load_lm(folder)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, model.config.vocab_size, (8, 64), generator=gen)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    load_before = load_average()
    train: dict[str, list[float]] = {"fp32": [], "bf16": []}
    fwd: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(args.rounds):
        for mode in ("fp32", "bf16"):
            model.train()
            t = time.perf_counter()
            for _ in range(args.steps):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
                    loss = model(x, labels=x).loss
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
            train[mode].append(args.steps * x.numel() / (time.perf_counter() - t))
            model.eval()
            with torch.no_grad():
                t = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
                    model(x)
                fwd[mode].append(x.numel() / (time.perf_counter() - t))
    with torch.no_grad():
        lp32 = torch.log_softmax(model(x).logits.float(), -1)[:, :-1].gather(-1, x[:, 1:, None])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lpbf = torch.log_softmax(model(x).logits.float(), -1)[:, :-1].gather(-1, x[:, 1:, None])
    err = (lp32 - lpbf).abs()
    best = {k: max(v) for k, v in train.items()}
    out = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine_info(),
        "load_before": load_before, "load_after": load_average(), "threads": 1,
        "batch": list(x.shape), "train_tokens_per_s": train, "forward_tokens_per_s": fwd,
        "train_speedup_bf16_best": best["bf16"] / best["fp32"],
        "forward_speedup_bf16_best": max(fwd["bf16"]) / max(fwd["fp32"]),
        "bf16_logprob_abs_error": {"mean": float(err.mean()), "max": float(err.max())},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, out)
    print(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
