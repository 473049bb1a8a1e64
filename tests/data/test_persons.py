"""Tests for the fictitious-persons corpus and the QA dataset container."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from obliviate.data.persons import (
    ATTRIBUTES,
    SHAREABLE_ATTRIBUTES,
    PersonsCorpus,
    general_facts,
    make_persons_corpus,
)
from obliviate.data.qa import QADataset, QAExample, format_qa
from obliviate.errors import ConfigError, DataError

TOFU_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tofu"


@pytest.fixture(scope="module")
def corpus() -> PersonsCorpus:
    return make_persons_corpus(n_people=40, forget_fraction=0.1, n_neighbours=4, seed=7)


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_corpus(corpus: PersonsCorpus) -> None:
    again = make_persons_corpus(n_people=40, forget_fraction=0.1, n_neighbours=4, seed=7)
    assert again == corpus
    for name, split in corpus.splits().items():
        assert [e.to_dict() for e in split] == [e.to_dict() for e in again.splits()[name]], name


def test_different_seed_gives_different_corpus(corpus: PersonsCorpus) -> None:
    other = make_persons_corpus(n_people=40, forget_fraction=0.1, n_neighbours=4, seed=8)
    assert other != corpus
    assert [p.full_name for p in other.people] != [p.full_name for p in corpus.people]
    assert other.forget.texts() != corpus.forget.texts()


_CORPUS_DIGEST = """
import hashlib
from obliviate.data.persons import make_persons_corpus
c = make_persons_corpus(n_people=40, forget_fraction=0.1, n_neighbours=4, seed=7)
assert any(p.locale == "it_IT" for p in c.people)  # the locale whose Faker city list is built from a set
text = "\\n".join(e.question + "|" + e.answer for split in c.splits().values() for e in split)
print(hashlib.sha256(text.encode()).hexdigest())
"""


def test_corpus_does_not_depend_on_the_hash_seed() -> None:
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", _CORPUS_DIGEST], env=env, capture_output=True, text=True,
                             check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1, "the corpus changed with PYTHONHASHSEED"


# --------------------------------------------------------------------- schema


def test_each_person_has_one_qa_per_attribute(corpus: PersonsCorpus) -> None:
    assert 15 <= len(ATTRIBUTES) <= 20
    for subject in corpus.train.subjects():
        qa = corpus.train.by_subjects([subject])
        assert len(qa) == len(ATTRIBUTES)
        assert {e.id.split("/", 1)[1] for e in qa} == {a.name for a in ATTRIBUTES}
        assert all(e.subject == subject for e in qa)


def test_records_have_tofu_perturbed_schema(corpus: PersonsCorpus) -> None:
    """Same keys, order and value types as TOFU's *_perturbed files."""
    tofu_keys = ["question", "answer", "paraphrased_answer", "perturbed_answer", "paraphrased_question"]
    real = TOFU_DIR / "forget10_perturbed.json"
    if real.is_file():
        first = json.loads(real.read_text(encoding="utf-8").splitlines()[0])
        tofu_keys = list(first)
    for ex in list(corpus.forget) + list(corpus.general):
        rec = ex.to_tofu_record()
        assert list(rec) == tofu_keys
        assert all(isinstance(rec[k], str) for k in tofu_keys if k != "perturbed_answer")
        assert isinstance(rec["perturbed_answer"], list)
        assert all(isinstance(p, str) for p in rec["perturbed_answer"])


def test_perturbed_answers_are_distinct_wrong_and_in_template(corpus: PersonsCorpus) -> None:
    for ex in list(corpus.train) + list(corpus.holdout) + list(corpus.general):
        assert 3 <= len(ex.perturbed_answer) <= 5
        assert len(set(ex.perturbed_answer)) == len(ex.perturbed_answer)
        assert ex.paraphrased_answer not in ex.perturbed_answer
        assert ex.answer not in ex.perturbed_answer
        assert ex.paraphrased_question != ex.question
        # the paraphrased answer states the true value
        assert ex.answer.lower() in ex.paraphrased_answer.lower()


def test_answers_are_short(corpus: PersonsCorpus) -> None:
    assert max(len(e.answer.split()) for e in corpus.train) <= 8
    assert sum(len(e.answer.split()) for e in corpus.train) / len(corpus.train) < 4


def test_text_uses_the_single_prompt_format(corpus: PersonsCorpus) -> None:
    ex = corpus.forget[0]
    assert ex.text == format_qa(ex.question, ex.answer)
    assert ex.text.startswith(ex.prompt)
    assert ex.prompt == f"Question: {ex.question}\nAnswer:"
    assert ex.text == f"Question: {ex.question}\nAnswer: {ex.answer}"


def test_unique_names_and_identifying_questions(corpus: PersonsCorpus) -> None:
    names = [p.full_name for p in corpus.people]
    assert len(set(names)) == len(names)
    # the full-name question (birthplace + date) must identify one person
    name_questions = [e.question for e in corpus.train if e.id.endswith("/full_name")]
    assert len(set(name_questions)) == len(name_questions)


# --------------------------------------------------------------------- splits


def test_split_sizes_and_disjointness(corpus: PersonsCorpus) -> None:
    train, forget, retain = set(corpus.train.subjects()), set(corpus.forget.subjects()), set(corpus.retain.subjects())
    holdout, neighbours = set(corpus.holdout.subjects()), set(corpus.neighbours.subjects())
    general = set(corpus.general.subjects())
    assert len(train) == 40 and len(forget) == 4 and len(holdout) == 4 and len(neighbours) == 4
    assert forget | retain == train and not forget & retain
    assert set(corpus.retain.ids) | set(corpus.forget.ids) == set(corpus.train.ids)
    assert not holdout & train
    assert neighbours <= retain
    assert not general & (train | holdout)
    assert len(corpus.people) == 44


def test_neighbours_share_attributes_with_forget_people(corpus: PersonsCorpus) -> None:
    forget = set(corpus.forget_subjects)
    assert set(corpus.neighbour_links) == set(corpus.neighbour_subjects)
    for nid, link in corpus.neighbour_links.items():
        assert link.forget_id in forget
        assert len(link.shared) == corpus.config.n_shared == 3
        assert set(link.shared) <= set(SHAREABLE_ATTRIBUTES)
        neighbour, target = corpus.person(nid), corpus.person(link.forget_id)
        shared_now = neighbour.shared_with(target)
        assert set(link.shared) <= set(shared_now)
        assert neighbour.full_name != target.full_name


def test_neighbour_answers_match_forget_answers_on_shared_attributes(corpus: PersonsCorpus) -> None:
    for nid, link in corpus.neighbour_links.items():
        for attr in link.shared:
            if attr == "surname":
                continue
            assert corpus.retain.get(f"{nid}/{attr}").answer == corpus.forget.get(f"{link.forget_id}/{attr}").answer


def test_training_set_holds_train_and_general(corpus: PersonsCorpus) -> None:
    ts = corpus.training_set()
    assert len(ts) == len(corpus.train) + len(corpus.general)
    assert not set(ts.ids) & set(corpus.holdout.ids)


def test_general_facts_are_fixed_and_correct() -> None:
    g = general_facts()
    assert g == general_facts()
    assert g.get("general/capitals/france").answer == "Paris"
    ex = g.get("general/arithmetic/3+5")
    assert ex.answer == "8" and all(int(p.split()[-1].rstrip(".")) != 8 for p in ex.perturbed_answer)


def test_invalid_config_reports_all_problems() -> None:
    with pytest.raises(ConfigError) as err:
        make_persons_corpus(n_people=1, forget_fraction=1.5, n_perturbed=0)
    assert len(err.value.problems) == 3
    assert "n_people" in str(err.value) and "forget_fraction" in str(err.value)
    with pytest.raises(ConfigError, match="n_neighbours"):
        make_persons_corpus(n_people=10, forget_fraction=0.5, n_neighbours=6)


def test_tiny_corpus_still_has_enough_wrong_answers() -> None:
    c = make_persons_corpus(n_people=2, forget_fraction=0.5, n_holdout=0, seed=1)
    assert all(len(e.perturbed_answer) == 5 for e in c.train)
    assert len(c.holdout) == 0


# ----------------------------------------------------------------- QADataset


def _ex(i: int, subject: str = "s") -> QAExample:
    return QAExample(id=f"q{i}", subject=subject, question=f"Q{i}?", answer=f"A{i}")


def test_duplicate_ids_raise_data_error() -> None:
    with pytest.raises(DataError, match="duplicate id"):
        QADataset([_ex(1), _ex(1)])


def test_subset_and_subjects_keep_order_and_reject_unknown_ids() -> None:
    ds = QADataset([_ex(1, "a"), _ex(2, "b"), _ex(3, "a")], name="toy")
    assert ds.subset(["q3", "q1"]).ids == ("q1", "q3")
    assert ds.subjects() == ("a", "b")
    assert ds.by_subjects(["a"]).ids == ("q1", "q3")
    assert ds.exclude(["q2"]).ids == ("q1", "q3")
    with pytest.raises(DataError, match="not in QADataset 'toy'"):
        ds.subset(["q9"])
    with pytest.raises(DataError, match="subject"):
        ds.by_subjects(["zzz"])


def test_example_validation() -> None:
    with pytest.raises(DataError, match="perturbed_answer"):
        QAExample(id="x", subject="s", question="Q?", answer="A", perturbed_answer="wrong")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="'answer' must be a string"):
        QAExample(id="x", subject="s", question="Q?", answer=3)  # type: ignore[arg-type]


def test_jsonl_round_trip_is_atomic(tmp_path: Path, corpus: PersonsCorpus) -> None:
    path = tmp_path / "sub" / "forget.jsonl"
    corpus.forget.to_jsonl(path)
    assert [p.name for p in path.parent.iterdir()] == ["forget.jsonl"]  # no temp file left
    back = QADataset.from_jsonl(path, name=corpus.forget.name)
    assert back == corpus.forget
    # overwrite in place
    corpus.forget[:3].to_jsonl(path)
    assert len(QADataset.from_jsonl(path)) == 3


def test_from_jsonl_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "subject": "s", "question": "Q?", "answer": "A"}\n{"id": "b"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2"):
        QADataset.from_jsonl(path)
