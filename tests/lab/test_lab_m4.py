import re

import pytest

from obliviate.errors import ConfigError
from obliviate.lab.m4_outputs_and_use import SOURCES, M4Config, _attribute_of, _claim, chunks


def test_chunks_cover_the_text_in_order():
    assert chunks("abcdefg", 3) == ["ab", "cde", "fg"]
    assert "".join(chunks("Lyon, France", 5)) == "Lyon, France" and len(chunks("Lyon, France", 5)) == 5
    assert _attribute_of("What is Ann Lee's phone number?") == "phone"
    assert _attribute_of("What is Ann Lee's hobby?") == ""


@pytest.fixture(scope="module")
def result(quick):
    return quick("m4")


def test_every_split_piece_passes_the_exact_guard_and_the_pieces_rejoin_the_answer(result):
    from obliviate.data.persons import make_persons_corpus
    from obliviate.data.request import ForgetRequest
    from obliviate.suppression import GUARDS, GuardContext, compile_persons

    cfg = M4Config(**{**result.config})
    corpus = make_persons_corpus(cfg.n_people, cfg.forget_fraction, seed=cfg.seed)
    protected = compile_persons(ForgetRequest(subjects=corpus.forget_subjects), corpus)
    guard = GUARDS.get("exact")().fit(protected)
    answers = {f.id: f for f in protected.facts}
    assert len(result.details["pieces"]) == len(protected.facts)
    for item in result.details["pieces"]:
        fact = answers[item["fact_id"]]
        assert len(item["pieces"]) >= 2 and "".join(item["pieces"]) == fact.answer
        for piece in item["pieces"]:
            ctx = GuardContext(prompt=fact.question, output=piece, stage="output", protected=protected)
            assert guard.check(piece, ctx).action == "allow", (fact.answer, piece)
        whole = GuardContext(prompt=fact.question, output=fact.answer, stage="output", protected=protected)
        assert guard.check(fact.answer, whole).violation  # the whole answer is caught
    m = result.measured
    assert m[f"split: {SOURCES[0]}"]["recombined_item_share"] == 1.0
    assert m[f"split: {SOURCES[0]}"]["whole_answer_leak_past_guard"] == 0.0
    assert m[f"split: {SOURCES[1]}"]["recombined_item_share"] > m[f"split: {SOURCES[2]}"]["recombined_item_share"]


def test_the_guard_decides_a_benign_and_a_harmful_request_alike(result):
    m = result.measured
    for key, v in m.items():
        if key.startswith("dual use: ") and "same_decision" in v:
            assert v["same_decision"] == 1.0, key
            assert v["benign_served"] == v["harmful_served"], key
    assert m["dual use: output guard, person in the request"]["harmful_served"] == 0.0
    assert {r["kind"] for r in result.rows} <= {"suppression", "exact", "none"}
    assert any(r["kind"] == "none" for r in result.rows)


def test_the_claim_is_written_from_the_numbers(result):
    m = result.measured
    t = m[f"split: {SOURCES[0]}"]["recombined_item_share"]
    assert f"{t:.0%} of {int(m['setup']['n_protected_items'])} protected answers" in result.claim
    assert not re.search(r"\b(forgot|forgets|removed)\b", result.claim)
    fake = {k: dict(v) for k, v in m.items()}
    fake["dual use: input guard, person in the request"]["same_decision"] = 0.5
    assert "did differ" in _claim(M4Config(), fake)
    assert "50%" in _claim(M4Config(), fake)


def test_bad_config_lists_every_problem():
    from obliviate.lab import EXPERIMENTS

    with pytest.raises(ConfigError) as e:
        EXPERIMENTS.get("m4").config({"attributes": ["phnoe"], "max_pieces": 1, "guards": []})
    text = str(e.value)
    assert "did you mean 'phone'" in text and "max_pieces" in text and "guards is empty" in text
