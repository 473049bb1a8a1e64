"""Strong audits of a classifier bench run: LiRA, U-LiRA, the challenge score, relearning.

``obliviate audit --run DIR`` reads a finished ``obliviate bench`` run (its resolved
``config.json``, ``results.json`` and ``meta.json``), rebuilds the same data and forget
set for one of the run's seeds, trains the replica models the strong attacks need, runs
the attacks for every method of the run, and writes ``audit.json`` plus an audit section
in the run's ``report.md`` and ``report.html``.

Replica groups (N models each, N = ``--replicas``; trained with the run's own recipe,
batched by :func:`obliviate.engine.replicas.train_replicas`, cached on disk):

* ``trained``   N models trained on the whole training set (forget set included);
* ``retrained`` N models trained on the retain set only (the reference side);
* ``oracle``    N more retain-only models with other seeds: what the exact method
  ``retrain`` produces, audited like any method;
* ``unlearned[m]`` for every approximate method m: each ``trained`` model unlearned by
  m with the run's settings for m (one model at a time: methods are ordinary code).

The row ``original`` audits the ``trained`` models themselves (no unlearning at all).
Each method's "unlearned" models U are compared with the ``retrained`` models R on the
forget examples, through their logit-scaled confidence ``log p_y - log(1 - p_y)``:

* **population** (weak): the loss-threshold attack (forget vs test AUC) and SalUn's SVC
  attack of the run's own ``results.json`` for the audited seed, next to the same loss
  attack averaged over the replicas U.
* **LiRA** (Carlini et al. 2022), online and offline, as an attacker who does not know
  the unlearning method: per forget example, an "in" Gaussian fitted on ``trained``
  models and an "out" Gaussian on ``retrained`` models of one half of the replicas;
  positives are the held-out half of U, negatives the held-out half of R (then the
  halves swap). AUC and TPR at 1% / 0.1% FPR over every (model, example) pair.
* **U-LiRA** (Hayes et al. 2024): :func:`obliviate.audit.attacks.ulira` on U vs R;
  mean per-example balanced accuracy, 0.5 ideal.
* **challenge** (Triantafillou et al. 2024): forget quality F from U vs R
  (delta 1e-5) and the final score ``F x RA/RA_retrain x TA/TA_retrain`` with the mean
  retain/test accuracies of the U and R replicas.
* **relearn**: each of the first ``relearn_models`` models of U and, as the
  never-exposed control, the model of R with the same index are fine-tuned for
  ``relearn_steps`` Adam steps on half A of the forget set; accuracy on the other half B
  before and after gives :func:`obliviate.audit.attacks.relearn_recovery`
  (``after_gap``: final accuracy on B above the control's; ``excess_recovery``: gain
  beyond the control's gain).

Verdicts use the explicit :class:`Thresholds`; a method the weak attack *passes* while
a strong attack *catches* it is flagged in words.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from obliviate.errors import ConfigError, DataError
from obliviate.progress import NullProgress, Progress
from obliviate.registry import closest

log = logging.getLogger(__name__)

__all__ = [
    "ATTACKS",
    "AuditSettings",
    "RunFiles",
    "Thresholds",
    "load_run",
    "parse_attacks",
    "run_audit",
    "write_audit",
]

FORMAT = "obliviate-audit-v1"
ATTACKS = ("population", "lira", "ulira", "challenge", "relearn")
STRONG_ATTACKS = ("lira", "ulira", "challenge", "relearn")
BASELINE, REFERENCE = "original", "retrain"
#: replicas per side needed by the model-based attacks: two per LiRA half (a variance
#: needs two models), and U-LiRA fits on half the models and holds out the other half.
MIN_REPLICAS = 4
#: below this many fitting models per group, LiRA and U-LiRA share one variance across
#: examples (Carlini et al.: per-example variances need many shadow models).
PER_EXAMPLE_VARIANCE_FROM = 32
_SEED_TAGS = {"trained": 0xA7D1, "retrained": 0xA7D2, "oracle": 0xA7D3}


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Thresholds:
    """When the weak attack *passes* a method and when a strong attack *catches* it."""

    #: weak passes: the run's loss-attack AUC (forget vs test) within this of retrain's
    weak_auc_margin: float = 0.05
    #: LiRA catches: online AUC at least this ...
    lira_auc: float = 0.55
    #: ... or TPR at 1% FPR at least this (5x what chance gives)
    lira_tpr_1pct: float = 0.05
    #: U-LiRA catches: mean per-example accuracy at least this (0.5 is ideal)
    ulira_accuracy: float = 0.55
    #: challenge catches: forget quality F below this share of retrain's own F (retrain's F
    #: is what an exact method reaches with N models; finite samples keep it below 1)
    challenge_f_ratio: float = 0.5
    #: relearn catches: accuracy on the held-back forget half after relearning at least
    #: this much above the never-exposed control's
    relearn_after_gap: float = 0.05

    def describe(self) -> list[str]:
        return [
            f"the weak attack *passes* a method when the run's loss-threshold MIA AUC (forget vs test) "
            f"is within {self.weak_auc_margin:g} of retrain's",
            f"LiRA *catches* it when its online AUC is >= {self.lira_auc:g} or its TPR at 1% FPR is "
            f">= {self.lira_tpr_1pct:g}",
            f"U-LiRA *catches* it when the mean per-example accuracy is >= {self.ulira_accuracy:g} (0.5 is ideal)",
            f"the challenge score *catches* it when F < {self.challenge_f_ratio:g} x retrain's F",
            f"relearning *catches* it when, after relearning, its accuracy on the held-back forget half "
            f"is >= {self.relearn_after_gap:g} above the retrained control's",
        ]


@dataclass(frozen=True)
class AuditSettings:
    """What ``obliviate audit`` does (the CLI's flags)."""

    attacks: tuple[str, ...] = ATTACKS
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
    workers: int | None = None
    threads: int | None = None
    device: str | None = None                    # None: the run's device
    use_cache: bool = True
    cache_dir: str | None = None                 # None: the run's cache_dir, else the default cache
    thresholds: Thresholds = field(default_factory=Thresholds)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["attacks"] = list(self.attacks)
        d["methods"] = None if self.methods is None else list(self.methods)
        return d


# --------------------------------------------------------------------------- the run
@dataclass
class RunFiles:
    """A bench run directory, read and checked."""

    path: Path
    config: Any                    # BenchConfig
    records: list[dict[str, Any]]
    meta: dict[str, Any]
    results_sha256: str

    def methods(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            seen.setdefault(r["method"], None)
        return list(seen)


def load_run(path: str | os.PathLike[str]) -> RunFiles:
    """Read a classifier bench run directory; typed errors say what is missing and how to fix it."""
    from obliviate.bench.config import BenchConfig
    from obliviate.config import validate

    run = Path(path)
    hint = "Give the output folder of `obliviate bench` (the --out of the run; it holds results.json and config.json)."
    if not run.exists():
        raise ConfigError(f"--run {run}: no such directory. {hint}")
    if not run.is_dir():
        raise ConfigError(f"--run {run} is a file, not a directory. {hint}")
    missing = [name for name in ("config.json", "results.json") if not (run / name).is_file()]
    if missing:
        raise ConfigError(f"--run {run} is not a bench run: {' and '.join(missing)} missing. {hint}")
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
    cfg = validate(BenchConfig, raw_cfg, source=f"the run's config.json ({run / 'config.json'})")
    return RunFiles(run, cfg, records, meta, hashlib.sha256(results_bytes).hexdigest())


def parse_attacks(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"population,lira"`` or a list -> validated names; ``all`` expands. Unknown names get the nearest one."""
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
    names = [n for n in names if n]
    problems = []
    out: list[str] = []
    for n in names:
        if n == "all":
            out.extend(ATTACKS)
        elif n in ATTACKS:
            out.append(n)
        else:
            hint = closest(n, list(ATTACKS))
            problems.append(f"unknown attack {n!r}" + (f"; did you mean {hint!r}?" if hint else "")
                            + f" Valid attacks: {', '.join(ATTACKS)}.")
    if problems:
        raise ConfigError("Invalid --attacks:", problems)
    if not out:
        raise ConfigError(f"No attack selected; pass --attacks with some of {', '.join(ATTACKS)} (or all).")
    return tuple(dict.fromkeys(out))


def _check_settings(s: AuditSettings) -> None:
    problems = []
    strong = [a for a in s.attacks if a in STRONG_ATTACKS]
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
    if s.relearn_lr is not None and not s.relearn_lr > 0:
        problems.append(f"relearn_lr must be > 0; got {s.relearn_lr!r}.")
    if problems:
        raise ConfigError("Invalid audit settings:", problems)


def _select_methods(run: RunFiles, wanted: Sequence[str] | None) -> list[str]:
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


# --------------------------------------------------------------------------- model factory
@dataclass(frozen=True)
class _Factory:
    """Builds one fresh model of the run's architecture from the current torch RNG (picklable)."""

    name: str
    options: dict[str, Any]
    input_shape: tuple[int, ...]
    n_classes: int

    def __call__(self) -> nn.Module:
        from obliviate.models.zoo import resolve_factory

        return resolve_factory(self.name)(tuple(self.input_shape), int(self.n_classes), **self.options)

    def seeded(self, seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self()


def _set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def _stack_states(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {f"{i}/{k}": v.detach().cpu().contiguous() for i, sd in enumerate(states) for k, v in sd.items()}


def _unstack_states(tensors: dict[str, torch.Tensor], n: int) -> list[dict[str, torch.Tensor]]:
    out: list[dict[str, torch.Tensor]] = [{} for _ in range(n)]
    for key, v in tensors.items():
        i, _, name = key.partition("/")
        out[int(i)][name] = v
    return out


# --------------------------------------------------------------------------- jobs (executor)
def _train_job(job: dict[str, Any]) -> tuple[list[dict[str, torch.Tensor]], float]:
    """Train one chunk of replicas at once; returns their state dicts and the wall time."""
    from obliviate.engine.replicas import train_replicas

    _set_threads(job.get("threads"))
    t0 = time.perf_counter()
    stacked = train_replicas(job["factory"], job["x"], job["y"], job["mask"], job["seeds"],
                             recipe=job["recipe"], device=job["device"])
    return stacked.state_dicts(), time.perf_counter() - t0


def _unlearn_job(job: dict[str, Any]) -> tuple[list[dict[str, torch.Tensor]], float]:
    """Unlearn each model of a chunk with one method, one model at a time."""
    import obliviate.removal  # noqa: F401  (registers the methods in a fresh worker)
    from obliviate.removal.base import METHODS, Budget, UnlearningTask
    from obliviate.removal.objective import ClassificationObjective
    from obliviate.training.checkpoint import state_to_tensors
    from obliviate.training.trainer import train_classifier

    _set_threads(job.get("threads"))
    factory: _Factory = job["factory"]
    device = job["device"]
    method_cls = METHODS.get(job["method"])
    objective = ClassificationObjective(factory.n_classes, device)
    out = []
    t0 = time.perf_counter()
    for sd, seed in zip(job["states"], job["seeds"], strict=True):
        model = factory.seeded(seed)
        model.load_state_dict(sd)
        model.to(device).eval()

        def fit_from_scratch(data: Any, _seed: int = seed) -> tuple[nn.Module, float, dict[str, Any]]:
            fresh = factory.seeded(_seed)
            res = train_classifier(fresh, data, job["recipe"], seed=_seed, device=device)
            return fresh.eval(), res.wall_s, {"steps": res.steps}

        task = UnlearningTask(forget=job["forget"], retain=job["retain"], objective=objective,
                              recipe=job["recipe"], seed=seed, device=device, fit_from_scratch=fit_from_scratch,
                              extras={"train": job["train"], "test": job["test"], "model_spec": job["spec"]})
        method = method_cls(**job["config"])
        torch.manual_seed(seed)  # methods drawing from the global RNG stay reproducible
        unlearned, _ = method.unlearn(model, task, budget=Budget(**job["budget"]))
        out.append(state_to_tensors(unlearned))
    return out, time.perf_counter() - t0


def _map(ex: Any, fn: Any, jobs: list[dict[str, Any]], progress: Progress, description: str) -> list[Any]:
    """Run the jobs on the executor; a group found whole in the cache still shows (as one step)."""
    if jobs:
        return ex.map(fn, jobs, progress=progress, description=description)
    with progress.task(f"{description[:-1]}, cached)", total=1) as bar:
        bar.advance(1)
    return []


# --------------------------------------------------------------------------- replica cache
class _ReplicaCache:
    """Chunks of replica weights as safetensors files (weights only; nothing is unpickled)."""

    def __init__(self, root: Path, enabled: bool) -> None:
        self.root, self.enabled = root, enabled

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.safetensors"

    def load(self, key: str, n: int) -> tuple[list[dict[str, torch.Tensor]], dict[str, Any]] | None:
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        path = self._path(key)
        if not (self.enabled and path.is_file()):
            return None
        try:
            with safe_open(str(path), framework="pt") as fh:
                manifest = json.loads((fh.metadata() or {}).get("manifest", "{}"))
            states = _unstack_states(load_file(str(path)), n)
        except (SafetensorError, OSError, ValueError, IndexError) as exc:
            log.warning("ignoring unusable cached replicas %s: %s", path, exc)
            return None
        if len(states) != n or any(not sd for sd in states):
            return None
        return states, manifest

    def store(self, key: str, states: Sequence[dict[str, torch.Tensor]], manifest: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        if not self.enabled:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{key}.", suffix=".tmp")
        os.close(fd)
        try:
            save_file(_stack_states(states), tmp, metadata={"manifest": json.dumps(manifest, default=str)})
            os.replace(tmp, self._path(key))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def _mask_digest(mask: np.ndarray | None) -> str:
    if mask is None:
        return "all"
    return hashlib.sha256(np.packbits(mask.astype(bool), axis=-1).tobytes()).hexdigest()[:16]


def _chunks(n: int, size: int) -> list[range]:
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


# --------------------------------------------------------------------------- scores
@dataclass
class _GroupScores:
    """What the attacks need from one group of N models."""

    forget: np.ndarray        # (N, n_forget) logit-scaled confidences
    test: np.ndarray          # (N, n_test_eval) the same on the test sample
    forget_acc: np.ndarray    # (N,)
    retain_acc: np.ndarray    # (N,) on the retain sample
    test_acc: np.ndarray      # (N,) on the test sample


def _score_group(states: list[dict[str, torch.Tensor]], factory: _Factory, seeds: Sequence[int],
                 xs: dict[str, np.ndarray], ys: dict[str, np.ndarray], device: str) -> _GroupScores:
    from obliviate.audit.attacks import logit_scale_from_logits
    from obliviate.engine.replicas import StackedReplicas

    modules = []
    for sd, s in zip(states, seeds, strict=True):
        m = factory.seeded(int(s))
        m.load_state_dict(sd)
        modules.append(m.to(device).eval())
    stacked = StackedReplicas.from_modules(modules, model_factory=factory, seeds=list(seeds))
    out: dict[str, np.ndarray] = {}
    acc: dict[str, np.ndarray] = {}
    for split in ("forget", "retain", "test"):
        logits = stacked.predict_logits(xs[split]).astype(np.float64)          # (N, n, C)
        acc[split] = (logits.argmax(-1) == ys[split][None, :]).mean(axis=1)
        if split != "retain":
            out[split] = logit_scale_from_logits(logits, np.broadcast_to(ys[split], logits.shape[:2]))
    return _GroupScores(out["forget"], out["test"], acc["forget"], acc["retain"], acc["test"])


# --------------------------------------------------------------------------- attacks
def _thin_roc(fpr: np.ndarray, tpr: np.ndarray, points: int = 160) -> tuple[list[float], list[float]]:
    """A few hundred ROC points, dense at low FPR (for JSON and plots); keeps the best TPR per FPR."""
    if fpr.size <= points:
        return fpr.tolist(), tpr.tolist()
    lo = max(float(fpr[fpr > 0].min()) if (fpr > 0).any() else 1e-6, 1e-7)
    grid = np.unique(np.r_[0.0, np.geomspace(lo, 1.0, points), np.linspace(0, 1, 21)])
    idx = np.searchsorted(fpr, grid, side="right") - 1
    idx = np.unique(np.clip(idx, 0, fpr.size - 1))
    return [float(v) for v in fpr[idx]], [float(v) for v in tpr[idx]]


def _attack_dict(result: Any) -> dict[str, Any]:
    fpr, tpr = _thin_roc(result.fpr, result.tpr)
    return {"auc": result.auc, "tpr_at_1pct": result.tpr_at_1pct, "tpr_at_0_1pct": result.tpr_at_0_1pct,
            "n_members": result.n_members, "n_nonmembers": result.n_nonmembers, "fpr": fpr, "tpr": tpr}


def _lira(target: np.ndarray, trained: np.ndarray, retrained: np.ndarray, fix_variance: bool) -> dict[str, Any]:
    """LiRA with trained/retrained shadows of one half; targets (method vs retrained) of the other half."""
    from obliviate.audit.attacks import AttackResult, lira_offline, lira_online

    n = retrained.shape[0]
    idx = np.arange(n)
    halves = (idx % 2 == 0, idx % 2 == 1)
    found: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {"online": ([], []), "offline": ([], [])}
    for fit, held in (halves, halves[::-1]):
        shadows = np.concatenate([trained[fit], retrained[fit]])
        in_mask = np.zeros(shadows.shape, dtype=bool)
        in_mask[: int(fit.sum())] = True
        for name, attack in (("online", lira_online), ("offline", lira_offline)):
            found[name][0].append(attack(target[held], shadows, in_mask, fix_variance=fix_variance).ravel())
            found[name][1].append(attack(retrained[held], shadows, in_mask, fix_variance=fix_variance).ravel())
    out: dict[str, Any] = {"fix_variance": fix_variance}
    for name, (pos, neg) in found.items():
        p, q = np.concatenate(pos), np.concatenate(neg)
        res = AttackResult.from_scores(f"LiRA {name}", np.r_[p, q], np.r_[np.ones(p.size, bool), np.zeros(q.size, bool)])
        out[name] = _attack_dict(res)
    return out


def _population_replicas(g: _GroupScores) -> float:
    """Loss-threshold attack (forget vs test) on each replica, averaged: the weak attack on the same models."""
    from obliviate.audit.attacks import auc

    labels = np.r_[np.ones(g.forget.shape[1], bool), np.zeros(g.test.shape[1], bool)]
    return float(np.mean([auc(np.r_[f, t], labels) for f, t in zip(g.forget, g.test, strict=True)]))


def _relearn_accuracies(states: Sequence[dict[str, torch.Tensor]], seeds: Sequence[int], factory: _Factory,
                        xa: torch.Tensor, ya: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor, *,
                        steps: int, lr: float, batch_size: int, seed: int, device: str) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy on part B before and after ``steps`` Adam steps on part A, per model (same batches for index i)."""
    from obliviate.training.trainer import seeded_generator

    before, after = [], []
    xa, ya, xb, yb = xa.to(device), ya.to(device), xb.to(device), yb.to(device)
    for i, (sd, s) in enumerate(zip(states, seeds, strict=True)):
        model = factory.seeded(int(s))
        model.load_state_dict(sd)
        model.to(device)
        with torch.no_grad():
            before.append(float((model.eval()(xb).argmax(-1) == yb).float().mean()))
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        gen = seeded_generator(seed, 0x2E1E, i)
        model.train()
        order = torch.randperm(len(ya), generator=gen)
        pos = 0
        for _ in range(steps):
            if pos >= len(order):
                order, pos = torch.randperm(len(ya), generator=gen), 0
            idx = order[pos: pos + batch_size].to(device)
            pos += batch_size
            loss = torch.nn.functional.cross_entropy(model(xa[idx]), ya[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            after.append(float((model.eval()(xb).argmax(-1) == yb).float().mean()))
    return np.array(before), np.array(after)


def _ci(values: np.ndarray) -> list[float]:
    from obliviate.audit.metrics import mean_ci

    mean, half = mean_ci(np.asarray(values, dtype=float))
    return [mean, half]


# --------------------------------------------------------------------------- main entry
def _load_bundle(cfg: Any) -> Any:
    """The run's data exactly as the bench runner built it (user data, built-in, train subset)."""
    from obliviate.data.builtin import load_dataset
    from obliviate.data.dataset import DataBundle

    if cfg.data is not None:
        bundle = cfg.data.load().bundle
    else:
        bundle = load_dataset(cfg.dataset, data_dir=cfg.data_dir)
    subset = getattr(cfg, "train_subset", None)
    if subset is not None:
        bundle = DataBundle(train=bundle.train.stratified_sample(subset, seed=getattr(cfg, "subset_seed", 0)),
                            test=bundle.test, name=bundle.name)
    return bundle


def _sample(n: int, k: int, seed: int, tag: int) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, tag]).choice(n, size=k, replace=False))


def run_audit(run_dir: str | os.PathLike[str], settings: AuditSettings | None = None, *,
              progress: Progress | None = None) -> dict[str, Any]:
    """Run the strong audit of a bench run (see the module docstring); returns the ``audit.json`` object."""
    from obliviate.audit.attacks import final_score, forget_quality, relearn_recovery, ulira
    from obliviate.machine import machine_info
    from obliviate.data.forget import split_forget
    from obliviate.engine.executor import make_executor
    from obliviate.engine.replicas import ReplicaRecipe
    from obliviate.models.zoo import ModelSpec
    from obliviate.removal.base import METHODS
    from obliviate.training.cache import cache_key, default_cache_dir

    import obliviate.removal  # noqa: F401  (registers methods)

    settings = settings or AuditSettings()
    progress = progress or NullProgress()
    t_start = time.perf_counter()
    attacks = parse_attacks(list(settings.attacks))
    settings = dataclasses.replace(settings, attacks=attacks)
    _check_settings(settings)
    run = load_run(run_dir)
    cfg = run.config
    methods = _select_methods(run, settings.methods)
    seeds_in_run = [int(s) for s in cfg.seeds]
    seed = seeds_in_run[0] if settings.seed is None else int(settings.seed)
    if seed not in seeds_in_run:
        raise ConfigError(f"--seed {seed} is not a seed of this run; it has seeds {seeds_in_run}.")
    _set_threads(settings.threads if settings.threads is not None else cfg.threads)
    device = settings.device or cfg.device
    strong = [a for a in attacks if a in STRONG_ATTACKS]
    th = settings.thresholds
    notes: list[str] = []
    timing: dict[str, Any] = {}

    # ---- the run's own (weak) attack results for this seed
    by_method = {r["method"]: r for r in run.records if int(r.get("seed", seed)) == seed}
    population: dict[str, dict[str, Any]] = {}
    for m in methods:
        r = by_method.get(m, {})
        population[m] = {k: r.get(k) for k in ("mia_auc", "mia_efficacy", "mia_loss_efficacy", "ra", "ta", "ua")}
    ref_auc = population[REFERENCE].get("mia_auc")

    audit: dict[str, Any] = {
        "format": FORMAT,
        "run": str(run.path),
        "results_sha256": run.results_sha256,
        "seed": seed,
        "attacks": list(attacks),
        "replicas": settings.replicas if strong else 0,
        "methods": {},
        "settings": settings.to_dict(),
        "thresholds": asdict(th),
        "threshold_text": th.describe(),
        "machine": machine_info(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    results: dict[str, dict[str, Any]] = {m: {"population": population[m]} for m in methods}
    for m in methods:
        results[m]["kind"] = ("none" if m == BASELINE else METHODS.get(m).kind if m in METHODS else "unknown")

    if strong:
        n_rep = settings.replicas
        bundle = _load_bundle(cfg)
        train, test = bundle.train, bundle.test
        split = split_forget(train, cfg.forget, seed=seed)
        expected = (run.meta.get("seeds", {}).get(str(seed)) or {}).get("n_forget")
        if expected is not None and int(expected) != len(split.forget):
            raise DataError(
                f"The run's data no longer matches: seed {seed} had {expected} forget examples, rebuilding "
                f"the data gives {len(split.forget)}. Re-run the benchmark with this version of the data."
            )
        recipe = cfg.recipe.resolve(cfg.dataset)
        rrecipe = ReplicaRecipe(epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
                                optimizer=recipe.optimizer, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay, schedule=recipe.schedule)
        spec = ModelSpec(cfg.model, dict(cfg.model_options))
        factory = _Factory(cfg.model, dict(cfg.model_options), tuple(train.input_shape), int(train.n_classes))
        if cfg.model_weights:
            notes.append("The run's original came from your weights file; the audit's 'trained' replicas are "
                         "trained from scratch with the run's recipe instead.")
        cache_root = Path(settings.cache_dir or cfg.cache_dir or default_cache_dir()) / "audit-replicas"
        cache = _ReplicaCache(cache_root, settings.use_cache)
        forget_mask = np.zeros(len(train), dtype=bool)
        forget_mask[split.forget_index] = True
        retain_mask = ~forget_mask
        group_seeds = {g: [int(s) for s in np.random.SeedSequence([seed, tag]).generate_state(n_rep)]
                       for g, tag in _SEED_TAGS.items()}
        base_key = dict(kind="audit-replicas-v1", data=train.fingerprint, model=spec.to_dict(),
                        input_shape=list(train.input_shape), n_classes=int(train.n_classes), recipe=rrecipe.to_dict())
        states: dict[str, list[dict[str, torch.Tensor]]] = {}
        chunk_keys: dict[str, list[str]] = {}
        with make_executor(settings.executor, **({"max_workers": settings.workers} if settings.workers else {})) as ex:
            # ---- train the three from-scratch groups
            for group, mask in (("trained", None), ("retrained", retain_mask), ("oracle", retain_mask)):
                t0 = time.perf_counter()
                seeds_g = group_seeds[group]
                chunks = _chunks(n_rep, settings.chunk)
                keys = [cache_key(**base_key, mask=_mask_digest(mask), seeds=[seeds_g[i] for i in c]) for c in chunks]
                got: list[list[dict[str, torch.Tensor]] | None] = []
                compute_s = 0.0
                for k, c in zip(keys, chunks, strict=True):
                    hit = cache.load(k, len(c))
                    got.append(None if hit is None else hit[0])
                    compute_s += 0.0 if hit is None else float(hit[1].get("wall_s", 0.0))
                todo = [i for i, g in enumerate(got) if g is None]
                jobs = [{"factory": factory, "x": train.x, "y": train.y,
                         "mask": None if mask is None else np.broadcast_to(mask, (len(chunks[i]), len(train))).copy(),
                         "seeds": [seeds_g[j] for j in chunks[i]], "recipe": rrecipe, "device": device,
                         "threads": settings.threads} for i in todo]
                done = _map(ex, _train_job, jobs, progress, f"replicas: {group} ({n_rep})")
                for i, (sts, wall) in zip(todo, done, strict=True):
                    got[i] = sts
                    compute_s += wall
                    cache.store(keys[i], sts, {"group": group, "seeds": [seeds_g[j] for j in chunks[i]],
                                               "wall_s": wall, "key": keys[i]})
                states[group] = [sd for g in got for sd in g]  # type: ignore[union-attr]
                chunk_keys[group] = keys
                timing[f"train_{group}"] = {"wall_s": time.perf_counter() - t0, "compute_s": compute_s,
                                            "cached_chunks": len(chunks) - len(todo), "chunks": len(chunks)}

            # ---- unlearn the 'trained' replicas with every approximate method
            budget = cfg.budget.model_dump()
            for m in methods:
                if m in (BASELINE, REFERENCE):
                    continue
                t0 = time.perf_counter()
                mcfg = dict(cfg.method_config.get(m, {}))
                chunks = _chunks(n_rep, settings.chunk)
                keys = [cache_key(kind="audit-unlearned-v1", trained=chunk_keys["trained"][i], method=m,
                                  config=mcfg, budget=budget, forget=split.forget.fingerprint,
                                  retain=split.retain.fingerprint, seeds=[group_seeds["trained"][j] for j in c])
                        for i, c in enumerate(chunks)]
                got = []
                compute_s = 0.0
                for k, c in zip(keys, chunks, strict=True):
                    hit = cache.load(k, len(c))
                    got.append(None if hit is None else hit[0])
                    compute_s += 0.0 if hit is None else float(hit[1].get("wall_s", 0.0))
                todo = [i for i, g in enumerate(got) if g is None]
                jobs = [{"factory": factory, "method": m, "config": mcfg, "budget": budget,
                         "states": [states["trained"][j] for j in chunks[i]],
                         "seeds": [group_seeds["trained"][j] for j in chunks[i]],
                         "forget": split.forget, "retain": split.retain, "train": train, "test": test,
                         "spec": spec, "recipe": recipe, "device": device, "threads": settings.threads}
                        for i in todo]
                done = _map(ex, _unlearn_job, jobs, progress, f"unlearn: {m} ({n_rep})")
                for i, (sts, wall) in zip(todo, done, strict=True):
                    got[i] = sts
                    compute_s += wall
                    cache.store(keys[i], sts, {"group": f"unlearned:{m}", "wall_s": wall, "key": keys[i]})
                states[f"unlearned:{m}"] = [sd for g in got for sd in g]  # type: ignore[union-attr]
                timing[f"unlearn_{m}"] = {"wall_s": time.perf_counter() - t0, "compute_s": compute_s,
                                          "cached_chunks": len(chunks) - len(todo), "chunks": len(chunks)}

        # ---- scores of every group
        t0 = time.perf_counter()
        retain_rows = _sample(len(split.retain), settings.eval_examples, seed, 0xE1)
        test_rows = _sample(len(test), settings.eval_examples, seed, 0xE2)
        xs = {"forget": split.forget.x, "retain": split.retain.x[retain_rows], "test": test.x[test_rows]}
        ys = {"forget": split.forget.y, "retain": split.retain.y[retain_rows], "test": test.y[test_rows]}

        def group_of(m: str) -> tuple[str, list[int]]:
            if m == BASELINE:
                return "trained", group_seeds["trained"]
            if m == REFERENCE:
                return "oracle", group_seeds["oracle"]
            return f"unlearned:{m}", group_seeds["trained"]

        scores: dict[str, _GroupScores] = {}
        with progress.task("scoring replicas", total=len(methods) + 1) as bar:
            scores["retrained"] = _score_group(states["retrained"], factory, group_seeds["retrained"], xs, ys, device)
            bar.advance(1)
            for m in methods:
                g, s = group_of(m)
                scores[m] = _score_group(states[g], factory, s, xs, ys, device)
                bar.advance(1)
        timing["scoring"] = {"wall_s": time.perf_counter() - t0}

        # ---- attacks
        t0 = time.perf_counter()
        fit_models = n_rep - n_rep // 2
        fix_variance = fit_models < PER_EXAMPLE_VARIANCE_FROM
        ref = scores["retrained"]
        ra_ref, ta_ref = float(ref.retain_acc.mean()), float(ref.test_acc.mean())
        perm = np.random.default_rng([seed, 0x2E1]).permutation(len(split.forget))
        half = len(perm) // 2
        part_a, part_b = np.sort(perm[:half]), np.sort(perm[half:])
        if "relearn" in attacks and (half == 0 or len(part_b) == 0):
            raise DataError(f"Relearning needs at least 2 forget examples (a part to relearn, a part to test); "
                            f"this forget set has {len(split.forget)}.")
        fx, fy = torch.from_numpy(split.forget.x), torch.from_numpy(split.forget.y)
        relearn_lr = settings.relearn_lr or recipe.lr
        k_rel = min(settings.relearn_models, n_rep)
        relearn_kw = dict(steps=settings.relearn_steps, lr=relearn_lr, batch_size=recipe.batch_size, seed=seed,
                          device=device)
        control = None
        if "relearn" in attacks:
            control = _relearn_accuracies(states["retrained"][:k_rel], group_seeds["retrained"][:k_rel], factory,
                                          fx[part_a], fy[part_a], fx[part_b], fy[part_b], **relearn_kw)
        with progress.task("attacks", total=len(methods)) as bar:
            for m in methods:
                g = scores[m]
                out = results[m]
                out["replica_accuracy"] = {"forget": _ci(g.forget_acc), "retain": _ci(g.retain_acc),
                                           "test": _ci(g.test_acc)}
                out["population"]["replicas_mia_auc"] = _population_replicas(g)
                if "lira" in attacks:
                    out["lira"] = _lira(g.forget, scores[BASELINE].forget, ref.forget, fix_variance)
                if "ulira" in attacks:
                    res = ulira(g.forget, ref.forget, protocol="split", seed=seed, n_repeats=settings.ulira_repeats,
                                fix_variance=fix_variance)
                    acc = res.per_example_accuracy
                    out["ulira"] = {"mean_accuracy": res.mean_accuracy,
                                    "share_at_least_0_75": float((acc >= 0.75).mean()),
                                    "quantiles": {q: float(np.quantile(acc, float(q))) for q in ("0.1", "0.5", "0.9")},
                                    "per_example_accuracy": [round(float(v), 4) for v in acc],
                                    "n_unlearned": res.n_unlearned, "n_retrained": res.n_retrained,
                                    "n_repeats": res.n_repeats, "fix_variance": res.fix_variance}
                if "challenge" in attacks:
                    fq = forget_quality(g.forget, ref.forget)
                    ra, ta = float(g.retain_acc.mean()), float(g.test_acc.mean())
                    eps = fq.epsilons
                    out["challenge"] = {"F": fq.forget_quality,
                                        "final_score": final_score(fq.forget_quality, ra, ta, ra_ref, ta_ref),
                                        "ra": ra, "ta": ta, "ra_retrain": ra_ref, "ta_retrain": ta_ref,
                                        "max_epsilon": fq.max_epsilon, "delta": fq.delta,
                                        "epsilon_median": float(np.median(eps)),
                                        "epsilons": [round(float(v), 4) for v in eps]}
                if "relearn" in attacks and control is not None:
                    gname, gseeds = group_of(m)
                    before, after = _relearn_accuracies(states[gname][:k_rel], gseeds[:k_rel], factory, fx[part_a],
                                                        fy[part_a], fx[part_b], fy[part_b], **relearn_kw)
                    cb, ca = control
                    summary = relearn_recovery(float(before.mean()), float(after.mean()), float(cb.mean()),
                                               float(ca.mean()))
                    out["relearn"] = {**summary.to_dict(),
                                      "after_gap_ci": _ci(after - ca),
                                      "excess_recovery_ci": _ci((after - before) - (ca - cb)),
                                      "acc_before": float(before.mean()), "acc_after": float(after.mean()),
                                      "control_before": float(cb.mean()), "control_after": float(ca.mean()),
                                      "models": k_rel, "steps": settings.relearn_steps, "lr": relearn_lr,
                                      "relearn_examples": int(len(part_a)), "held_back_examples": int(len(part_b))}
                bar.advance(1)
        timing["attacks"] = {"wall_s": time.perf_counter() - t0}
        audit["data"] = {"dataset": bundle.name, "n_train": len(train), "n_forget": len(split.forget),
                         "n_retain": len(split.retain), "n_test": len(test), "retain_eval": int(len(retain_rows)),
                         "test_eval": int(len(test_rows)), "forget": cfg.forget,
                         "train_subset": getattr(cfg, "train_subset", None)}
        audit["recipe"] = recipe.to_dict()
        audit["forget_ids"] = [str(i) for i in split.forget.ids]
        audit["groups"] = {g: {"seeds": s} for g, s in group_seeds.items()}

    # ---- verdicts
    ref_res = results[REFERENCE]
    for m in methods:
        results[m]["verdict"] = _verdict(results[m], ref_res, ref_auc, th, attacks)
    audit["methods"] = results
    audit["flags"] = _flag_sentences(results, methods, attacks)
    audit["notes"] = notes
    timing["total_s"] = time.perf_counter() - t_start
    audit["timing"] = timing
    return audit


def _verdict(res: dict[str, Any], ref: dict[str, Any], ref_auc: float | None, th: Thresholds,
             attacks: Sequence[str]) -> dict[str, Any]:
    weak_passes = None
    auc_m = res["population"].get("mia_auc")
    if "population" in attacks and auc_m is not None and ref_auc is not None:
        weak_passes = bool(abs(auc_m - ref_auc) <= th.weak_auc_margin)
    caught: dict[str, str] = {}
    if "lira" in res:
        on = res["lira"]["online"]
        if on["auc"] >= th.lira_auc or on["tpr_at_1pct"] >= th.lira_tpr_1pct:
            caught["lira"] = f"LiRA (AUC {on['auc']:.3f}, TPR@1%FPR {on['tpr_at_1pct']:.3f})"
    if "ulira" in res and res["ulira"]["mean_accuracy"] >= th.ulira_accuracy:
        caught["ulira"] = f"U-LiRA (accuracy {res['ulira']['mean_accuracy']:.3f})"
    if "challenge" in res and "challenge" in ref:
        f_ref = ref["challenge"]["F"]
        if res["challenge"]["F"] < th.challenge_f_ratio * f_ref:
            caught["challenge"] = f"the challenge score (F {res['challenge']['F']:.3f} vs retrain's {f_ref:.3f})"
    if "relearn" in res and res["relearn"]["after_gap"] >= th.relearn_after_gap:
        caught["relearn"] = f"relearning (+{res['relearn']['after_gap']:.3f} accuracy over the control)"
    return {"weak_passes": weak_passes, "caught_by": list(caught), "caught_text": list(caught.values()),
            "flagged": bool(weak_passes and caught)}


def _flag_sentences(results: dict[str, dict[str, Any]], methods: Sequence[str], attacks: Sequence[str]) -> list[str]:
    strong = [a for a in attacks if a in STRONG_ATTACKS]
    out = []
    for m in methods:
        v = results[m]["verdict"]
        auc_m = results[m]["population"].get("mia_auc")
        weak_txt = f"loss-attack AUC {auc_m:.3f}" if auc_m is not None else "no weak result"
        what = "the retrain oracle" if m == REFERENCE else "doing nothing (the original)" if m == BASELINE else m
        if v["flagged"]:
            out.append(f"{m}: the weak attack passes it ({weak_txt}), but it is caught by "
                       + _join(v["caught_text"]) + ".")
        elif m == REFERENCE and v["caught_by"]:
            out.append(f"{m}: {what} is caught by {_join(v['caught_text'])}; the thresholds are too tight "
                       "for this many replicas, so read the other rows against retrain's numbers.")
        elif v["caught_by"] and v["weak_passes"] is False:
            out.append(f"{m}: caught by both the weak attack ({weak_txt}) and {_join(v['caught_text'])}.")
        elif v["caught_by"]:
            out.append(f"{m}: caught by {_join(v['caught_text'])}.")
        elif strong and v["weak_passes"] is False:
            out.append(f"{m}: the weak attack catches it ({weak_txt}) but no strong attack does.")
        elif strong:
            out.append(f"{m}: no attack catches it" + (" (as expected of the oracle)." if m == REFERENCE else "."))
    return out


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def write_audit(run_dir: str | os.PathLike[str], audit: dict[str, Any]) -> dict[str, Path]:
    """Write ``audit.json`` and the audit section of ``report.md`` / ``report.html`` in the run directory."""
    from obliviate.report.audit import write_audit_reports

    return write_audit_reports(Path(run_dir), audit)
