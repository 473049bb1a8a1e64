# ~530 lines: the whole audit wiring (run folder, replica groups, attacks, verdicts), read top to bottom.
"""Strong audits of a classifier bench run: read the run, train the replica groups, run the attacks.

``obliviate audit --run DIR`` reads a finished ``obliviate bench`` run (its resolved
``config.json``, ``results.json`` and ``meta.json``), rebuilds the same data and forget
set for one of the run's seeds (checking the data's fingerprint), trains the replica models
the strong attacks need, runs every selected attack of :data:`obliviate.audit.attacks.ATTACKS`
for every method of the run, and returns the ``audit.json`` object.

Replica groups (N models each, N = ``--replicas``; trained with the run's own recipe by
:mod:`obliviate.engine.replicas`, cached in the shared model cache):

* ``trained``   N models trained on the whole training set (forget set included);
* ``retrained`` N models trained on the retain set only (the reference side);
* ``oracle``    N more retain-only models with other seeds: what the exact method
  ``retrain`` produces, audited like any method;
* ``unlearned[m]`` for every approximate method m: each ``trained`` model unlearned by
  m with the run's settings for m.

The row ``original`` audits the ``trained`` models themselves. This module only wires:
the attack math lives in :mod:`obliviate.audit.attacks`, the verdicts in
:mod:`obliviate.audit.verdicts`, model I/O in :mod:`obliviate.engine.replicas`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from obliviate.audit.attacks import ATTACKS, AttackInput, RelearnAccuracies, Thresholds, attack_names, parse_attacks
from obliviate.audit.attacks.population import replicas_loss_auc, run_numbers
from obliviate.audit.verdicts import BASELINE, REFERENCE, caveat_notes, flag_sentences, method_verdict
from obliviate.errors import ConfigError, DataError
from obliviate.progress import NullProgress, Progress
from obliviate.registry import closest

__all__ = ["AuditSettings", "Thresholds", "load_run", "parse_attacks", "run_audit", "write_audit"]

FORMAT = "obliviate-audit-v1"
#: replicas per side needed by the model-based attacks: two per LiRA half (a variance
#: needs two models), and U-LiRA fits on half the models and holds out the other half.
MIN_REPLICAS = 4
_SEED_TAGS = {"trained": 0xA7D1, "retrained": 0xA7D2, "oracle": 0xA7D3}


@dataclass(frozen=True)
class AuditSettings:
    """What ``obliviate audit`` does (the CLI's flags)."""

    attacks: tuple[str, ...] = tuple(attack_names())
    replicas: int = 16
    methods: tuple[str, ...] | None = None       # None: every method of the run
    seed: int | None = None                      # which of the run's seeds; None: its first
    relearn_steps: int = 20
    relearn_lr: float | None = None              # None: the run's training learning rate
    relearn_models: int = 16
    ulira_repeats: int = 8
    eval_examples: int = 5000                    # retain/test examples for accuracies (seeded sample)
    chunk: int = 8                               # replicas per training job
    executor: str = "serial"
    workers: int | None = None                   # processes (process) or CPUs of a local Ray instance (ray)
    ray_address: str | None = None               # join this Ray cluster instead of starting a local one
    threads: int | None = None
    device: str | None = None                    # None: the run's device
    precision: str = "float32"                   # replica training: "float32" or "bfloat16" (autocast matmuls)
    use_cache: bool = True
    cache_dir: str | None = None                 # None: the run's cache_dir, else the default cache
    thresholds: Thresholds = field(default_factory=Thresholds)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["attacks"] = list(self.attacks)
        d["methods"] = None if self.methods is None else list(self.methods)
        return d


# --------------------------------------------------------------------------- the run folder
RUN_HINT = "Give the output folder of `obliviate bench` (the --out of the run; it holds results.json and config.json)."


@dataclass
class RunFiles:
    """A bench run directory, read and checked; relative paths of its config resolved."""

    path: Path
    config: Any                    # BenchConfig
    records: list[dict[str, Any]]
    meta: dict[str, Any]
    results_sha256: str
    #: relative paths of config.json found in none of the folders they could be relative to: (what, value, looked)
    unresolved: list[tuple[str, str, list[str]]] = field(default_factory=list)

    def methods(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            seen.setdefault(r["method"], None)
        return list(seen)

    def recorded_fingerprint(self) -> str | None:
        """The training data's fingerprint the bench recorded (meta.json, else a results.json record)."""
        found = self.meta.get("data_fingerprint")
        if found is None:
            found = next((r["data_fingerprint"] for r in self.records if r.get("data_fingerprint")), None)
        return None if found is None else str(found)

    def check_data(self, train: Any, seed: int) -> None:
        """Refuse to audit when the rebuilt training data is not the data of the run."""
        recorded = self.recorded_fingerprint()
        if recorded is not None and recorded != train.fingerprint:
            raise DataError(
                f"The run's data changed since the run: {self.path} records training-data fingerprint "
                f"{recorded[:16]}..., rebuilding the data from its config.json gives {train.fingerprint[:16]}.... "
                "Restore the data the run used, or re-run `obliviate bench` on the current data, then audit again."
            )

    def check_forget_size(self, n_forget: int, seed: int) -> None:
        """Older runs record no fingerprint: then at least the forget-set size must match."""
        if self.recorded_fingerprint() is not None:
            return
        expected = (self.meta.get("seeds", {}).get(str(seed)) or {}).get("n_forget")
        if expected is not None and int(expected) != n_forget:
            raise DataError(
                f"The run's data no longer matches: seed {seed} had {expected} forget examples, rebuilding "
                f"the data gives {n_forget}. Re-run the benchmark with this version of the data."
            )


def _bases(run: Path, meta: dict[str, Any]) -> list[Path]:
    """Where a relative path of the run's config may be relative to: where the run was made, its parent, cwd."""
    out: list[Path] = []
    made_in = meta.get("cwd") or meta.get("working_dir")
    for p in ([Path(made_in)] if made_in else []) + [run.resolve().parent, Path.cwd()]:
        if p not in out:
            out.append(p)
    return out


def _resolve_paths(raw: dict[str, Any], bases: list[Path]) -> list[tuple[str, str, list[str]]]:
    """Make the relative paths of ``raw`` (a config.json) absolute, in place; return those found nowhere."""
    missing: list[tuple[str, str, list[str]]] = []

    def resolve(value: str, what: str, *, required: bool) -> str:
        p = Path(value).expanduser()
        if p.is_absolute():
            return str(p)
        for base in bases:
            if (base / p).exists():
                return str(base / p)
        if required:
            missing.append((what, value, [str(b / p) for b in bases]))
        return str(bases[0] / p) if what == "cache_dir" else value

    data = raw.get("data")
    if isinstance(data, dict):
        for key in ("path", "test_path"):
            if data.get(key):
                data[key] = resolve(str(data[key]), f"data.{key}", required=True)
    for key, required in (("data_dir", False), ("model_weights", False), ("cache_dir", False)):
        if raw.get(key):
            raw[key] = resolve(str(raw[key]), key, required=required)
    forget = raw.get("forget")
    if isinstance(forget, str) and forget.startswith("ids:"):
        raw["forget"] = "ids:" + resolve(forget[4:], "the forget-set ids file", required=True)
    return missing


def load_run(path: str | Path) -> RunFiles:
    """Read a classifier bench run directory; typed errors say what is missing and how to fix it."""
    import hashlib
    import json

    from obliviate.tasks.classification import BenchConfig
    from obliviate.config import validate

    run = Path(path)
    if not run.exists():
        raise ConfigError(f"--run {run}: no such directory. {RUN_HINT}")
    if not run.is_dir():
        raise ConfigError(f"--run {run} is a file, not a directory. {RUN_HINT}")
    missing = [name for name in ("config.json", "results.json") if not (run / name).is_file()]
    if missing:
        raise ConfigError(f"--run {run} is not a bench run: {' and '.join(missing)} missing. {RUN_HINT}")
    try:
        raw_cfg = json.loads((run / "config.json").read_text())
        results_bytes = (run / "results.json").read_bytes()
        records = json.loads(results_bytes)
        meta = json.loads((run / "meta.json").read_text()) if (run / "meta.json").is_file() else {}
    except json.JSONDecodeError as exc:
        raise DataError(f"--run {run}: a JSON file is corrupt ({exc}). Re-run the benchmark.") from None
    task = raw_cfg.get("task", "classification") if isinstance(raw_cfg, dict) else None
    if task != "classification":
        raise ConfigError(
            f"--run {run} is a {task!r} run; obliviate audit works on classifier runs (task 'classification'). "
            "Language-model runs carry their own attacks in their reports."
        )
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) and "method" in r for r in records):
        raise DataError(f"--run {run}: results.json holds no per-method records. Re-run the benchmark.")
    unresolved = _resolve_paths(raw_cfg, _bases(run, meta if isinstance(meta, dict) else {}))
    cfg = validate(BenchConfig, raw_cfg, source=f"the run's config.json ({run / 'config.json'})")
    return RunFiles(run, cfg, records, meta, hashlib.sha256(results_bytes).hexdigest(), unresolved)


def load_bundle(run: RunFiles) -> Any:
    """The run's data exactly as the bench runner built it (user data, built-in, train subset)."""
    from obliviate.data.builtin import load_dataset
    from obliviate.data.dataset import DataBundle
    from obliviate.errors import DatasetNotFoundError

    if run.unresolved:
        what, value, looked = run.unresolved[0]
        raise DatasetNotFoundError(
            f"The run's config.json names {what} {value!r}, a relative path that exists in none of the folders "
            "it could be relative to (where the run was made, the run folder's parent, the current folder). "
            "Run the audit where the bench ran, or give that path as an absolute one in config.json.",
            searched=looked)
    cfg = run.config
    bundle = cfg.data.load().bundle if cfg.data is not None else load_dataset(cfg.dataset, data_dir=cfg.data_dir)
    subset = getattr(cfg, "train_subset", None)
    if subset is not None:
        bundle = DataBundle(train=bundle.train.stratified_sample(subset, seed=getattr(cfg, "subset_seed", 0)),
                            test=bundle.test, name=bundle.name)
    return bundle


def _check_settings(s: AuditSettings) -> None:
    from obliviate.engine.executor import check_executor

    problems = []
    strong = [a for a in s.attacks if "replicas" in ATTACKS.get(a).needs]
    if strong and not (isinstance(s.replicas, int) and s.replicas >= MIN_REPLICAS):
        problems.append(
            f"--replicas {s.replicas}: {', '.join(strong)} need at least {MIN_REPLICAS} models per side "
            "(LiRA fits on one half and tests on the other; a variance needs 2 models). "
            "Strong audits are meant for tens of replicas (16-32 on a CPU; the papers use hundreds)."
        )
    for name, value, low in (("relearn_steps", s.relearn_steps, 1), ("relearn_models", s.relearn_models, 1),
                             ("ulira_repeats", s.ulira_repeats, 1), ("eval_examples", s.eval_examples, 10),
                             ("chunk", s.chunk, 1)):
        if not (isinstance(value, int) and value >= low):
            problems.append(f"{name} must be an int >= {low}; got {value!r}.")
    if s.threads is not None and not (isinstance(s.threads, int) and s.threads >= 1):
        problems.append(f"--threads must be >= 1; got {s.threads!r}.")
    if s.precision not in ("float32", "bfloat16"):
        problems.append(f"--precision must be 'float32' or 'bfloat16'; got {s.precision!r}.")
    problems += check_executor(s.executor, workers=s.workers, address=s.ray_address)
    if s.relearn_lr is not None and not s.relearn_lr > 0:
        problems.append(f"relearn_lr must be > 0; got {s.relearn_lr!r}.")
    if problems:
        raise ConfigError("Invalid audit settings:", problems)


def _select_methods(run: RunFiles, wanted: Any) -> list[str]:
    available = run.methods()
    if REFERENCE not in available:
        available.insert(0 if BASELINE not in available else 1, REFERENCE)
    if BASELINE not in available:
        available.insert(0, BASELINE)
    if wanted is None:
        chosen = available
    else:
        problems = []
        for m in wanted:
            if m not in available:
                hint = closest(m, available)
                problems.append(f"method {m!r} is not in this run" + (f"; did you mean {hint!r}?" if hint else "")
                                + f" The run has: {', '.join(available)}.")
        if problems:
            raise ConfigError("Invalid --methods:", problems)
        chosen = [m for m in available if m in wanted]
    # the original and the retrain oracle are always audited: every row is read against them
    return [BASELINE, REFERENCE] + [m for m in chosen if m not in (BASELINE, REFERENCE)]


def _sample(n: int, k: int, seed: int, tag: int) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, tag]).choice(n, size=k, replace=False))


def _ci(values: np.ndarray) -> list[float]:
    from obliviate.audit.metrics import mean_ci

    mean, half = mean_ci(np.asarray(values, dtype=float))
    return [mean, half]


def _cache_root(settings: AuditSettings, run: RunFiles) -> Path:
    from obliviate.training.cache import default_cache_dir

    return Path(settings.cache_dir or run.config.cache_dir or default_cache_dir())


# --------------------------------------------------------------------------- the replica groups
@dataclass
class _Groups:
    """Everything the strong attacks read, computed once per audit."""

    scores: dict[str, Any]              # "retrained" and every audited method -> GroupScores
    states: dict[str, list[Any]]
    seeds: dict[str, list[int]]
    split: Any
    factory: Any
    recipe: Any
    data: dict[str, Any]


def _group_of(m: str) -> str:
    return {BASELINE: "trained", REFERENCE: "oracle"}.get(m, f"unlearned:{m}")


def _seeds_of(groups: _Groups, m: str) -> list[int]:
    return groups.seeds["oracle" if m == REFERENCE else "trained"]


def _build_groups(run: RunFiles, settings: AuditSettings, methods: list[str], seed: int, device: str,
                  progress: Progress, timing: dict[str, Any], notes: list[str]) -> _Groups:
    from obliviate.audit.memorization import using_cache
    from obliviate.data.forget import split_forget
    from obliviate.engine.executor import executor_options, make_executor
    from obliviate.engine.replicas import ReplicaRecipe
    from obliviate.engine.replicas.groups import (ArchitectureFactory, ReplicaCache, chunks, mask_digest, run_chunks,
                                                  train_job, unlearn_job)
    from obliviate.bench.audit_signals import score_group
    from obliviate.models.zoo import ModelSpec
    from obliviate.training.cache import ModelCache, cache_key

    cfg, n_rep = run.config, settings.replicas
    root = _cache_root(settings, run)
    bundle = load_bundle(run)
    train, test = bundle.train, bundle.test
    run.check_data(train, seed)
    with using_cache(ModelCache(root, enabled=settings.use_cache)):  # memorized:* forget specs
        split = split_forget(train, cfg.forget, seed=seed)
    run.check_forget_size(len(split.forget), seed)
    recipe = cfg.recipe.resolve(cfg.dataset)
    rrecipe = ReplicaRecipe(epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
                            optimizer=recipe.optimizer, momentum=recipe.momentum,
                            weight_decay=recipe.weight_decay, schedule=recipe.schedule,
                            precision=settings.precision)
    if settings.precision != "float32":
        notes.append(f"Replica models were trained with {settings.precision} matrix multiplies (float32 master "
                     "weights and optimizer state), the bench's own models in float32.")
    spec = ModelSpec(cfg.model, dict(cfg.model_options))
    factory = ArchitectureFactory(cfg.model, dict(cfg.model_options), tuple(train.input_shape), int(train.n_classes))
    if cfg.model_weights:
        notes.append("The run's original came from your weights file; the audit's 'trained' replicas are "
                     "trained from scratch with the run's recipe instead.")
    cache = ReplicaCache(ModelCache(root / "audit-replicas", enabled=settings.use_cache), factory)
    forget_mask = np.zeros(len(train), dtype=bool)
    forget_mask[split.forget_index] = True
    retain_mask = ~forget_mask
    seeds = {g: [int(s) for s in np.random.SeedSequence([seed, tag]).generate_state(n_rep)]
             for g, tag in _SEED_TAGS.items()}
    base_key = dict(kind="audit-replicas-v1", data=train.fingerprint, model=spec.to_dict(),
                    input_shape=list(train.input_shape), n_classes=int(train.n_classes), recipe=rrecipe.to_dict())
    parts = chunks(n_rep, settings.chunk)
    states: dict[str, list[Any]] = {}
    chunk_keys: dict[str, list[str]] = {}
    options = executor_options(settings.executor, workers=settings.workers, address=settings.ray_address)
    with make_executor(settings.executor, **options) as ex:
        for group, mask in (("trained", None), ("retrained", retain_mask), ("oracle", retain_mask)):
            sg = seeds[group]
            keys = [cache_key(**base_key, mask=mask_digest(mask), seeds=[sg[i] for i in c]) for c in parts]

            def train_of(i: int, _mask: Any = mask, _sg: list[int] = sg) -> dict[str, Any]:
                full = None if _mask is None else np.broadcast_to(_mask, (len(parts[i]), len(train))).copy()
                return {"factory": factory, "x": train.x, "y": train.y, "mask": full,
                        "seeds": [_sg[j] for j in parts[i]], "recipe": rrecipe, "device": device,
                        "threads": settings.threads}

            def train_manifest(i: int, wall: float, _g: str = group, _sg: list[int] = sg,
                               _keys: list[str] = keys) -> dict[str, Any]:
                return {"group": _g, "seeds": [_sg[j] for j in parts[i]], "wall_s": wall, "key": _keys[i]}

            done = run_chunks(ex, cache, keys, parts, train_of, train_job, train_manifest, progress,
                              f"replicas: {group} ({n_rep})")
            states[group], chunk_keys[group] = done.states, done.keys
            timing[f"train_{group}"] = done.timing

        budget = cfg.budget.model_dump()
        st = seeds["trained"]
        for m in methods:
            if m in (BASELINE, REFERENCE):
                continue
            mcfg = dict(cfg.method_config.get(m, {}))
            keys = [cache_key(kind="audit-unlearned-v1", trained=chunk_keys["trained"][i], method=m, config=mcfg,
                              budget=budget, forget=split.forget.fingerprint, retain=split.retain.fingerprint,
                              seeds=[st[j] for j in c]) for i, c in enumerate(parts)]

            def unlearn_of(i: int, _m: str = m, _mcfg: dict[str, Any] = mcfg) -> dict[str, Any]:
                return {"factory": factory, "method": _m, "config": _mcfg, "budget": budget,
                        "states": [states["trained"][j] for j in parts[i]], "seeds": [st[j] for j in parts[i]],
                        "forget": split.forget, "retain": split.retain, "train": train, "test": test,
                        "spec": spec, "recipe": recipe, "device": device, "threads": settings.threads}

            def unlearn_manifest(i: int, wall: float, _m: str = m, _keys: list[str] = keys) -> dict[str, Any]:
                return {"group": f"unlearned:{_m}", "wall_s": wall, "key": _keys[i]}

            done = run_chunks(ex, cache, keys, parts, unlearn_of, unlearn_job, unlearn_manifest, progress,
                              f"unlearn: {m} ({n_rep})")
            states[f"unlearned:{m}"] = done.states
            timing[f"unlearn_{m}"] = done.timing

    t0 = time.perf_counter()
    retain_rows = _sample(len(split.retain), settings.eval_examples, seed, 0xE1)
    test_rows = _sample(len(test), settings.eval_examples, seed, 0xE2)
    xs = {"forget": split.forget.x, "retain": split.retain.x[retain_rows], "test": test.x[test_rows]}
    ys = {"forget": split.forget.y, "retain": split.retain.y[retain_rows], "test": test.y[test_rows]}
    scores: dict[str, Any] = {}
    with progress.task("scoring replicas", total=len(methods) + 1) as bar:
        scores["retrained"] = score_group(states["retrained"], factory, seeds["retrained"], xs, ys, device)
        bar.advance(1)
        for m in methods:
            scores[m] = score_group(states[_group_of(m)], factory, seeds["oracle" if m == REFERENCE else "trained"],
                                    xs, ys, device)
            bar.advance(1)
    timing["scoring"] = {"wall_s": time.perf_counter() - t0}
    data = {"dataset": bundle.name, "n_train": len(train), "n_forget": len(split.forget),
            "n_retain": len(split.retain), "n_test": len(test), "retain_eval": int(len(retain_rows)),
            "test_eval": int(len(test_rows)), "forget": cfg.forget, "train_subset": getattr(cfg, "train_subset", None)}
    return _Groups(scores, states, seeds, split, factory, recipe, data)


class _Relearner:
    """Relearning accuracies of each group against the retrained control, with the relearning attack's config
    (``steps``, ``lr``, ``models``)."""

    def __init__(self, groups: _Groups, config: Any, replicas: int, seed: int, device: str) -> None:
        from obliviate.bench.audit_signals import relearn_accuracies

        split = groups.split
        perm = np.random.default_rng([seed, 0x2E1]).permutation(len(split.forget))
        half = len(perm) // 2
        self.a, self.b = np.sort(perm[:half]), np.sort(perm[half:])
        if half == 0 or len(self.b) == 0:
            raise DataError(f"Relearning needs at least 2 forget examples (a part to relearn, a part to test); "
                            f"this forget set has {len(split.forget)}.")
        fx, fy = torch.from_numpy(split.forget.x), torch.from_numpy(split.forget.y)
        self.k = min(config.models, replicas)
        self.steps, self.lr = config.steps, config.lr or groups.recipe.lr
        kw = dict(steps=self.steps, lr=self.lr, batch_size=groups.recipe.batch_size, seed=seed, device=device)
        self._of = lambda states, seeds: relearn_accuracies(states[:self.k], seeds[:self.k], groups.factory,
                                                            fx[self.a], fy[self.a], fx[self.b], fy[self.b], **kw)
        self.groups = groups
        self.control = self._of(groups.states["retrained"], groups.seeds["retrained"])

    def of(self, m: str) -> RelearnAccuracies:
        before, after = self._of(self.groups.states[_group_of(m)], _seeds_of(self.groups, m))
        cb, ca = self.control
        return RelearnAccuracies(before=before, after=after, control_before=cb, control_after=ca, steps=self.steps,
                                 lr=self.lr, relearn_examples=int(len(self.a)), held_back_examples=int(len(self.b)))


# --------------------------------------------------------------------------- main entry
def run_audit(run_dir: str | Path, settings: AuditSettings | None = None, *,
              progress: Progress | None = None) -> dict[str, Any]:
    """Run the strong audit of a bench run (see the module docstring); returns the ``audit.json`` object."""
    import obliviate.removal  # noqa: F401  (registers methods)
    from obliviate.machine import machine_info
    from obliviate.removal.base import METHODS

    settings = settings or AuditSettings()
    progress = progress or NullProgress()
    t_start = time.perf_counter()
    names = parse_attacks(list(settings.attacks))
    settings = dataclasses.replace(settings, attacks=names)
    _check_settings(settings)
    run = load_run(run_dir)
    cfg = run.config
    methods = _select_methods(run, settings.methods)
    seeds_in_run = [int(s) for s in cfg.seeds]
    seed = seeds_in_run[0] if settings.seed is None else int(settings.seed)
    if seed not in seeds_in_run:
        raise ConfigError(f"--seed {seed} is not a seed of this run; it has seeds {seeds_in_run}.")
    threads = settings.threads if settings.threads is not None else cfg.threads
    if threads:
        torch.set_num_threads(threads)
    device = settings.device or cfg.device
    attacks = {a: ATTACKS.get(a).from_settings(settings) for a in names}
    strong = [a for a in names if "replicas" in ATTACKS.get(a).needs]
    th = settings.thresholds
    notes: list[str] = []
    timing: dict[str, Any] = {}
    by_method = {r["method"]: r for r in run.records if int(r.get("seed", seed)) == seed}

    audit: dict[str, Any] = {
        "format": FORMAT, "run": str(run.path), "results_sha256": run.results_sha256, "seed": seed,
        "attacks": list(names), "replicas": settings.replicas if strong else 0, "methods": {},
        "settings": settings.to_dict(), "thresholds": asdict(th), "threshold_text": th.describe(),
        "machine": machine_info(), "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    results: dict[str, dict[str, Any]] = {m: {"population": run_numbers(by_method.get(m, {}))} for m in methods}
    for m in methods:
        results[m]["kind"] = ("none" if m == BASELINE else METHODS.get(m).kind if m in METHODS else "unknown")

    groups = _build_groups(run, settings, methods, seed, device, progress, timing, notes) if strong else None
    t0 = time.perf_counter()
    relearner = None
    relearn_config = next((a.config for a in attacks.values() if "relearn" in a.needs), None)
    if groups is not None and relearn_config is not None:
        relearner = _Relearner(groups, relearn_config, settings.replicas, seed, device)
    with progress.task("attacks", total=len(methods)) as bar:
        for m in methods:
            out = results[m]
            inputs = AttackInput(method=m, seed=seed, run_row=by_method.get(m, {}))
            if groups is not None:
                g = groups.scores[m]
                out["replica_accuracy"] = {"forget": _ci(g.forget_acc), "retain": _ci(g.retain_acc),
                                           "test": _ci(g.test_acc)}
                out["population"]["replicas_mia_auc"] = replicas_loss_auc(g)
                inputs = dataclasses.replace(inputs, target=g, trained=groups.scores[BASELINE],
                                             retrained=groups.scores["retrained"],
                                             relearn=None if relearner is None else relearner.of(m))
            for name, attack in attacks.items():
                out[name] = attack.run(inputs)
            bar.advance(1)
    if groups is not None:
        timing["attacks"] = {"wall_s": time.perf_counter() - t0}
        audit["data"] = groups.data
        audit["recipe"] = groups.recipe.to_dict()
        audit["forget_ids"] = [str(i) for i in groups.split.forget.ids]
        audit["groups"] = {g: {"seeds": s} for g, s in groups.seeds.items()}

    for m in methods:
        results[m]["verdict"] = method_verdict(attacks, results[m], results[REFERENCE], th)
    audit["methods"] = results
    audit["flags"] = flag_sentences(results, methods, strong)
    audit["notes"] = notes + caveat_notes(results, methods)
    timing["total_s"] = time.perf_counter() - t_start
    audit["timing"] = timing
    return audit


def write_audit(run_dir: str | Path, audit: dict[str, Any]) -> dict[str, Path]:
    """Write ``audit.json`` and the audit section of ``report.md`` / ``report.html`` in the run directory."""
    from obliviate.report.audit import write_audit_reports

    return write_audit_reports(Path(run_dir), audit)
