"""``GuardedGenerator``: input guards before generation, output guards on the stream.

Input guards see the prompt: a violation refuses (or, with a ``redact`` on-fail
action, redacts the prompt and goes on); a ``rewrite`` (system prompt, in-context
examples) adds context before the prompt. Output guards see the output so far
after every streamed chunk and generation stops at the first violation: the
on-fail action then refuses, redacts the span and goes on streaming, or
regenerates (up to ``k`` times, then refuses). Every decision is kept on the
result and logged (guard, action, reason, milliseconds).

This is suppression: the wrapped model is unchanged and still holds what the
guards keep out of its outputs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from obliviate.errors import ConfigError
from obliviate.suppression.base import KIND, Decision, Guard, GuardContext, GuardSpec, OnFail
from obliviate.suppression.generators import as_generator

__all__ = ["GuardedGenerator", "GuardedOutput"]

log = logging.getLogger(__name__)


@dataclass
class GuardedOutput:
    """What the guarded system answered, and why.

    text: the answer shown to the user; refused: a guard refused; redacted: some span was
    redacted; raw: what the generator produced in the last attempt before any action;
    decisions: every guard decision in order; attempts: generations started;
    guard_ms: time spent in guards; chars_checked: characters the guards looked at.
    """

    text: str
    refused: bool = False
    redacted: bool = False
    raw: str = ""
    decisions: list[Decision] = field(default_factory=list)
    attempts: int = 0
    guard_ms: float = 0.0
    chars_checked: int = 0
    chunks: int = 0
    kind: str = KIND

    @property
    def intervened(self) -> bool:
        return self.refused or self.redacted

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "refused": self.refused, "redacted": self.redacted, "raw": self.raw,
                "attempts": self.attempts, "guard_ms": self.guard_ms, "chars_checked": self.chars_checked,
                "decisions": [d.to_dict() for d in self.decisions], "kind": self.kind}


class _Refuse(Exception):
    def __init__(self, decision: Decision, message: str) -> None:
        self.decision, self.message = decision, message


class GuardedGenerator:
    """Wrap ``generator`` (see :func:`~obliviate.suppression.generators.as_generator`) with guards.

    guards: :class:`GuardSpec` entries (or bare guards: output stage, refuse). protected:
    the compiled forget request; every guard not yet fitted is fitted on it.
    check_every: run output guards after every this many chunks (1: every chunk).
    """

    def __init__(self, generator: Any, guards: Sequence[GuardSpec | Guard], *, protected: Any = None,
                 check_every: int = 1, tokenizer: Any = None, fmt: Any = None) -> None:
        self.generator = as_generator(generator, tokenizer=tokenizer, fmt=fmt)
        specs = []
        for g in guards:
            if isinstance(g, Guard):
                g = GuardSpec(g, "output" if "output" in g.stages else "input")
            if not isinstance(g, GuardSpec):
                raise ConfigError(f"GuardedGenerator takes GuardSpec or Guard entries; got {type(g).__name__}.")
            specs.append(g)
        for s in specs:
            if s.guard.protected_ is None:
                if protected is None:
                    raise ConfigError(f"Guard {s.guard.name!r} is not fitted: pass protected= (a ProtectedSet from "
                                      "compile_request) or fit the guard first.")
                s.guard.fit(protected)
        if not isinstance(check_every, int) or check_every < 1:
            raise ConfigError(f"The 'check_every' parameter of GuardedGenerator must be an int >= 1; got {check_every!r}.")
        self.specs = specs
        self.protected = protected if protected is not None else next(
            (s.guard.protected_ for s in specs if s.guard.protected_ is not None), None)
        self.last: GuardedOutput | None = None
        self.check_every = check_every

    @property
    def input_specs(self) -> list[GuardSpec]:
        return [s for s in self.specs if s.stage == "input"]

    @property
    def output_specs(self) -> list[GuardSpec]:
        return [s for s in self.specs if s.stage == "output"]

    def _run(self, spec: GuardSpec, text: str, ctx: GuardContext, out: GuardedOutput) -> Decision:
        t0 = time.perf_counter()
        d = spec.guard.check(text, ctx)
        ms = (time.perf_counter() - t0) * 1000
        if d.elapsed_ms > 0:  # a guard that replays a cached decision reports the time it first took
            ms = d.elapsed_ms
        out.guard_ms += ms
        out.chars_checked += len(text)
        d = replace(d, elapsed_ms=ms, stage=spec.stage, on_fail=spec.on_fail.action if d.violation else None)
        if d.action == "block" and spec.on_fail.action == "redact" and d.span is not None:
            d = replace(d, action="redact")
        if d.action != "allow":
            log.info("guard %s (%s) %s in %.2f ms: %s", d.guard, d.stage, d.action, ms, d.reason)
        else:
            log.debug("guard %s (%s) allow in %.2f ms", d.guard, d.stage, ms)
        out.decisions.append(d)
        return d

    def generate(self, prompt: str) -> GuardedOutput:
        """The guarded answer to ``prompt``."""
        if not isinstance(prompt, str):
            raise ConfigError(f"GuardedGenerator.generate takes a prompt string; got {type(prompt).__name__}.")
        out = GuardedOutput(text="")
        try:
            prompt, prefix = self._inputs(prompt, out)
            self._outputs(prompt, prefix, out)
        except _Refuse as r:
            out.text, out.refused = r.message, True
        return out

    __call__ = generate

    def stream(self, prompt: str, *, hold_back: int | None = None) -> Iterator[str]:
        """The guarded answer as it is generated, chunk by chunk.

        Text is released only after the output guards have checked it, and the last
        ``hold_back`` characters are held until later chunks (default: four times the
        longest protected string, room for one spelled out letter by letter), so a protected
        string is never half shown before it is matched. On a refusal the refusal message
        is the last chunk; regeneration is possible only while nothing has been released.
        ``self.last`` holds the :class:`GuardedOutput` of the latest stream.
        """
        out = self.last = GuardedOutput(text="")
        try:
            prompt, prefix = self._inputs(prompt, out)
        except _Refuse as r:
            out.text, out.refused = r.message, True
            yield r.message
            return
        hold = self._hold_back() if hold_back is None else hold_back
        max_k = max((s.on_fail.k for s in self.output_specs if s.on_fail.action == "regenerate"), default=0)
        for attempt in range(max_k + 1):
            out.attempts = attempt + 1
            visible, sent, retry = "", 0, False
            out.raw = ""
            gen = self.generator.stream(prompt, prefix=prefix, attempt=attempt)
            try:
                for chunk in gen:
                    visible += chunk
                    out.raw += chunk
                    out.chunks += 1
                    try:  # once text is out, a violation can no longer be regenerated away
                        visible, retry = self._check_output(visible, prompt, attempt if not sent else 1 << 30, out)
                    except _Refuse as r:
                        out.text, out.refused = (visible[:sent] + " " + r.message).strip(), True
                        yield (" " if sent else "") + r.message
                        return
                    if retry:
                        break
                    if len(visible) - hold > sent:
                        yield visible[sent:len(visible) - hold]
                        sent = len(visible) - hold
            finally:
                close = getattr(gen, "close", None)
                if close is not None:
                    close()
            if not retry:
                if len(visible) > sent:
                    yield visible[sent:]
                out.text = visible.strip()
                return

    def _hold_back(self) -> int:
        strings = self.protected.strings() if self.protected is not None else ()
        return 4 * max((len(x) for x in strings), default=16)

    def generate_many(self, prompts: Iterable[str]) -> list[GuardedOutput]:
        return [self.generate(p) for p in prompts]

    def _inputs(self, prompt: str, out: GuardedOutput) -> tuple[str, str]:
        prefix = ""
        for spec in self.input_specs:
            ctx = GuardContext(prompt=prompt, stage="input", protected=self.protected)
            d = self._run(spec, prompt, ctx, out)
            if d.action == "rewrite":
                prefix += d.replacement or ""
            elif d.action == "redact" and d.span:
                s, e = d.span
                prompt = prompt[:s] + spec.on_fail.redaction + prompt[e:]
                out.redacted = True
            elif d.action == "block":
                raise _Refuse(d, spec.on_fail.message)
        return prompt, prefix

    def _outputs(self, prompt: str, prefix: str, out: GuardedOutput) -> None:
        specs = self.output_specs
        max_k = max((s.on_fail.k for s in specs if s.on_fail.action == "regenerate"), default=0)
        for attempt in range(max_k + 1):
            out.attempts = attempt + 1
            visible, raw = "", ""
            stream = self.generator.stream(prompt, prefix=prefix, attempt=attempt)
            retry = False
            try:
                n = 0
                for chunk in stream:
                    visible += chunk
                    raw += chunk
                    out.chunks += 1
                    n += 1
                    if specs and n % self.check_every == 0:
                        visible, retry = self._check_output(visible, prompt, attempt, out)
                        if retry:
                            break
                else:
                    if specs and n % self.check_every:
                        visible, retry = self._check_output(visible, prompt, attempt, out)
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()  # stop the generator at the first violation
            out.raw = raw
            if not retry:
                out.text = visible.strip()
                return
        raise AssertionError("unreachable: the last attempt refuses instead of retrying")  # pragma: no cover

    def _check_output(self, visible: str, prompt: str, attempt: int, out: GuardedOutput) -> tuple[str, bool]:
        """Run the output guards on ``visible``; returns the (redacted) text and whether to regenerate."""
        for spec in self.output_specs:
            for _ in range(16):  # a redaction may uncover another match of the same guard
                ctx = GuardContext(prompt=prompt, output=visible, stage="output", protected=self.protected)
                d = self._run(spec, visible, ctx, out)
                if d.action == "redact" and d.span:
                    s, e = d.span
                    visible = visible[:s] + spec.on_fail.redaction + visible[e:]
                    out.redacted = True
                    continue
                if d.action == "block":
                    if spec.on_fail.action == "regenerate" and attempt < spec.on_fail.k:
                        return visible, True
                    raise _Refuse(d, spec.on_fail.message)
                break
        return visible, False


def pipeline(names: Sequence[str | tuple[str, str]], protected: Any, *, generator: Any,
             on_fail: OnFail | None = None, config: dict[str, dict[str, Any]] | None = None) -> GuardedGenerator:
    """A GuardedGenerator from guard names (``"exact"`` at its default stage, or ``("exact", "input")``)."""
    from obliviate.suppression.base import GUARDS

    specs = []
    for item in names:
        name, stage = (item, None) if isinstance(item, str) else item
        cls = GUARDS.get(name)
        specs.append(GuardSpec(cls(**(config or {}).get(name, {})), stage or cls.stages[-1], on_fail or OnFail()))
    return GuardedGenerator(generator, specs, protected=protected)
