"""``m5``: side effects of unlearning a class (classifier half).

Cooper et al.'s fifth mismatch: unlearning touches what should stay. Ask to unlearn one class with
the exact ``retrain`` and with approximate methods (``graddiff``, ``finetune``, ``kl`` by
default; each with its registered defaults unless ``method_config`` changes them), then
compare the accuracy change, against the original, on the classes the original confuses
most with the forgotten one (its *neighbours*) with the change on the other retained
classes and on the whole test set. Neighbours come from the original's soft confusion
matrix on the test set, ``M[i, j]`` = mean probability given to class ``j`` on class ``i``'s
images, scored ``M[c, j] + M[j, c]`` (soft, because on digits the hard confusion matrix
has only a handful of errors per class).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from obliviate.audit.metrics import softmax
from obliviate.lab._classifier import data_problems, load, per_class_accuracy, setup
from obliviate.lab.base import Experiment, ExperimentResult, check_config, config_dict, new_figure, register, to_png
from obliviate.registry import closest
from obliviate.removal.base import METHODS, methods_for
from obliviate.training.recipe import Recipe
from obliviate.training.trainer import predict_logits

log = logging.getLogger(__name__)


@dataclass
class M5Config:
    """Defaults: digits, class 8, four methods, three seeds (about 30 s on two busy cores)."""

    dataset: str = "digits"
    data_dir: str | None = None
    train_subset: int | None = None
    forget_class: int = 8
    #: how many of the original's most-confused classes count as neighbours
    neighbours: int = 2
    methods: list[str] = field(default_factory=lambda: ["retrain", "graddiff", "finetune", "kl"])
    #: per-method overrides of the registered defaults, e.g. {"graddiff": {"lr": 1e-3}}
    method_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    seeds: int = 3
    hidden: list[int] = field(default_factory=lambda: [128])
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3

    def problems(self) -> list[str]:
        """Every problem with the values (empty when all is well)."""
        p = data_problems(self.dataset, self.forget_class, self.train_subset)
        for name in ("neighbours", "seeds", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                p.append(f"{name} must be >= 1; got {getattr(self, name)}.")
        if not self.methods:
            p.append("methods is empty; name at least one removal method, e.g. ['retrain'].")
        available = methods_for("classification")
        for m in [*self.methods, *self.method_config]:
            if m not in METHODS:
                hint = closest(m, available)
                p.append(f"unknown method {m!r}" + (f"; did you mean {hint!r}?" if hint else "")
                         + f" Available: {', '.join(available)}.")
            elif m not in available:
                p.append(f"method {m!r} works on language models only; choose from {', '.join(available)}.")
        return p


def neighbours_of(probs: np.ndarray, labels: np.ndarray, c: int, k: int) -> list[int]:
    """The ``k`` classes the model confuses most with ``c`` (soft confusion, both directions)."""
    n = probs.shape[1]
    soft = np.stack([probs[labels == i].mean(0) if (labels == i).any() else np.zeros(n) for i in range(n)])
    score = soft[c] + soft[:, c]
    score[c] = -np.inf
    return [int(j) for j in np.argsort(-score, kind="stable")[:k]]


def _groups(acc: np.ndarray, c: int, near: list[int]) -> dict[str, float]:
    others = [k for k in range(len(acc)) if k != c and k not in near]
    return {"forgotten": float(acc[c]), "neighbours": float(np.nanmean(acc[near])),
            "others": float(np.nanmean(acc[others]))}


def run(cfg: M5Config) -> ExperimentResult:
    check_config(cfg, "m5")
    t0 = time.perf_counter()
    bundle = load(cfg.dataset, cfg.data_dir, cfg.train_subset, cfg.forget_class)
    if cfg.neighbours > bundle.n_classes - 2:
        from obliviate.errors import ConfigError

        raise ConfigError(f"neighbours must leave at least one other class: at most {bundle.n_classes - 2} for "
                          f"{bundle.name}; got {cfg.neighbours}.")
    recipe = Recipe(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr)
    test, c = bundle.test, cfg.forget_class
    near: list[int] = []
    per: dict[str, list[dict[str, float]]] = {m: [] for m in ["original", *cfg.methods]}
    kinds = {"original": "none"}
    for seed in range(cfg.seeds):
        s = setup(bundle, c, cfg.hidden, recipe, seed)
        if seed == 0:  # one neighbour set for every seed and method, so the rows average the same classes
            near = neighbours_of(softmax(predict_logits(s.original, test.x)), test.y, c, cfg.neighbours)
        base = _groups(per_class_accuracy(s.original, test), c, near)
        base["test"] = float(np.mean(predict_logits(s.original, test.x).argmax(1) == test.y))
        per["original"].append({**base, "seconds": 0.0})
        for name in cfg.methods:
            method = METHODS.get(name).for_task("classification", **cfg.method_config.get(name, {}))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model, record = method.unlearn(s.original, s.task)
            kinds[name] = record.kind
            g = _groups(per_class_accuracy(model, test), c, near)
            g["test"] = float(np.mean(predict_logits(model, test.x).argmax(1) == test.y))
            per[name].append({**g, "seconds": record.wall_s, "steps": float(record.steps)})
            log.info("m5 seed %d %s: %s", seed, name, g)
    measured, rows = _summarise(per, kinds)
    names = bundle.train.classes or tuple(str(i) for i in range(bundle.n_classes))
    return ExperimentResult(
        name="m5", claim=_claim(cfg, measured, kinds, near, names), measured=measured, rows=rows,
        figure=_figure(cfg, measured, kinds, near, names), kind=kinds, seconds=time.perf_counter() - t0,
        config=config_dict(cfg),
        details={"dataset": bundle.name, "forgotten class": names[c], "neighbours": [names[j] for j in near],
                 "changes": "accuracy after minus the original's, in percentage points, mean over seeds",
                 "method configs": {m: METHODS.get(m).for_task("classification", **cfg.method_config.get(m, {}))
                                    .config.to_dict() for m in cfg.methods}})


def _summarise(per: dict[str, list[dict[str, float]]], kinds: dict[str, str]) -> tuple[dict, list[dict]]:
    measured: dict[str, dict[str, float]] = {}
    rows = []
    orig = per["original"]
    for name, runs in per.items():
        m: dict[str, float] = {}
        for key in ("forgotten", "neighbours", "others", "test"):
            vals = np.array([r[key] for r in runs])
            m[f"{key}_acc"] = float(vals.mean())
            if name != "original":
                d = 100 * (vals - np.array([o[key] for o in orig]))
                m[f"{key}_change_pts"] = float(d.mean())
                m[f"{key}_change_sd"] = float(d.std(ddof=1)) if len(d) > 1 else 0.0
        m["seconds"] = float(np.mean([r["seconds"] for r in runs]))
        measured[name] = m
        row: dict[str, Any] = {"method": name, "kind": kinds[name], "forgotten acc": round(m["forgotten_acc"], 3)}
        if name != "original":
            row.update({"Δ neighbours (pts)": round(m["neighbours_change_pts"], 2),
                        "Δ other classes (pts)": round(m["others_change_pts"], 2),
                        "Δ test (pts)": round(m["test_change_pts"], 2), "seconds": round(m["seconds"], 3)})
        rows.append(row)
    return measured, rows


def _claim(cfg: M5Config, m: dict, kinds: dict[str, str], near: list[int], names: tuple[str, ...]) -> str:
    c = cfg.forget_class
    parts = []
    for name in cfg.methods:
        r = m[name]
        parts.append(f"{name} ({kinds[name]}) {r['neighbours_change_pts']:+.1f} on neighbours vs "
                     f"{r['others_change_pts']:+.1f} on the others (class {names[c]} accuracy "
                     f"{r['forgotten_acc']:.2f})")
    worst = max(cfg.methods, key=lambda n: abs(m[n]["neighbours_change_pts"] - m[n]["others_change_pts"]))
    gap = m[worst]["neighbours_change_pts"] - m[worst]["others_change_pts"]
    tail = (f"the largest neighbour-specific side effect was {worst}'s, {gap:+.1f} points beyond its change on the "
            f"other classes" if abs(gap) >= 0.5 else
            "no method changed the neighbours by half a point more than the other classes")
    exact = [n for n in cfg.methods if kinds[n] == "exact"]
    approx = [n for n in cfg.methods if kinds[n] != "exact"]
    if exact and approx:
        ref = m[exact[0]]["neighbours_change_pts"]
        diffs = ", ".join(f"{n} {m[n]['neighbours_change_pts'] - ref:+.1f}" for n in approx)
        tail += (f"; against the exact {exact[0]}'s own {ref:+.1f} on the neighbours (a side effect of the removal "
                 f"itself), the approximate methods differ by {diffs} points")
    return (f"Asked to unlearn class {names[c]} ({cfg.seeds} seed(s); neighbours "
            f"{' and '.join(names[j] for j in near)} are the original's most confused), each method changed "
            f"test accuracy, in points against the original, by: " + "; ".join(parts) + f"; {tail}.")


def _figure(cfg: M5Config, m: dict, kinds: dict[str, str], near: list[int], names: tuple[str, ...]) -> bytes:
    fig, (ax,) = new_figure(1, width=7.5, height=4.0)
    groups = [("neighbours", f"neighbours ({', '.join(names[j] for j in near)})"), ("others", "other classes"),
              ("test", f"whole test set (incl. class {names[cfg.forget_class]})")]
    xs = np.arange(len(cfg.methods))
    width = 0.8 / len(groups)
    for i, (key, label) in enumerate(groups):
        ax.bar(xs + (i - 1) * width, [m[n][f"{key}_change_pts"] for n in cfg.methods], width,
               yerr=[m[n][f"{key}_change_sd"] for n in cfg.methods], capsize=2, label=label)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(xs, [f"{n}\n({kinds[n]})" for n in cfg.methods], fontsize=8)
    ax.set_ylabel("accuracy change vs original (points)")
    ax.set_title(f"Unlearning class {names[cfg.forget_class]}: side effects (mean ± sd over {cfg.seeds} seeds)",
                 fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return to_png(fig)


register(Experiment(
    name="m5", title="Side effects: unlearning a class changes its neighbours more than the rest",
    mismatch="unlearning has side effects on what should stay", Config=M5Config, run=run,
    quick={"train_subset": 300, "epochs": 5, "seeds": 2, "methods": ["retrain", "finetune"]},
))
