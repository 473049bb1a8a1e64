"""Issue 16 benchmark: N queued requests on one SISA shard, one retrain per request vs one batch.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_service.py --requests 8

Trains one digits SISA store, copies it twice, queues the same N requests (ids all from one
shard) in each copy's request store, and runs the service's worker on each: with
``batch_limit=1`` (one request per claim: one retrain per request) and with ``batch_limit=N``
(one claim, one ``Sisa.forget_many``: the shard retrained once). Same run, same machine, wall
and CPU time of the worker, their ratio, and a check that both end with the same served weights.
Writes ``benchmarks/results/service.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from obliviate.data.source import DataSource
from obliviate.engine.keys import SigningKey
from obliviate.engine.sisa import Sisa, SisaConfig
from obliviate.machine import format_load, load_average
from obliviate.policy import make_plan, parse_request
from obliviate.service import Settings, Worker, write_keys
from obliviate.tasks.classification import RecipeConfig

REPO = Path(__file__).resolve().parents[1]


def _settings(root: Path, deployments: Path, key: Path, batch: int) -> Settings:
    root.mkdir(parents=True, exist_ok=True)
    keys = write_keys(root / "keys.json", [{"key": "bench", "name": "bench", "role": "operator"}])
    return Settings(store=root / "service", keys_file=keys, deployments_file=deployments, signing_key=key,
                    batch_limit=batch)


def _queue(settings: Settings, docs: list[dict]) -> None:
    from obliviate.service.worker import open_store

    store = open_store(settings)
    deps = settings.deployments()
    for doc in docs:
        plan = make_plan(parse_request(doc), deps)
        store.create(request_id=doc["request_id"], owner="bench", deployment=doc["deployment"], request=doc,
                     due=plan.deadline.due.isoformat(), by="bench", role="requester", why="benchmark")
        for state in ("planned", "awaiting review", "approved", "queued"):
            store.transition(doc["request_id"], state, by="bench", role="operator", why="benchmark",
                             plan=plan.to_dict() if state == "planned" else None)
    store.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=8, help="N requests, all on one shard [8]")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "service.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-service-"))
    key = tmp / "secret" / "ledger.pem"
    signing = SigningKey.load_or_create(key)
    settings_doc = {"shards": args.shards, "slices": 1, "epochs": args.epochs}
    deployments = tmp / "deployments.json"
    deployments.write_text(json.dumps({"deployments": [{"name": "digits-sisa", "model": "sisa", "dataset": "digits",
                                                         "access": "outputs", "settings": settings_doc}]}))
    base = tmp / "trained"
    config = SisaConfig(shards=args.shards, slices=1, recipe=RecipeConfig(epochs=args.epochs).resolve("digits"),
                        seed=0)
    t0 = time.perf_counter()
    with Sisa(config, store=base, key_file=signing) as sisa:
        sisa.fit(DataSource(dataset="digits"))
        shard0 = sisa.assignment()[0][0]
    train_s = time.perf_counter() - t0
    today = dt.date.today().isoformat()
    docs = [{"format": "obliviate-request-v1", "request_id": f"bench-{i}", "who": "data_subject",
             "what": {"kind": "examples", "ids": [shard0[i]]}, "why": "erasure", "jurisdiction": "EU",
             "received": today, "deployment": "digits-sisa"} for i in range(args.requests)]
    rows, weights = {}, {}
    for mode, batch in (("one retrain per request", 1), ("batched", args.requests)):
        root = tmp / f"mode-{batch}"
        settings = _settings(root, deployments, key, batch)
        shutil.copytree(base, settings.workdir / "digits-sisa")
        _queue(settings, docs)
        worker = Worker(settings)
        w, c = time.perf_counter(), time.process_time()
        done = worker.run(until_empty=True, max_batches=args.requests + 1)
        wall, cpu = time.perf_counter() - w, time.process_time() - c
        assert done == args.requests, done
        states = [worker.store.get(d["request_id"]).state for d in docs]
        assert states == ["completed"] * args.requests, states
        worker.store.close()
        with Sisa.open(settings.workdir / "digits-sisa", key_file=signing) as s:
            version = s.version_
            weights[mode] = {k: v.clone() for k, v in s.shard_weights(0).items()}
        rows[mode] = {"wall_s": wall, "cpu_s": cpu, "claims": len(worker.batches), "versions": version - 1}
    same = all(torch.equal(weights["batched"][k], weights["one retrain per request"][k])
               for k in weights["batched"])
    one, many = rows["one retrain per request"], rows["batched"]
    load = format_load(load_average())
    lines = [f"# Deletion service: batched retrains ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             f"digits, SISA {args.shards} shards x 1 slice, {args.epochs} epochs, {args.requests} requests of one "
             f"id each, all on shard 0; the service's worker on fresh copies of one trained store "
             f"(training {train_s:.1f} s); torch 1 thread; load average {load}.", "",
             "| mode | claims | model versions published | wall s | CPU s |", "|---|---|---|---|---|",
             *[f"| {m} | {r['claims']} | {r['versions']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} |"
               for m, r in rows.items()], "",
             f"Speed-up of batching: {one['wall_s'] / many['wall_s']:.2f}x wall, {one['cpu_s'] / many['cpu_s']:.2f}x "
             f"CPU. Shard 0's served weights identical in both modes: {same}. Both are exact removal; each "
             "request has its own signed certificate."]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))  # noqa: T201 - a benchmark script reports on stdout
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
