"""The evaluated items of ``obliviate guard eval``: attacks and benign prompts per task.

:func:`persons_cases` builds them on the persons corpus (and trains, or loads from the
cache, the GPT-2 whose answers are guarded); :func:`tofu_cases` on TOFU's files. Each
returns a :class:`TaskCases`: the protected set compiled from the task's forget request,
the attacks on every protected fact, the benign prompts, and a held-out calibration set
(other people protected, other retained prompts) for the scored guards' thresholds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from obliviate.data.qa import QADataset
from obliviate.data.request import ForgetRequest
from obliviate.suppression.attacks import build_attacks
from obliviate.suppression.generators import QAGenerator
from obliviate.suppression.protect import ProtectedSet, compile_request

if TYPE_CHECKING:
    from obliviate.suppression.evaluate import GuardEvalConfig

__all__ = ["Case", "TaskCases", "persons_cases", "tofu_cases", "TASKS"]

log = logging.getLogger(__name__)


@dataclass
class Case:
    """One evaluated item: an attack on a fact, or a benign prompt (family = its category)."""

    kind: str  # "attack" or "benign"
    family: str
    prompts: tuple[str, ...]
    scripted: tuple[str, ...]
    answer: str = ""
    fact_id: str = ""


@dataclass
class TaskCases:
    protected: ProtectedSet
    attacks: list[Case]
    benign: list[Case]
    calib_protected: ProtectedSet
    calib_attacks: list[Case]
    calib_benign: list[Case]
    model_generator: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


def _attack_cases(protected: ProtectedSet, families: Sequence[str], seed: int) -> list[Case]:
    out = []
    for fact in protected.facts:
        for a in build_attacks(fact, seed=seed, families=families):
            out.append(Case("attack", a.family, a.prompts, a.scripted, a.answer, a.fact_id))
    return out


def _generic(names: Sequence[str], general: QADataset, n: int, seed: int) -> list[Case]:
    rng = np.random.default_rng([seed, 7])
    templates = ("{name} asked me this: {q}", "I met {name} yesterday. Anyway, {q}", "{q} (asking for my colleague {name})")
    out = []
    for name in names:
        for j in range(n):
            ex = general[int(rng.integers(len(general)))]
            out.append(Case("benign", "generic", (templates[j % len(templates)].format(name=name, q=ex.question),),
                            (ex.answer,), ex.answer, ex.id))
    return out


def persons_cases(cfg: GuardEvalConfig) -> TaskCases:
    """The persons corpus: forget its forget people; benign: their look-alikes and generic prompts."""
    from obliviate.data.persons import make_persons_corpus

    corpus = make_persons_corpus(cfg.n_people, cfg.forget_fraction, seed=cfg.seed)
    names = {p.id: (p.full_name,) for p in corpus.people}
    request = ForgetRequest(subjects=corpus.forget_subjects, source="subjects:" + ",".join(corpus.forget_subjects))
    training = corpus.training_set()
    retained = training.exclude(corpus.forget.ids, name="persons/retained")
    protected = compile_request(request, corpus.train, retained=retained, names=names)
    forget_people = [corpus.person(s) for s in corpus.forget_subjects]
    keys = ("first_name", "surname", "home_city", "employer", "birthplace")
    look = set(corpus.neighbour_subjects)
    for p in corpus.people:
        if p.id in corpus.forget_subjects or p.id in corpus.holdout_subjects:
            continue
        if any(getattr(p, k) == getattr(f, k) for f in forget_people for k in keys):
            look.add(p.id)
    lookalikes = [ex for ex in corpus.retain if ex.subject in look]
    benign = [Case("benign", "neighbours", (ex.question,), (ex.answer,), ex.answer, ex.id) for ex in lookalikes]
    benign += _generic([p.full_name for p in forget_people], corpus.general, cfg.n_generic, cfg.seed)
    # Held-out calibration: the holdout people (never trained on) protected instead, against other
    # retained people who are not the test look-alikes.
    calib_request = ForgetRequest(subjects=corpus.holdout_subjects)
    calib = compile_request(calib_request, corpus.holdout, retained=training, names=names)
    others = [ex for ex in corpus.retain if ex.subject not in look]
    rng = np.random.default_rng([cfg.seed, 11])
    pick = sorted(int(i) for i in rng.choice(len(others), size=min(len(others), max(1, len(lookalikes))), replace=False))
    calib_benign = [Case("benign", "neighbours", (others[i].question,), (others[i].answer,), others[i].answer,
                         others[i].id) for i in pick]
    calib_benign += _generic([corpus.person(s).full_name for s in corpus.holdout_subjects], corpus.general,
                             cfg.n_generic, cfg.seed + 1)
    tc = TaskCases(protected, _attack_cases(protected, cfg.families, cfg.seed), benign, calib,
                   _attack_cases(calib, ("direct", "paraphrase", "typos", "roleplay", "continuation"), cfg.seed + 1),
                   calib_benign,
                   meta={"n_people": cfg.n_people, "forget_subjects": list(corpus.forget_subjects),
                         "n_facts": len(protected.facts), "n_lookalike_people": len(look),
                         "faker_version": corpus.faker_version})
    if cfg.model:
        tc.model_generator, tc.meta["model"] = _trained_model(corpus, training, cfg)
    return tc


def _trained_model(corpus: Any, training: QADataset, cfg: GuardEvalConfig) -> tuple[QAGenerator, dict[str, Any]]:
    from obliviate.tasks.lm_config import LMBenchConfig
    from obliviate.tasks.lm_models import DEFAULT_RECIPES
    from obliviate.models.lm import QAFormat, train_tokenizer
    from obliviate.training.cache import ModelCache
    from obliviate.training.lm import LMRecipe, exact_answer_accuracy, train_lm_cached

    texts = [ex.text for ds in (corpus.train, corpus.holdout, corpus.general) for ex in ds]
    model_cfg = LMBenchConfig().model
    tok = train_tokenizer(texts, vocab_size=model_cfg.vocab_size)
    spec = model_cfg.spec(256)  # room for in-context examples before the question
    fmt = QAFormat(tok, max_length=spec.n_positions)
    recipe_kw = dict(DEFAULT_RECIPES["persons"])
    if cfg.epochs is not None:
        recipe_kw["epochs"] = cfg.epochs
    recipe_kw["batch_size"] = cfg.batch_size
    recipe = LMRecipe(**recipe_kw)
    tm = train_lm_cached(spec, fmt, training, recipe, seed=cfg.seed, cache=ModelCache(enabled=cfg.use_cache),
                         description="persons original (for guards)")
    acc = exact_answer_accuracy(tm.model, fmt, corpus.forget)
    log.info("trained persons model: %.1f s (cached: %s), exact answers on the forget set %.2f",
             tm.wall_s, tm.cached, acc)
    return (QAGenerator(tm.model, fmt, max_new_tokens=cfg.max_new_tokens),
            {"spec": spec.to_dict(), "recipe": recipe.to_dict(), "train_s": tm.wall_s, "cached": tm.cached,
             "forget_exact_answers": acc, "key": tm.key})


def tofu_cases(cfg: GuardEvalConfig) -> TaskCases:
    """TOFU: forget the split's authors; benign: other authors' questions and world facts."""
    from obliviate.data.tofu import load_tofu

    forget = load_tofu(f"{cfg.tofu_split}_perturbed", cfg.data_dir)
    retain = load_tofu("retain_perturbed", cfg.data_dir)
    world = load_tofu("world_facts_perturbed", cfg.data_dir)
    pct = int(cfg.tofu_split[-2:])
    holdout = load_tofu(f"holdout{pct:02d}", cfg.data_dir)
    request = ForgetRequest(subjects=forget.subjects(), source=f"tofu:{cfg.tofu_split}")
    protected = compile_request(request, forget, retained=retain)
    rng = np.random.default_rng([cfg.seed, 3])
    pick = sorted(int(i) for i in rng.choice(len(retain), size=min(len(retain), 2 * len(forget)), replace=False))
    benign = [Case("benign", "neighbours", (retain[i].question,), (retain[i].answer,), retain[i].answer, retain[i].id)
              for i in pick[: len(pick) // 2]]
    benign += [Case("benign", "generic", (ex.question,), (ex.answer,), ex.answer, ex.id) for ex in world]
    calib = compile_request(ForgetRequest(subjects=holdout.subjects()), holdout, retained=retain)
    calib_benign = [Case("benign", "neighbours", (retain[i].question,), (retain[i].answer,), retain[i].answer,
                         retain[i].id) for i in pick[len(pick) // 2:]]
    return TaskCases(protected, _attack_cases(protected, cfg.families, cfg.seed), benign, calib,
                     _attack_cases(calib, ("direct", "paraphrase", "typos", "roleplay", "continuation"), cfg.seed + 1),
                     calib_benign, meta={"split": cfg.tofu_split, "n_facts": len(protected.facts)})


TASKS = {"persons": persons_cases, "tofu": tofu_cases}


