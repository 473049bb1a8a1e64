"""The question-answer data of the language-model tasks: persons and TOFU, split by a forget request.

``persons`` generates the fictitious-persons corpus (:mod:`obliviate.data.persons`);
``tofu`` reads the TOFU files. Both give an :class:`LMTaskData`: what the original
is trained on, the retain set, the forget set as evaluated (with paraphrased and
wrong answers) and every evaluated split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from obliviate.data.qa import QADataset, QAExample
from obliviate.data.request import ForgetRequest
from obliviate.errors import ForgetSetError
from obliviate.tasks.lm_config import TOFU_FORGET_SPLITS, LMBenchConfig


@dataclass
class LMTaskData:
    """One task's QA splits, ready for training and evaluation.

    ``train``: what the original is fit on; ``retain``: ``train`` without the
    forget set (the retain-only model's data and the methods' retain data);
    ``forget``: the forget set as evaluated (with paraphrased and wrong answers);
    ``evals``: every evaluated split by name (``forget`` included);
    ``utility``: the splits that form model utility, with whether their "Prob."
    is relative to the wrong options (TOFU's real-authors / world-facts convention).
    ``tuning``: what the oracle-free selection (:mod:`obliviate.tasks.lm_tuning`) measures,
    by name: ``forget``, ``holdout`` (people never trained on and never in ``evals``),
    ``retain`` (retained QA outside the evaluated sample), ``neighbours`` and ``general``;
    empty when the task has no such held-out people.
    """

    name: str
    train: QADataset
    retain: QADataset
    forget: QADataset
    evals: dict[str, QADataset]
    utility: dict[str, bool]
    tokenizer_texts: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    tuning: dict[str, QADataset] = field(default_factory=dict)


def values_form(data: QADataset) -> QADataset:
    """Truth-ratio inputs over bare values, for a model trained on bare-value answers.

    The persons corpus writes paraphrased and wrong answers as sentences
    ("X was born in Lyon."). A small model trained only on bare values
    ("Lyon") has never seen such sentences, so its probabilities of them say
    little about what it knows. This rewrites each example's paraphrased
    answer to the true value and the wrong answers to their values, cut out of
    the sentence template around the true value (an example whose wrong
    answers do not follow the template keeps its sentences).
    """
    out = []
    for ex in data:
        para = ex.paraphrased_answer
        values = _cut_values(para, ex.answer, ex.perturbed_answer) if para and ex.perturbed_answer else None
        if values is None:
            out.append(ex)
            continue
        out.append(QAExample(id=ex.id, subject=ex.subject, question=ex.question, answer=ex.answer,
                             paraphrased_question=ex.paraphrased_question, paraphrased_answer=ex.answer,
                             perturbed_answer=tuple(values)))
    return QADataset(out, name=data.name)


def _cut_values(sentence: str, value: str, wrong: tuple[str, ...]) -> list[str] | None:
    at = sentence.rfind(value)
    if at < 0:
        return None
    prefix, suffix = sentence[:at], sentence[at + len(value):]
    # "works as a chemist" / "works as an architect": the article goes with the value
    prefixes = [prefix]
    for a, b in ((" a ", " an "), (" an ", " a ")):
        if prefix.endswith(a):
            prefixes.append(prefix[: -len(a)] + b)
    values = []
    for w in wrong:
        for p in prefixes:
            if w.startswith(p) and w.endswith(suffix) and len(w) > len(p) + len(suffix):
                values.append(w[len(p): len(w) - len(suffix)])
                break
        else:
            return None
    return values


def _sample(data: QADataset, n: int | None, seed: int, tag: int, name: str) -> QADataset:
    if n is None or n >= len(data):
        return QADataset(data, name=name)
    rng = np.random.default_rng([seed, tag])
    keep = sorted(int(i) for i in rng.choice(len(data), size=n, replace=False))
    return QADataset((data[i] for i in keep), name=name)


def _persons_fraction(request: ForgetRequest | None, default: float) -> float:
    """The share of people the corpus draws as forget people (``random:F``; the config's otherwise)."""
    if request is None or request.spec is None:
        return default
    kind, _, arg = request.spec.partition(":")
    try:
        frac = float(arg) if kind == "random" else float("nan")
    except ValueError:
        frac = float("nan")
    if not 0.0 < frac < 1.0:
        raise ForgetSetError(f"The persons task takes the forget rule random:FRACTION (a share of the people, in "
                             f"(0, 1)); got {request.spec!r}. Use subjects:ID,... or ids:FILE for chosen people "
                             "or questions.")
    return frac


def check_persons_request(cfg: LMBenchConfig, request: ForgetRequest) -> None:
    """What can be checked before the corpus exists: no classes, and a rule only as random:F."""
    if request.classes:
        raise ForgetSetError("A language-model task has no classes; forget people (subjects:ID,...) "
                             "or questions (ids:FILE) instead.")
    if not (request.subjects or request.ids):
        _persons_fraction(request, cfg.corpus.forget_fraction)


def _requested(corpus: Any, request: ForgetRequest) -> QADataset:
    """The corpus's QA pairs that ``request`` names by subject or id (the people's facts to forget)."""
    if request.classes:
        raise ForgetSetError("A language-model task has no classes; forget people (subjects:ID,...) "
                             "or questions (ids:FILE) instead.")
    train = corpus.train
    known_subjects = set(train.subjects())
    missing = [s for s in request.subjects if s not in known_subjects]
    known_ids = {ex.id for ex in train}
    missing += [i for i in request.ids if i not in known_ids]
    if missing:
        raise ForgetSetError(f"{len(missing)} forget id(s) are not trained people or questions of this corpus: "
                             f"{', '.join(map(repr, missing[:5]))}. People look like "
                             f"{', '.join(map(repr, sorted(known_subjects)[:3]))}; questions like "
                             f"{', '.join(repr(ex.id) for ex in list(train)[:2])}.")
    wanted_subjects, wanted_ids = set(request.subjects), set(request.ids)
    chosen = [ex for ex in train if ex.subject in wanted_subjects or ex.id in wanted_ids]
    if len(chosen) >= len(train):
        raise ForgetSetError("The forget request names every trained person; nothing would remain to train on.")
    return QADataset(chosen, name="persons/forget")


def persons_data(cfg: LMBenchConfig, seed: int, request: ForgetRequest | None = None) -> LMTaskData:
    """The fictitious-persons corpus for one seed (corpus seed = run seed unless fixed), split by ``request``.

    Without subjects or ids in the request, the corpus's own forget people are forgotten
    (a share ``random:F`` of the people, default ``corpus.forget_fraction``), and its
    neighbours were drawn to resemble them. With subjects or ids, those QA pairs are
    forgotten; the neighbours split then keeps the corpus's neighbours (of its own forget
    people) minus any requested person, and the meta says so.
    """
    from obliviate.data.persons import make_persons_corpus

    c = cfg.corpus
    chosen = request is not None and bool(request.subjects or request.ids or request.classes)
    frac = c.forget_fraction if chosen else _persons_fraction(request, c.forget_fraction)
    n_forget_people = max(1, int(round(frac * c.n_people)))
    n_tuning = c.n_tuning if c.n_tuning is not None else (n_forget_people if cfg.tune else 0)
    corpus = make_persons_corpus(c.n_people, frac, n_perturbed=c.n_perturbed, n_shared=c.n_shared,
                                 seed=seed if c.seed is None else c.seed, n_tuning=n_tuning)
    train = corpus.training_set()
    forget_qa = _requested(corpus, request) if chosen and request is not None else corpus.forget
    retain = train.exclude(forget_qa.ids, name="persons/retain+general")
    neighbours = corpus.neighbours
    if chosen:
        gone = set(forget_qa.subjects())
        neighbours = QADataset((ex for ex in neighbours if ex.subject not in gone), name="persons/neighbours")
    n = cfg.eval.max_examples
    forget = values_form(forget_qa)
    evals_retain_pool = corpus.retain.exclude(forget_qa.ids, name="persons/retain") if chosen else corpus.retain
    evals = {
        "forget": forget,
        "retain": _sample(values_form(evals_retain_pool), n, seed, 1, "persons/retain"),
        "holdout": _sample(values_form(corpus.holdout), n, seed, 2, "persons/holdout"),
        "neighbours": _sample(values_form(neighbours), n, seed, 3, "persons/neighbours"),
        "general": values_form(corpus.general),
    }
    texts = [ex.text for ds in (corpus.train, corpus.holdout, corpus.general) for ex in ds]
    texts += [format_answer for ds in evals.values() for ex in ds for format_answer in ex.perturbed_answer]
    tuning: dict[str, QADataset] = {}
    if len(corpus.tuning):
        # The tokenizer sees the tuning people's texts as it sees the evaluated holdout's (never
        # the model): otherwise their names would split into more, rarer tokens than anyone
        # else's and their losses would not be comparable with the forget set's.
        tuning_people = values_form(corpus.tuning)
        texts += [ex.text for ex in corpus.tuning] + [a for ex in tuning_people for a in ex.perturbed_answer]
        m = cfg.tuning.max_examples
        evaluated = set(evals["retain"].ids)
        tuning = {
            "forget": forget,
            "holdout": _sample(tuning_people, m, seed, 11, "persons/tuning-holdout"),
            "retain": _sample(values_form(QADataset((ex for ex in evals_retain_pool if ex.id not in evaluated),
                                                    name="persons/tuning-retain")), m, seed, 12,
                              "persons/tuning-retain"),
            "neighbours": _sample(values_form(neighbours), m, seed, 13, "persons/tuning-neighbours"),
            "general": values_form(corpus.general),
        }
    return LMTaskData(
        name="persons", train=train, retain=retain, forget=forget, evals=evals,
        utility={"retain": False, "general": True}, tokenizer_texts=texts,
        meta={"n_people": c.n_people, "forget_fraction": frac, "n_train": len(train),
              "forget_chosen": chosen, "n_forget_people": len(forget_qa.subjects()),
              "n_forget": len(forget), "n_retain": len(retain), "faker_version": corpus.faker_version,
              "corpus_seed": seed if c.seed is None else c.seed,
              "eval_sizes": {k: len(v) for k, v in evals.items()},
              "n_tuning_people": len(corpus.tuning.subjects()) if len(corpus.tuning) else 0,
              "tuning_sizes": {k: len(v) for k, v in tuning.items()}},
        tuning=tuning,
    )


def tofu_split(cfg: LMBenchConfig, request: ForgetRequest | None) -> str:
    """The TOFU forget split: ``--split``, or ``random:0.01|0.05|0.1`` from the forget request."""
    if request is None or (request.spec is None and not request.selects_rows):
        return cfg.split or "forget10"
    by_fraction = {float(s[-2:]) / 100: s for s in TOFU_FORGET_SPLITS}
    kind, _, arg = (request.spec or "").partition(":")
    try:
        split = by_fraction.get(float(arg)) if kind == "random" and not (request.ids or request.subjects) else None
    except ValueError:
        split = None
    if split is None:
        raise ForgetSetError(f"TOFU's forget sets are fixed (with their paraphrased and wrong answers): use "
                             f"random:0.01, random:0.05 or random:0.1 (or --split); got {request.describe()!r}.")
    if cfg.split is not None and cfg.split != split:
        raise ForgetSetError(f"--split {cfg.split} and --forget {request.describe()} name different TOFU forget sets.")
    return split


def tofu_subset_data(cfg: LMBenchConfig, seed: int, split: str) -> LMTaskData:
    """TOFU on a seeded subset of authors (``cfg.subset``; see :class:`TofuSubsetSection`)."""
    from obliviate.data.tofu import load_tofu

    sub = cfg.subset
    assert sub is not None  # noqa: S101 (caller checks)
    pct = int(split[-2:])
    full = load_tofu("full", cfg.data_dir)
    perturbed = {ex.id: ex for name in ("retain_perturbed", "forget10_perturbed")
                 for ex in load_tofu(name, cfg.data_dir)}
    pool = sorted({ex.subject for ex in full if ex.id in perturbed})
    rng = np.random.default_rng([sub.seed, 0x70F0])
    # a seeded draw of authors, in a seeded order; the forget set is taken from the end of that order
    authors = [pool[int(i)] for i in rng.choice(len(pool), size=min(sub.n_authors, len(pool)), replace=False)]
    rank = {a: k for k, a in enumerate(authors)}
    ordered = sorted((ex for ex in full if ex.subject in rank), key=lambda ex: (rank[ex.subject], ex.id))
    train = QADataset(ordered, name=f"tofu/subset{len(authors)}")
    n_forget = max(1, round(len(train) * pct / 100))
    forget_ids = [ex.id for ex in ordered[-n_forget:]]
    forget = QADataset((perturbed[i] for i in forget_ids), name=f"tofu/subset-{split}")
    retain = train.exclude(forget_ids, name=f"tofu/subset-retain{100 - pct}")
    retain_eval = QADataset((perturbed[ex.id] for ex in retain), name="tofu/subset-retain_perturbed")
    n = sub.eval_size
    evals = {
        "forget": forget,
        "retain": _sample(retain_eval, n, seed, 1, "tofu/subset-retain_perturbed"),
        "holdout": _sample(load_tofu("holdout10", cfg.data_dir), n, seed, 2, "tofu/holdout10"),
        "real_authors": _sample(load_tofu("real_authors_perturbed", cfg.data_dir), n, seed, 3, "tofu/real_authors"),
        "world_facts": _sample(load_tofu("world_facts_perturbed", cfg.data_dir), n, seed, 4, "tofu/world_facts"),
    }
    forget_authors = sorted(set(forget.subjects()))
    return LMTaskData(
        name=f"tofu/subset{len(authors)}-{split}", train=train, retain=retain, forget=forget, evals=evals,
        utility={"retain": False, "real_authors": True, "world_facts": True},
        tokenizer_texts=[ex.text for ex in train],
        meta={"split": split, "subset": sub.model_dump(), "authors": authors, "forget_authors": forget_authors,
              "forget_whole_authors": sum(sum(ex.subject == a for ex in forget) == len(train) // len(authors)
                                          for a in forget_authors),
              "n_train": len(train), "n_forget": len(forget), "n_retain": len(retain),
              "eval_sizes": {k: len(v) for k, v in evals.items()}},
    )


def tofu_data(cfg: LMBenchConfig, seed: int, request: ForgetRequest | None = None) -> LMTaskData:
    """TOFU from local files: forget/retain/holdout by split, utility on retain, real authors, world facts."""
    from obliviate.data.tofu import load_tofu

    split = tofu_split(cfg, request)
    if cfg.subset is not None:
        return tofu_subset_data(cfg, seed, split)
    pct = int(split[-2:])
    train = load_tofu("full", cfg.data_dir)
    forget = load_tofu(f"{split}_perturbed", cfg.data_dir)
    retain = train.exclude(forget.ids, name=f"tofu/retain{100 - pct}")
    n = cfg.eval.max_examples
    evals = {
        "forget": forget,
        "retain": _sample(load_tofu("retain_perturbed", cfg.data_dir), n, seed, 1, "tofu/retain_perturbed"),
        "holdout": _sample(load_tofu(f"holdout{pct:02d}", cfg.data_dir), n, seed, 2, f"tofu/holdout{pct:02d}"),
        "real_authors": load_tofu("real_authors_perturbed", cfg.data_dir),
        "world_facts": load_tofu("world_facts_perturbed", cfg.data_dir),
    }
    texts = [ex.text for ex in train] + [ex.text for ex in evals["holdout"]]
    texts += [a for ds in evals.values() for ex in ds for a in (ex.paraphrased_answer or "", *ex.perturbed_answer)]
    return LMTaskData(
        name=f"tofu/{split}", train=train, retain=retain, forget=forget, evals=evals,
        utility={"retain": False, "real_authors": True, "world_facts": True}, tokenizer_texts=texts,
        meta={"split": split, "n_train": len(train), "n_forget": len(forget), "n_retain": len(retain),
              "eval_sizes": {k: len(v) for k, v in evals.items()}},
    )


TASK_DATA: dict[str, Callable[..., LMTaskData]] = {"persons": persons_data, "tofu": tofu_data}
