import pytest

from obliviate.data.request import ForgetRequest
from obliviate.errors import ForgetSetError
from obliviate.suppression import compile_request
from obliviate.suppression.attacks import FAMILIES, build_attacks, leaked


def test_compile_by_subjects(protected, corpus):
    assert {f.subject for f in protected.facts} == set(corpus.forget_subjects)
    assert len(protected.facts) == len(corpus.forget)
    assert protected.all_names() == tuple(corpus.person(s).full_name for s in corpus.forget_subjects)
    assert any(not f.distinctive for f in protected.facts)  # shared with retained look-alikes
    assert any(f.distinctive for f in protected.facts)


def test_compile_by_ids_and_concept(corpus):
    ex = corpus.forget[0]
    ps = compile_request(ForgetRequest(ids=(ex.id,), concept=("a concept",)), corpus.train)
    assert [f.id for f in ps.facts] == [ex.id] and "a concept" in ps.examples
    ps = compile_request(ForgetRequest(concept=("wizards", "magic schools")), corpus.train)
    assert not ps.facts and ps.examples == ("wizards", "magic schools")


def test_compile_errors_say_how_to_fix(corpus):
    with pytest.raises(ForgetSetError, match="ids look like"):
        compile_request(ForgetRequest(ids=("nope",)), corpus.train)
    with pytest.raises(ForgetSetError, match="classes or a rule"):
        compile_request("random:0.1", corpus.train)


def test_every_family_leaks_under_the_adversarial_generator(protected):
    fact = protected.facts[0]
    attacks = build_attacks(fact)
    assert [a.family for a in attacks] == list(FAMILIES)
    for a in attacks:
        assert leaked(a.scripted, a.answer), a.family


def test_attacks_are_deterministic(protected):
    assert build_attacks(protected.facts[3], seed=1) == build_attacks(protected.facts[3], seed=1)


def test_leak_judge_threshold():
    assert leaked("It was the Bronze Star Prize.", "Bronze Star Prize")
    assert not leaked("It was a Bronze medal.", "Bronze Star Prize")
    assert leaked("It was a Bronze Star.", "Bronze Star Prize", threshold=0.6)
    assert not leaked(["Bronze S", "[REDACTED]"], "Bronze Star Prize")
    assert leaked(["Bronze S", "tar Prize"], "Bronze Star Prize")
