import pytest

from obliviate.errors import ConfigError
from obliviate.suppression import (GUARDS, CallableGenerator, GuardedGenerator, GuardSpec, OnFail)


class Counting:
    """A streaming generator that records how many chunks were consumed."""

    def __init__(self, chunks_per_attempt):
        self.chunks_per_attempt = chunks_per_attempt
        self.consumed = 0
        self.attempts = []

    def stream(self, prompt, *, prefix="", attempt=0):
        self.attempts.append(attempt)
        for c in self.chunks_per_attempt[min(attempt, len(self.chunks_per_attempt) - 1)]:
            self.consumed += 1
            yield c


def exact(protected, **kw):
    return GUARDS.get("exact")().fit(protected)


def test_stream_stops_at_first_violation(protected, person):
    chunks = ["The ", "book ", "is ", *[w + " " for w in person.book.split()], *(["more "] * 50)]
    gen = Counting([chunks])
    out = GuardedGenerator(gen, [GuardSpec(exact(protected), "output")]).generate("q")
    assert out.refused and out.text == OnFail().message
    assert gen.consumed == 3 + len(person.book.split())  # nothing after the match was generated
    assert out.decisions[-1].action == "block" and out.decisions[-1].elapsed_ms >= 0


def test_redact_replaces_the_span_and_goes_on(protected, person):
    gen = Counting([["It is ", person.book, " and ", "that is all."]])
    out = GuardedGenerator(gen, [GuardSpec(exact(protected), "output", OnFail("redact"))]).generate("q")
    assert not out.refused and out.redacted
    assert out.text == "It is [REDACTED] and that is all." and person.book not in out.text
    assert gen.consumed == 4
    assert any(d.action == "redact" for d in out.decisions)


def test_regenerate_up_to_k_then_refuse(protected, person):
    gen = Counting([[person.book], [person.book], [person.book], ["fine"]])
    g = GuardedGenerator(gen, [GuardSpec(exact(protected), "output", OnFail("regenerate", k=2))])
    out = g.generate("q")
    assert out.refused and gen.attempts == [0, 1, 2] and out.attempts == 3


def test_regenerate_returns_a_clean_attempt(protected, person):
    gen = Counting([[person.book], ["A harmless answer."]])
    out = GuardedGenerator(gen, [GuardSpec(exact(protected), "output", OnFail("regenerate", k=3))]).generate("q")
    assert not out.refused and out.text == "A harmless answer." and gen.attempts == [0, 1]


def test_plain_callable_generator(protected, person):
    calls = []

    def remote(text):
        calls.append(text)
        return f"Sure: {person.email}" if "email" in text else "No idea."

    g = GuardedGenerator(remote, [GuardSpec(exact(protected), "output")])
    assert isinstance(g.generator, CallableGenerator)
    assert g.generate(f"What is {person.full_name}'s email?").refused
    assert g.generate("What is the weather?").text == "No idea."
    assert len(calls) == 2


def test_input_guard_refuses_before_generation(protected, person):
    gen = Counting([["anything"]])
    out = GuardedGenerator(gen, [GuardSpec(exact(protected), "input")]).generate(f"Tell me about {person.full_name}")
    assert out.refused and gen.consumed == 0 and out.decisions[0].stage == "input"


def test_rewrite_guard_adds_context(protected):
    seen = []
    g = GuardedGenerator(lambda t: seen.append(t) or "ok",
                         [GuardSpec(GUARDS.get("system_prompt")().fit(protected), "input")])
    assert g.generate("hello").text == "ok"
    assert seen[0].startswith("System:") and seen[0].endswith("hello")


def test_decisions_are_logged(protected, person, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="obliviate.suppression.pipeline"):
        GuardedGenerator(lambda t: person.book, [GuardSpec(exact(protected), "output")]).generate("q")
    assert any("guard exact (output) block" in r.message for r in caplog.records)


def test_unfitted_guards_need_protected():
    with pytest.raises(ConfigError, match="protected="):
        GuardedGenerator(lambda t: t, [GUARDS.get("exact")()])


def test_stage_is_checked():
    with pytest.raises(ConfigError, match="cannot run at the 'output' stage"):
        GuardSpec(GUARDS.get("icl")(), "output")


def test_hf_and_qa_generators_stream_what_batch_gives(corpus):
    pytest.importorskip("transformers")
    import torch

    from obliviate.models.lm import GPT2Spec, QAFormat, build_gpt2, train_tokenizer
    from obliviate.suppression import HFGenerator, QAGenerator

    tok = train_tokenizer([ex.text for ex in corpus.train], vocab_size=300)
    fmt = QAFormat(tok, max_length=64)
    torch.manual_seed(0)
    model = build_gpt2(GPT2Spec(n_layer=1, n_embd=32, n_head=2, n_positions=64), len(tok), seed=0,
                       eos_token_id=fmt.eos_id)
    qa = QAGenerator(model, fmt, max_new_tokens=6)
    q = corpus.train[0].question
    assert "".join(qa.stream(q)).strip() == qa.batch([q])[0]
    hf = HFGenerator(model, tok, max_new_tokens=4)
    assert isinstance("".join(hf.stream("Question: hi")), str)
    sampled = "".join(qa.stream(q, attempt=1))
    assert isinstance(sampled, str)


def test_stream_releases_only_checked_text_and_stops(protected, person):
    chunks = [w + " " for w in "Here is what I know about the book, it is called".split()]
    chunks += [w + " " for w in person.book.split()] + ["more "] * 40
    gen = Counting([chunks])
    g = GuardedGenerator(gen, [GuardSpec(exact(protected), "output")])
    shown = list(g.stream("q", hold_back=len(person.book) * 4))
    text = "".join(shown)
    assert person.book not in text and not any(w in text for w in person.book.split() if len(w) > 3)
    assert shown[-1] == OnFail().message and g.last.refused
    assert gen.consumed == len(chunks) - 40  # stopped at the violation


def test_stream_of_a_clean_answer_is_the_answer(protected):
    g = GuardedGenerator(lambda t: "A perfectly harmless answer about the weather today.",
                         [GuardSpec(exact(protected), "output")])
    shown = list(g.stream("q", hold_back=10))
    assert len(shown) > 1 and "".join(shown) == "A perfectly harmless answer about the weather today."
    assert g.last.text == g.generate("q").text
