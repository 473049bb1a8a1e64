"""Deterministic causal-LM training on question-answer pairs, loss over answer tokens only.

The prompt tokens are context, not targets (labels ``-100``), so a model learns
to answer, not to recite questions; removal methods and metrics use the same
answer-only convention. Padding is on the right for training and scoring, on
the left for generation.

Determinism: shuffling draws from its own ``torch.Generator`` seeded from the
run seed; the built-in GPT-2 has no dropout; CPU kernels are deterministic, so
the same data, tokenizer, spec, recipe and seed give the same weights bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.data.qa import QADataset
from obliviate.errors import ConfigError
from obliviate.models.lm import GPT2Spec, QAFormat, build_gpt2
from obliviate.models.lm_generate import greedy_answers
from obliviate.progress import NullProgress, Progress
from obliviate.training.cache import ModelCache, TrainedModel, cache_key
from obliviate.training.trainer import batch_indices, seeded_generator

__all__ = [
    "LMRecipe",
    "LMTrainResult",
    "collate_qa",
    "encode_dataset",
    "answer_nll",
    "answer_positions_logits",
    "input_logits",
    "train_lm",
    "train_lm_cached",
    "lm_cache_key",
    "exact_answer_accuracy",
    "dataset_fingerprint",
    "tokenizer_fingerprint",
]

log = logging.getLogger(__name__)

Encoded = tuple[tuple[int, ...], tuple[int, ...]]  # (prompt ids, answer ids)


@dataclass(frozen=True)
class LMRecipe:
    """How a language model is fit to QA pairs (also what the retain-only model reuses).

    Defaults memorise the built-in persons corpus with the built-in GPT-2
    (see ``obliviate.tasks.lm_models``); AdamW with linear warm-up then cosine decay.
    """

    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup_fraction: float = 0.03
    schedule: Literal["cosine", "constant"] = "cosine"
    max_grad_norm: float | None = 1.0
    # In-context episodes: this share of examples per epoch is shown after ``context_size``
    # other facts about the same subject, half the time with its own fact among them, so the
    # model can learn to use its prompt (copy a fact given there, else recall). Off by default:
    # on the persons corpus, 10% episodes left the 28-epoch GPT-2 at 54% exact answers instead
    # of 95% (facts at shifted absolute positions are much slower to memorise).
    context_fraction: float = 0.0
    context_size: int = 2

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.context_fraction <= 1:
            problems.append(f"The 'context_fraction' parameter of LMRecipe must be in [0, 1]; got {self.context_fraction!r} instead.")
        if not isinstance(self.context_size, int) or self.context_size < 1:
            problems.append(f"The 'context_size' parameter of LMRecipe must be an int >= 1; got {self.context_size!r} instead.")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            problems.append(f"The 'epochs' parameter of LMRecipe must be an int >= 1; got {self.epochs!r} instead.")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            problems.append(f"The 'batch_size' parameter of LMRecipe must be an int >= 1; got {self.batch_size!r} instead.")
        if not self.lr > 0:
            problems.append(f"The 'lr' parameter of LMRecipe must be > 0; got {self.lr!r} instead.")
        if self.weight_decay < 0:
            problems.append(f"The 'weight_decay' parameter of LMRecipe must be >= 0; got {self.weight_decay!r} instead.")
        if not 0 <= self.warmup_fraction < 1:
            problems.append(f"The 'warmup_fraction' parameter of LMRecipe must be in [0, 1); got {self.warmup_fraction!r} instead.")
        if self.schedule not in ("cosine", "constant"):
            problems.append(f"The 'schedule' parameter of LMRecipe must be 'cosine' or 'constant'; got {self.schedule!r} instead.")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            problems.append(f"The 'max_grad_norm' parameter of LMRecipe must be > 0 or None; got {self.max_grad_norm!r} instead.")
        if problems:
            raise ConfigError("Invalid language-model training recipe:", problems)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not self.context_fraction:  # no episodes: the context size is moot (and cache keys stay stable)
            out.pop("context_fraction")
            out.pop("context_size")
        return out


@dataclass
class LMTrainResult:
    wall_s: float
    steps: int
    epochs: int
    final_loss: float
    history: list[float] = field(default_factory=list)


# --------------------------------------------------------------------------- batching


def encode_dataset(fmt: QAFormat, data: QADataset) -> list[Encoded]:
    """``(prompt_ids, answer_ids)`` for every example, in order."""
    return [fmt.encode(ex.question, ex.answer) for ex in data]


def collate_qa(items: Sequence[Encoded], pad_id: int, *, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (answer tokens only)."""
    length = max(len(p) + len(a) for p, a in items)
    ids = torch.full((len(items), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), length), dtype=torch.long)
    labels = torch.full((len(items), length), -100, dtype=torch.long)
    for i, (p, a) in enumerate(items):
        n = len(p) + len(a)
        ids[i, :n] = torch.tensor(p + a, dtype=torch.long)
        mask[i, :n] = 1
        labels[i, len(p):n] = torch.tensor(a, dtype=torch.long)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def shifted(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Align next-token logits with their labels: ``(logits[:, :-1], labels[:, 1:])``."""
    return logits[:, :-1, :], labels[:, 1:]


# Model types whose logits are exactly ``lm_head(last hidden state)`` (no soft-capping or
# scaling), so the head can be applied at answer positions only.
_PLAIN_HEAD = frozenset({"gpt2", "llama", "mistral", "qwen2", "qwen3", "gpt_neox", "opt", "phi3", "smollm3"})


def input_logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits of the full forward pass at the input's positions, ``(batch, length, vocab)``.

    Prompt tuning (peft) prepends virtual tokens to the output; they are dropped.
    """
    full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return full[:, full.shape[1] - batch["input_ids"].shape[1]:]


def _split_head(model: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """``(decoder, output layer)`` of a plain-head model, or None where the head must not be split off.

    The decoder is ``model.transformer`` for GPT-2, ``model.model`` for Llama (the
    ``base_model_prefix``). A peft wrapper is unwrapped first: LoRA-style adapters are
    injected into the wrapped model's layers, so its decoder carries them. Read through the
    wrapper, the prefix attribute would resolve to the whole wrapped ``*ForCausalLM`` (peft
    forwards ``.model``), whose output has logits but no hidden states. Prompt-learning
    adapters (prompt/prefix tuning) act in the wrapper's own forward: no split there.
    """
    inner = model
    get_base = getattr(model, "get_base_model", None)
    if callable(get_base):
        if getattr(getattr(model, "active_peft_config", None), "is_prompt_learning", False):
            return None
        inner = get_base()
    if getattr(getattr(inner, "config", None), "model_type", None) not in _PLAIN_HEAD:
        return None
    prefix = getattr(type(inner), "base_model_prefix", None)
    # a direct child only: attribute lookup on wrappers may forward to something else
    base = inner._modules.get(prefix) if isinstance(prefix, str) and prefix else None
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    if not isinstance(base, nn.Module) or base is inner or not isinstance(head, nn.Module):
        return None
    return base, head


def answer_positions_logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Next-token logits at the answer positions only: ``(logits (N, V), targets (N,), row (N,))``.

    ``row`` says which example each answer token belongs to. For plain-head models the
    output layer runs only where a label is (a third of the positions in short QA),
    which is most of the cost of a small model's forward pass with a large vocabulary.
    """
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    rows = mask.nonzero(as_tuple=True)[0]
    split = _split_head(model)
    if split is not None:
        base, head = split
        hidden = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        logits = head(hidden[:, :-1][mask])
    else:
        logits = input_logits(model, batch)[:, :-1][mask]
    return logits.float(), labels[mask], rows


def answer_nll(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example summed negative log-likelihood of the answer tokens, and their counts."""
    logits, targets, rows = answer_positions_logits(model, batch)
    tok = F.cross_entropy(logits, targets, reduction="none")
    n = batch["input_ids"].shape[0]
    nll = torch.zeros(n, dtype=tok.dtype, device=tok.device).index_add(0, rows, tok)
    count = torch.bincount(rows, minlength=n)
    return nll, count


# --------------------------------------------------------------------------- training


def _lr_lambda(recipe: LMRecipe, total: int) -> Any:
    warm = int(recipe.warmup_fraction * total)

    def f(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if recipe.schedule == "constant":
            return 1.0
        progress = (step - warm) / max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


class _Episodes:
    """Draws the in-context episodes of :attr:`LMRecipe.context_fraction` (own seeded stream)."""

    def __init__(self, fmt: QAFormat, data: QADataset, recipe: LMRecipe, seed: int) -> None:
        self.fmt, self.data, self.recipe = fmt, data, recipe
        self.gen = seeded_generator(seed, 0x1A5)
        by_subject: dict[str, list[int]] = {}
        for i, ex in enumerate(data):
            by_subject.setdefault(ex.subject, []).append(i)
        self.others = [[j for j in by_subject[ex.subject] if j != i] for i, ex in enumerate(data)]

    def _rand(self, n: int) -> int:
        return int(torch.randint(0, n, (1,), generator=self.gen))

    def item(self, i: int, plain: Encoded) -> Encoded:
        if float(torch.rand(1, generator=self.gen)) >= self.recipe.context_fraction or not self.others[i]:
            return plain
        pool = self.others[i]
        order = torch.randperm(len(pool), generator=self.gen)[: self.recipe.context_size].tolist()
        ctx = [pool[k] for k in order]
        if self._rand(2):  # half the episodes show the answer itself: learn to copy
            ctx[self._rand(len(ctx))] = i
        ex = self.data[i]
        prompt = self.fmt.context_prompt_ids(ex.question, [(self.data[j].question, self.data[j].answer) for j in ctx])
        return prompt, plain[1]


def train_lm(model: nn.Module, fmt: QAFormat, data: QADataset, recipe: LMRecipe, *, seed: int,
             device: str | torch.device = "cpu", progress: Progress | None = None,
             description: str = "train lm") -> LMTrainResult:
    """Train ``model`` in place on ``data`` (loss over answer tokens); returns timings and losses."""
    if len(data) == 0:
        raise ConfigError("train_lm needs at least one QA example.")
    progress = progress or NullProgress()
    model.to(device).train()
    encoded = encode_dataset(fmt, data)
    per_epoch = (len(encoded) + recipe.batch_size - 1) // recipe.batch_size
    total = per_epoch * recipe.epochs
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(recipe, total))
    gen = seeded_generator(seed, 0x1A4)
    episodes = _Episodes(fmt, data, recipe, seed) if recipe.context_fraction > 0 else None
    history: list[float] = []
    steps = 0
    t0 = time.perf_counter()
    with progress.task(description, total=recipe.epochs) as bar:
        for epoch in range(recipe.epochs):
            total_nll, total_tok = 0.0, 0
            for idx in batch_indices(len(encoded), recipe.batch_size, gen):
                items = [encoded[int(i)] if episodes is None else episodes.item(int(i), encoded[int(i)])
                         for i in idx]
                batch = collate_qa(items, fmt.pad_id, device=device)
                nll, count = answer_nll(model, batch)
                loss = nll.sum() / count.sum().clamp_min(1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if recipe.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, recipe.max_grad_norm)
                opt.step()
                sched.step()
                steps += 1
                total_nll += float(nll.detach().sum())
                total_tok += int(count.sum())
            history.append(total_nll / max(1, total_tok))
            bar.advance(1, loss=history[-1])
            log.debug("%s epoch %d answer loss %.4f", description, epoch, history[-1])
    model.eval()
    return LMTrainResult(wall_s=time.perf_counter() - t0, steps=steps, epochs=recipe.epochs,
                         final_loss=history[-1], history=history)


def exact_answer_accuracy(model: nn.Module, fmt: QAFormat, data: QADataset, *, batch_size: int = 64,
                          device: str | torch.device = "cpu") -> float:
    """Share of questions whose greedy answer equals the true answer exactly (after stripping)."""
    answers = greedy_answers(model, fmt, [ex.question for ex in data], batch_size=batch_size, device=device,
                             max_new_tokens=max(len(fmt.encode(ex.question, ex.answer)[1]) for ex in data) + 2)
    return sum(a == ex.answer.strip() for a, ex in zip(answers, data, strict=True)) / max(1, len(data))


# --------------------------------------------------------------------------- cache


def dataset_fingerprint(data: QADataset) -> str:
    """Hash of every example's id, question and answer, in order."""
    h = hashlib.sha256()
    for ex in data:
        h.update(json.dumps([ex.id, ex.question, ex.answer]).encode())
    return h.hexdigest()[:24]


def tokenizer_fingerprint(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    blob = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def lm_cache_key(spec: GPT2Spec, fmt: QAFormat, data: QADataset, recipe: LMRecipe, seed: int) -> str:
    """What determines a trained GPT-2: data, tokenizer, prompt format, spec, recipe and seed."""
    return cache_key(kind="gpt2-qa", data=dataset_fingerprint(data), tokenizer=tokenizer_fingerprint(fmt.tokenizer),
                     format=fmt.describe(), spec=spec.to_dict(), recipe=recipe.to_dict(), seed=seed)


def train_lm_cached(spec: GPT2Spec, fmt: QAFormat, data: QADataset, recipe: LMRecipe, *, seed: int,
                    cache: ModelCache | None = None, progress: Progress | None = None,
                    device: str | torch.device = "cpu", description: str = "train lm") -> TrainedModel:
    """Build a GPT-2 and train it on ``data``, or load the identical one from the cache.

    The key covers the data, the tokenizer, the prompt format, spec, recipe and
    seed; the recorded training time travels with the checkpoint.
    """
    key = lm_cache_key(spec, fmt, data, recipe, seed)
    model = build_gpt2(spec, len(fmt.tokenizer), seed=seed, eos_token_id=fmt.eos_id)
    if cache is not None:
        manifest = cache.load(key, model)
        if manifest is not None:
            log.info("%s: reusing cached model %s", description, key)
            return TrainedModel(model.to(device).eval(), float(manifest["wall_s"]), True, key, manifest)
    result = train_lm(model, fmt, data, recipe, seed=seed, device=device, progress=progress, description=description)
    manifest = {"key": key, "dataset": data.name, "n_train": len(data), "spec": spec.to_dict(),
                "recipe": recipe.to_dict(), "seed": seed, "wall_s": result.wall_s, "steps": result.steps,
                "final_loss": result.final_loss, "torch": torch.__version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if cache is not None:
        cache.store(key, model, manifest)
    return TrainedModel(model.eval(), result.wall_s, False, key, manifest)
