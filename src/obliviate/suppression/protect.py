"""A forget request compiled into what guards protect: strings, facts and examples.

:func:`compile_request` takes a :class:`~obliviate.data.request.ForgetRequest`
(data subjects, example ids, or a concept given by examples) and the QA data it
refers to, and returns a :class:`ProtectedSet`:

- ``facts``: one :class:`ProtectedFact` per forgotten QA pair (its subject, the
  subject's names, the question and the answer). A fact is *distinctive* when its
  answer is not also the answer of a retained example: distinctive answers are
  protected wherever they appear; the others (a city or employer a retained person
  shares) only when the text or the prompt names a forgotten subject, so that honest
  questions about the retained look-alikes are still answered.
- ``names``: the forgotten subjects' names (when the caller knows them).
- ``examples``: texts for similarity guards: forget questions, answer sentences
  and the request's concept examples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from obliviate.data.qa import QADataset
from obliviate.data.request import ForgetRequest
from obliviate.errors import ForgetSetError
from obliviate.suppression.normalize import compact_key

__all__ = ["ProtectedFact", "ProtectedSet", "compile_request", "compile_persons"]


@dataclass(frozen=True)
class ProtectedFact:
    """One protected answer and what it is about."""

    id: str
    subject: str
    question: str
    answer: str
    names: tuple[str, ...] = ()
    distinctive: bool = True
    sentence: str | None = None
    paraphrased_question: str | None = None


@dataclass(frozen=True)
class ProtectedSet:
    """What guards keep out of the outputs for one forget request (see the module docstring)."""

    facts: tuple[ProtectedFact, ...] = ()
    names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    examples: tuple[str, ...] = ()
    request: ForgetRequest | None = None

    def __post_init__(self) -> None:
        if not (self.facts or self.names or self.examples):
            raise ForgetSetError("The protected set is empty: the forget request matched no fact, name or example. "
                                 "Check the request's ids or subjects against the data.")

    def all_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for names in self.names.values() for n in names))

    def strings(self) -> tuple[str, ...]:
        """Every protected string: names and answers."""
        return tuple(dict.fromkeys([*self.all_names(), *(f.answer for f in self.facts)]))

    def to_dict(self) -> dict[str, Any]:
        return {"n_facts": len(self.facts), "n_distinctive": sum(f.distinctive for f in self.facts),
                "subjects": sorted(self.names), "n_examples": len(self.examples),
                "request": self.request.to_dict() if self.request else None}


def compile_request(request: ForgetRequest | str | Mapping[str, Any], data: QADataset, *,
                    retained: QADataset | None = None,
                    names: Mapping[str, Sequence[str]] | None = None,
                    min_chars: int = 2) -> ProtectedSet:
    """Compile ``request`` over ``data`` (the QA pairs it selects from) into a :class:`ProtectedSet`.

    retained: the QA pairs that must stay answerable; answers they share are not
    distinctive. names: subject id -> names of that subject (a person's full name).
    min_chars: answers shorter than this (canonical, without separators) are not protected
    strings (a one-letter answer would match everywhere); they stay in the examples.
    """
    request = ForgetRequest.coerce(request)
    if request.classes or request.spec:
        raise ForgetSetError(f"Guards protect QA facts, subjects and concept examples; the request "
                             f"{request.describe()!r} selects classes or a rule. Use ids:, subjects: or concept:.")
    chosen = _select(request, data)
    kept = {compact_key(ex.answer) for ex in (retained or ())}
    name_map = {s: tuple(names.get(s, ())) for s in dict.fromkeys(ex.subject for ex in chosen)} if names else {}
    facts = []
    for ex in chosen:
        if len(compact_key(ex.answer)) < min_chars:
            continue
        facts.append(ProtectedFact(id=ex.id, subject=ex.subject, question=ex.question, answer=ex.answer,
                                   names=name_map.get(ex.subject, ()),
                                   distinctive=compact_key(ex.answer) not in kept,
                                   sentence=ex.paraphrased_answer, paraphrased_question=ex.paraphrased_question))
    examples = [*request.concept]
    for ex in chosen:
        examples.append(ex.question)
        if ex.paraphrased_question:
            examples.append(ex.paraphrased_question)
        if ex.paraphrased_answer:
            examples.append(ex.paraphrased_answer)
    return ProtectedSet(facts=tuple(facts), names={k: v for k, v in name_map.items() if v},
                        examples=tuple(dict.fromkeys(examples)), request=request)


def _select(request: ForgetRequest, data: QADataset) -> list[Any]:
    chosen: list[Any] = []
    if request.ids:
        have = {ex.id: ex for ex in data}
        missing = [i for i in request.ids if i not in have]
        if missing:
            raise ForgetSetError(f"{len(missing)} forget id(s) are not in {data.name or 'the data'}, e.g. "
                                 f"{missing[:3]}; ids look like {data[0].id!r}.")
        chosen += [have[i] for i in request.ids]
    if request.subjects:
        subjects = set(request.subjects)
        found = [ex for ex in data if ex.subject in subjects]
        missing = subjects - {ex.subject for ex in found}
        if missing:
            raise ForgetSetError(f"Subject(s) {sorted(missing)[:3]} have no example in {data.name or 'the data'}; "
                                 f"subjects look like {data[0].subject!r}.")
        chosen += found
    seen: set[str] = set()
    return [ex for ex in chosen if not (ex.id in seen or seen.add(ex.id))]


def compile_persons(request: ForgetRequest | str | Mapping[str, Any], corpus: Any) -> ProtectedSet:
    """Compile a request over a :class:`~obliviate.data.persons.PersonsCorpus` (names from its people)."""
    req = ForgetRequest.coerce(request)
    subjects, ids = set(req.subjects), set(req.ids)
    retained = QADataset((ex for ex in corpus.training_set() if ex.subject not in subjects and ex.id not in ids),
                         name="retained")
    names = {p.id: (p.full_name,) for p in corpus.people}
    return compile_request(req, corpus.train, retained=retained, names=names)
