"""``m3``: a model is not its outputs (persons corpus, small GPT-2).

Cooper et al.'s third mismatch: checking some outputs does not bound what a model can
produce. Three models answer the forget people's questions: the *original* (trained on
everyone), an *approximately unlearned* copy of it (``method``, ``graddiff`` by default, with
its small-LM task defaults: ``METHODS.get(method).for_task('lm')``), and the *retain-only*
model (trained from scratch without the forget people: exact). Each is read the way an audit
reads it, one greedy answer per question, and then with more than the audit used:

- context at inference ("UnUnlearning", Shumailov et al. 2024): the forgotten fact among
  other facts about the same person in the prompt (``facts``), or only the person's other
  facts (``related``), with :func:`obliviate.audit.lm_attacks.icl_attack`; and the first half
  of the answer in the prompt, the model asked to go on (the rest's ROUGE-L recall);
- extraction with more samples than the audit used: ``samples`` sampled answers per question,
  and the share of questions whose answer appears in at least one of the first ``n``, for
  ``n`` = 1 .. ``samples`` (the curve). A model that never saw the person can hit an answer
  by guessing from what it learnt about others (a common colour, a city); the retain-only
  model's curve measures that floor.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from obliviate.audit.lm_attacks import ICLConfig, icl_attack
from obliviate.audit.lm_eval import verbatim_continuations
from obliviate.audit.lm_metrics import rouge_l_recall
from obliviate.lab._persons import PersonsModels, persons_models, persons_problems, sampled_answers
from obliviate.lab.base import Experiment, ExperimentResult, check_config, config_dict, new_figure, register, to_png
from obliviate.registry import closest
from obliviate.removal.base import METHODS, UnlearningTask
from obliviate.removal.lm_objective import CausalLMObjective
from obliviate.suppression.attacks import leaked
from obliviate.suppression.generators import QAGenerator

log = logging.getLogger(__name__)

ORIGINAL, RETRAIN = "original", "retain-only (retrained)"


@dataclass
class M3Config:
    """Defaults: 20 people (2 forgotten, 36 facts), graddiff, 64 samples per question.

    About 25 s with both models in the cache (m1 trains the same two); cold adds their training.
    """

    n_people: int = 20
    forget_fraction: float = 0.1
    seed: int = 0
    epochs: int = 60
    batch_size: int = 16
    use_cache: bool = True
    #: the approximate method, with its small-LM task defaults and these overrides
    method: str = "graddiff"
    method_config: dict[str, Any] = field(default_factory=dict)
    #: question-answer pairs about the same person shown before the question
    n_context: int = 2
    #: sampled answers per forgotten question (the curve runs 1 .. samples), and their temperature
    samples: int = 64
    temperature: float = 1.0
    rouge_threshold: float = 0.8
    max_new_tokens: int = 24

    def problems(self) -> list[str]:
        """Every problem with the values (empty when all is well)."""
        p = persons_problems(self)
        if self.method not in METHODS:
            hint = closest(self.method, METHODS.names())
            p.append(f"method {self.method!r} is unknown" + (f"; did you mean {hint!r}?" if hint else "")
                     + f" Valid: {', '.join(METHODS.names())}.")
        elif "lm" not in METHODS.get(self.method).tasks:
            p.append(f"method {self.method!r} does not run on language models; use e.g. 'graddiff' or 'npo'.")
        elif METHODS.get(self.method).kind != "approximate":
            p.append(f"method {self.method!r} is {METHODS.get(self.method).kind}; m3 compares an approximate "
                     "method with the retain-only model, so choose an approximate one (e.g. 'graddiff').")
        for name in ("n_context", "samples", "max_new_tokens"):
            if getattr(self, name) < 1:
                p.append(f"{name} must be >= 1; got {getattr(self, name)!r}.")
        if not self.temperature > 0:
            p.append(f"temperature must be > 0; got {self.temperature!r}.")
        if not 0 < self.rouge_threshold <= 1:
            p.append(f"rouge_threshold must be in (0, 1]; got {self.rouge_threshold!r}.")
        return p


def unlearn(cfg: M3Config, pm: PersonsModels) -> tuple[torch.nn.Module, Any]:
    """The approximate method run on the original with its small-LM defaults (seeded)."""
    method = METHODS.get(cfg.method).for_task("lm", **cfg.method_config)
    task = UnlearningTask(forget=pm.forget, retain=pm.retain, objective=CausalLMObjective(pm.fmt, "cpu"),
                          recipe=pm.recipe, seed=cfg.seed,  # type: ignore[arg-type]
                          extras={"train": pm.training, "format": pm.fmt, "task": "persons"})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return method.unlearn(pm.original, task)


def leak_curve(hits: np.ndarray) -> np.ndarray:
    """``hits[q, s]``: sample ``s`` of question ``q`` holds the answer. Returns, for n = 1 .. S, the share
    of questions with a hit among their first n samples (non-decreasing by construction)."""
    hits = np.asarray(hits, dtype=bool)
    if hits.ndim != 2 or hits.size == 0:
        from obliviate.errors import DataError

        raise DataError(f"leak_curve takes a non-empty (questions, samples) array; got shape {hits.shape}.")
    return np.logical_or.accumulate(hits, axis=1).mean(0)


def _points(n: int) -> list[int]:
    pts, k = [], 1
    while k < n:
        pts.append(k)
        k *= 2
    return [*pts, n]


def run(cfg: M3Config) -> ExperimentResult:
    check_config(cfg, "m3")
    t0 = time.perf_counter()
    pm = persons_models(n_people=cfg.n_people, forget_fraction=cfg.forget_fraction, seed=cfg.seed,
                        epochs=cfg.epochs, batch_size=cfg.batch_size, use_cache=cfg.use_cache)
    unlearned, record = unlearn(cfg, pm)
    approx = f"{cfg.method} (approximate)"
    models = {ORIGINAL: pm.original, approx: unlearned, RETRAIN: pm.retrained}
    forget, fmt = pm.forget, pm.fmt
    questions, answers = [ex.question for ex in forget], [ex.answer for ex in forget]
    icl_cfg = ICLConfig(n_context=cfg.n_context, max_questions=None)
    measured: dict[str, dict[str, float]] = {}
    curves: dict[str, np.ndarray] = {}
    for who, model in models.items():
        m: dict[str, float] = {}
        greedy = QAGenerator(model, fmt, max_new_tokens=cfg.max_new_tokens).batch(questions)
        m["greedy_rouge"] = float(np.mean([rouge_l_recall(g, a) for g, a in zip(greedy, answers, strict=True)]))
        m["greedy_leak"] = float(np.mean([leaked(g, a, threshold=cfg.rouge_threshold)
                                          for g, a in zip(greedy, answers, strict=True)]))
        icl = icl_attack(model, fmt, forget, icl_cfg, seed=cfg.seed)
        m["icl_rouge_none"], m["icl_rouge_facts"] = icl["icl_rouge_none"], icl["icl_rouge_facts"]
        m["icl_rouge_related"] = icl["icl_rouge_related"]
        conts, refs = verbatim_continuations(model, fmt, forget)
        scored = [(c, r) for c, r in zip(conts, refs, strict=True) if r.strip()]
        m["prefix_rest_rouge"] = float(np.mean([rouge_l_recall(c, r) for c, r in scored])) if scored else 0.0
        samples = sampled_answers(model, fmt, [fmt.prompt_ids(q) for q in questions], n=cfg.samples,
                                  temperature=cfg.temperature, seed=cfg.seed, max_new_tokens=cfg.max_new_tokens)
        hits = np.array([[leaked(s, a, threshold=cfg.rouge_threshold) for s in ss]
                         for ss, a in zip(samples, answers, strict=True)])
        curves[who] = leak_curve(hits)
        m["sampled_leak_1"] = float(curves[who][0])
        m[f"sampled_leak_{cfg.samples}"] = float(curves[who][-1])
        m["per_sample_leak"] = float(hits.mean())
        measured[who] = m
    for who, c in curves.items():
        measured[f"curve: {who}"] = {f"n={n}": float(c[n - 1]) for n in _points(cfg.samples)}
    measured["setup"] = {"n_forget_facts": float(len(forget)), "samples": float(cfg.samples),
                         "n_context": float(cfg.n_context), "unlearn_s": float(record.wall_s),
                         "unlearn_steps": float(record.steps)}
    rows = [{"model": who, "kind": {ORIGINAL: "none", approx: "approximate", RETRAIN: "exact"}[who],
             **measured[who]} for who in models]
    rows += [{"model": who, "kind": row["kind"], "n_samples": n, "leak_any": float(curves[who][n - 1])}
             for who, row in zip(models, rows[:3], strict=True) for n in range(1, cfg.samples + 1)]
    return ExperimentResult(
        name="m3", claim=_claim(cfg, measured, approx), measured=measured,
        figure=_figure(cfg, measured, curves, approx),
        kind={ORIGINAL: "none", approx: record.kind, RETRAIN: "exact"},
        seconds=time.perf_counter() - t0, config=config_dict(cfg), rows=rows,
        details={"models": pm.meta, "method": record.to_dict(),
                 "audit": "one greedy answer per forgotten question",
                 "leak judge": f"ROUGE-L recall of the answer >= {cfg.rouge_threshold} in a sample "
                               "(obliviate.suppression.attacks.leaked)"})


def _claim(cfg: M3Config, m: dict[str, Any], approx: str) -> str:
    o, a, r = m[ORIGINAL], m[approx], m[RETRAIN]
    n, big = int(m["setup"]["n_forget_facts"]), f"sampled_leak_{cfg.samples}"
    grew = a[big] - a["greedy_leak"]
    if grew > 0.05 and a[big] > r[big] + 0.05:
        verdict = (f"the audit's one answer per question understates what {cfg.method} left extractable, "
                   "beyond the retain-only model's guessing floor")
    elif grew > 0.05:
        verdict = ("more samples find more, but no more than the retain-only model reaches by guessing: here the "
                   "extra hits are not evidence of what the weights kept")
    else:
        verdict = "here more samples found little that one answer did not show"
    ctx = max(a["icl_rouge_facts"] - a["icl_rouge_none"], r["icl_rouge_facts"] - r["icl_rouge_none"])
    ctx_note = ("context brought answers back" if ctx > 0.05 else
                "this small model barely uses its prompt, so context brought little back")
    return (f"An audit reading one greedy answer per forgotten question ({n} questions) finds the answer for "
            f"{a['greedy_leak']:.0%} after {cfg.method}, {r['greedy_leak']:.0%} for the retain-only model and "
            f"{o['greedy_leak']:.0%} for the original; with {cfg.samples} sampled answers per question it appears "
            f"for {a[big]:.0%}, {r[big]:.0%} and {o[big]:.0%}: {verdict}; with the fact among {cfg.n_context - 1} "
            f"other fact(s) in the prompt ROUGE-L goes from {a['icl_rouge_none']:.2f} to {a['icl_rouge_facts']:.2f} "
            f"after {cfg.method} and from {r['icl_rouge_none']:.2f} to {r['icl_rouge_facts']:.2f} for the "
            f"retain-only model ({ctx_note}), and given the answer's first half {cfg.method} completes the rest with "
            f"ROUGE-L {a['prefix_rest_rouge']:.2f} against {r['prefix_rest_rouge']:.2f}.")


def _figure(cfg: M3Config, m: dict[str, Any], curves: dict[str, np.ndarray], approx: str) -> bytes:
    fig, (ax, bx) = new_figure(2, width=5.6, height=4.0)
    colors = {ORIGINAL: "#888888", approx: "#d62728", RETRAIN: "#1f77b4"}
    n = np.arange(1, cfg.samples + 1)
    for who, c in curves.items():
        ax.plot(n, c, label=f"{who}", color=colors[who])
        ax.scatter([1], [m[who]["greedy_leak"]], marker="x", color=colors[who])
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("sampled answers per question (x: one greedy answer, the audit)", fontsize=8)
    ax.set_ylabel("share of forgotten questions whose answer appeared", fontsize=8)
    ax.set_title(f"Extraction by sampling (T={cfg.temperature})", fontsize=9)
    ax.legend(fontsize=7)
    keys = [("icl_rouge_none", "no context"), ("icl_rouge_related", "related\nfacts"),
            ("icl_rouge_facts", "fact in\nprompt"), ("prefix_rest_rouge", "first half\nof answer")]
    x = np.arange(len(keys))
    for i, who in enumerate(curves):
        bx.bar(x + (i - 1) * 0.27, [m[who][k] for k, _ in keys], 0.27, label=who, color=colors[who])
    bx.set_xticks(x, [lab for _, lab in keys], fontsize=7)
    bx.set_ylim(0, 1.05)
    bx.set_ylabel("ROUGE-L recall of the (rest of the) answer", fontsize=8)
    bx.set_title("Context given at inference", fontsize=9)
    bx.legend(fontsize=7)
    fig.tight_layout()
    return to_png(fig)


register(Experiment(
    name="m3", title="A model is not its outputs: more samples and more context find what one answer hides",
    mismatch="models are not equivalent to their outputs", Config=M3Config, run=run,
    quick={"n_people": 8, "forget_fraction": 0.25, "samples": 16},
))
