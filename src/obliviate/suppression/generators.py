"""Generators a guard pipeline can wrap, all behind one small protocol.

A generator streams the text it produces for a prompt, chunk by chunk:
``stream(prompt, *, prefix="", attempt=0)``. ``prefix`` is context placed before
the prompt (a system prompt, in-context examples); ``attempt`` counts
regenerations (attempt 0 is greedy, later attempts sample with a seed derived
from it, so a regenerated answer can differ and runs stay reproducible).

- :class:`CallableGenerator`: any Python callable ``text -> str`` (or an iterable
  of chunks), e.g. a client of a remote model;
- :class:`HFGenerator`: a Hugging Face causal LM and its tokenizer;
- :class:`QAGenerator`: obliviate's LM tasks (a model and its
  :class:`~obliviate.models.lm.QAFormat`), prompting exactly as in training.

:func:`as_generator` picks the adapter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from obliviate.errors import ConfigError

__all__ = ["Generator", "CallableGenerator", "HFGenerator", "QAGenerator", "ReplayGenerator", "as_generator"]

_WORDS = re.compile(r"\S+\s*|\s+")


@runtime_checkable
class Generator(Protocol):
    def stream(self, prompt: str, *, prefix: str = "", attempt: int = 0) -> Iterator[str]: ...


def word_chunks(text: str) -> Iterator[str]:
    """A text as a stream of words (with their trailing spaces)."""
    yield from _WORDS.findall(text)


class CallableGenerator:
    """Wraps ``fn(text) -> str | Iterable[str]``; a string result is streamed word by word.

    With ``pass_attempt=True`` the callable is called as ``fn(text, attempt=n)``.
    """

    def __init__(self, fn: Callable[..., str | Iterable[str]], *, pass_attempt: bool = False) -> None:
        if not callable(fn):
            raise ConfigError(f"CallableGenerator takes a callable; got {type(fn).__name__}.")
        self.fn = fn
        self.pass_attempt = pass_attempt

    def stream(self, prompt: str, *, prefix: str = "", attempt: int = 0) -> Iterator[str]:
        out = self.fn(prefix + prompt, attempt=attempt) if self.pass_attempt else self.fn(prefix + prompt)
        if isinstance(out, str):
            yield from word_chunks(out)
        else:
            for chunk in out:
                if not isinstance(chunk, str):
                    raise ConfigError(f"The wrapped callable must return text or an iterable of text; "
                                      f"got a chunk of type {type(chunk).__name__}.")
                yield chunk


class HFGenerator:
    """A Hugging Face causal LM, decoded token by token (greedy; sampling on regeneration).

    template: how the prompt becomes model text (``"{prompt}"`` by default).
    """

    def __init__(self, model: Any, tokenizer: Any, *, max_new_tokens: int = 32, template: str = "{prompt}",
                 temperature: float = 0.8, seed: int = 0, device: str = "cpu") -> None:
        if not hasattr(model, "forward") or tokenizer is None:
            raise ConfigError("HFGenerator takes a causal LM (a torch module) and its tokenizer.")
        self.model, self.tokenizer = model, tokenizer
        self.max_new_tokens, self.template = max_new_tokens, template
        self.temperature, self.seed, self.device = temperature, seed, device
        eos = getattr(tokenizer, "eos_token_id", None)
        self.eos_id = int(eos) if eos is not None else None

    def text_for(self, prompt: str, prefix: str) -> str:
        return prefix + self.template.format(prompt=prompt)

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def stream(self, prompt: str, *, prefix: str = "", attempt: int = 0) -> Iterator[str]:
        import torch

        ids = self._ids(self.text_for(prompt, prefix))
        limit = getattr(getattr(self.model, "config", None), "n_positions", None) or 10**9
        ids = ids[-(limit - self.max_new_tokens):] if len(ids) + self.max_new_tokens > limit else ids
        gen = torch.Generator().manual_seed(self.seed * 1000 + attempt)
        x = torch.tensor([ids], dtype=torch.long, device=self.device)
        past = None
        import inspect

        # transformers 5 renamed the key-value cache argument; older versions call it past_key_values
        cache_arg = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        out: list[int] = []
        shown = ""
        seen = x.shape[1]  # tokens the model has attended to so far (one unpadded sequence: all real)
        with torch.no_grad():
            for _ in range(self.max_new_tokens):
                mask = torch.ones((1, seen), dtype=torch.long, device=self.device)
                res = self.model(input_ids=x, attention_mask=mask, use_cache=True, **{cache_arg: past})
                past = getattr(res, "cache", None) or res.past_key_values
                logits = res.logits[0, -1].float()
                if attempt == 0:
                    nxt = int(torch.argmax(logits))
                else:
                    probs = torch.softmax(logits / self.temperature, dim=-1).cpu()
                    nxt = int(torch.multinomial(probs, 1, generator=gen))
                if nxt == self.eos_id:
                    break
                out.append(nxt)
                text = self.tokenizer.decode(out, skip_special_tokens=True)
                if len(text) > len(shown) and not text.endswith("\ufffd"):
                    yield text[len(shown):]
                    shown = text
                x = torch.tensor([[nxt]], dtype=torch.long, device=self.device)
                seen += 1


class QAGenerator(HFGenerator):
    """obliviate's LM tasks: prompts written by the task's :class:`~obliviate.models.lm.QAFormat`.

    The prefix (system prompt, in-context examples) goes before ``fmt.prompt_text(question)``.
    :meth:`batch` generates many greedy answers at once (evaluation).
    """

    def __init__(self, model: Any, fmt: Any, *, max_new_tokens: int = 32, **kwargs: Any) -> None:
        super().__init__(model, fmt.tokenizer, max_new_tokens=max_new_tokens, **kwargs)
        self.fmt = fmt
        self.eos_id = fmt.eos_id

    def text_for(self, prompt: str, prefix: str) -> str:
        return prefix + self.fmt.prompt_text(prompt)

    def batch(self, prompts: Sequence[str], *, prefix: str | Sequence[str] = "", batch_size: int = 64) -> list[str]:
        """Greedy answers to ``prompts`` (the same text :meth:`stream` would give at attempt 0)."""
        from obliviate.audit.lm_eval import greedy_continuations

        prefixes = [prefix] * len(prompts) if isinstance(prefix, str) else list(prefix)
        limit = self.fmt.max_length or getattr(self.model.config, "n_positions", 1024)
        ids = []
        for p, pre in zip(prompts, prefixes, strict=True):
            x = self._ids(self.text_for(p, pre))
            ids.append(x[-(limit - self.max_new_tokens):] if len(x) + self.max_new_tokens > limit else x)
        conts = greedy_continuations(self.model, ids, max_new_tokens=self.max_new_tokens, eos_id=self.fmt.eos_id,
                                     pad_id=self.fmt.pad_id, batch_size=batch_size, device=self.device)
        return [self.fmt.decode(c) for c in conts]


class ReplayGenerator:
    """Streams answers computed before (by prompt and prefix), word by word: evaluation replays
    batched model outputs through the pipeline instead of decoding each prompt again."""

    def __init__(self, answers: dict[tuple[str, str], str], *, fallback: Generator | None = None) -> None:
        self.answers = answers
        self.fallback = fallback

    def stream(self, prompt: str, *, prefix: str = "", attempt: int = 0) -> Iterator[str]:
        hit = self.answers.get((prefix, prompt))
        if hit is None or attempt > 0:
            if self.fallback is None:
                raise ConfigError("ReplayGenerator has no answer for this prompt and no fallback generator.")
            yield from self.fallback.stream(prompt, prefix=prefix, attempt=attempt)
            return
        yield from word_chunks(hit)


def as_generator(obj: Any, *, tokenizer: Any = None, fmt: Any = None, **kwargs: Any) -> Any:
    """The generator adapter for ``obj``: a Generator as is, a model with ``fmt`` (QAGenerator) or
    ``tokenizer`` (HFGenerator), or a plain callable (CallableGenerator)."""
    if isinstance(obj, Generator) and not callable(getattr(obj, "forward", None)):
        return obj
    if fmt is not None:
        return QAGenerator(obj, fmt, **kwargs)
    if tokenizer is not None:
        return HFGenerator(obj, tokenizer, **kwargs)
    if hasattr(obj, "forward") and hasattr(obj, "generate"):
        raise ConfigError("A Hugging Face model needs its tokenizer (tokenizer=...) or an obliviate QAFormat (fmt=...).")
    if callable(obj):
        return CallableGenerator(obj, **kwargs)
    raise ConfigError(f"Cannot generate with a {type(obj).__name__}: pass a callable text -> text, a Hugging Face "
                      "causal LM with its tokenizer, or a model with its QAFormat.")
