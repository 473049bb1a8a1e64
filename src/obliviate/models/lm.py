"""Causal language models for the unlearning benchmarks, built or loaded offline.

Three things live here:

- :func:`train_tokenizer`: a byte-level BPE tokenizer trained locally with the
  ``tokenizers`` library (no hub download), wrapped as a ``transformers`` fast
  tokenizer so every model, built or loaded, is used through one interface.
- :class:`GPT2Spec` and :func:`build_gpt2`: a small GPT-2 from a
  ``transformers`` config, initialised under a seed (dropout off, so training
  is deterministic on CPU).
- :func:`load_lm`: any local causal LM and its tokenizer from a directory
  (``AutoModelForCausalLM`` / ``AutoTokenizer`` with ``local_files_only=True``).

:class:`QAFormat` turns a question (and answer) into token ids, through
:func:`obliviate.data.qa.format_qa` by default or the tokenizer's chat template
when asked. Training, removal, evaluation and attacks all encode through one
``QAFormat``, so the prompt a model is scored on is exactly the prompt it was
trained on, and the prompt ids are always a prefix of the full ids.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from obliviate.data.qa import format_qa
from obliviate.errors import ConfigError, DatasetNotFoundError

__all__ = [
    "EOS",
    "GPT2Spec",
    "QAFormat",
    "build_gpt2",
    "load_lm",
    "train_tokenizer",
    "transformer_blocks",
    "require_transformers",
]

log = logging.getLogger(__name__)

EOS = "<|endoftext|>"


def require_transformers() -> None:
    """Raise a clear error when the optional language-model dependencies are missing."""
    try:
        import tokenizers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "Language-model features need 'transformers' and 'tokenizers'; "
            "install them with: pip install 'obliviate[lm]'."
        ) from None


def train_tokenizer(texts: Iterable[str], *, vocab_size: int = 2048, min_frequency: int = 2) -> Any:
    """A byte-level BPE tokenizer trained on ``texts``, as a ``PreTrainedTokenizerFast``.

    Byte-level, as GPT-2's, so any text (accented names, symbols) encodes without
    unknown tokens. ``<|endoftext|>`` is the one special token and serves as BOS,
    EOS and padding. Training is deterministic: the same texts in the same order
    give the same vocabulary.
    """
    require_transformers()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if not isinstance(vocab_size, int) or vocab_size < 300:
        raise ConfigError(
            f"The 'vocab_size' parameter of train_tokenizer must be an int >= 300 "
            f"(256 bytes plus merges); got {vocab_size!r} instead."
        )
    corpus = [t for t in texts if t]
    if not corpus:
        raise ConfigError("train_tokenizer needs at least one non-empty text.")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer, length=len(corpus))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, pad_token=EOS,
                                   unk_token=None, clean_up_tokenization_spaces=False)


@dataclass(frozen=True)
class GPT2Spec:
    """Shape of a small GPT-2 (``transformers.GPT2Config``); dropout is off for determinism.

    n_layer, n_embd, n_head: depth, width and attention heads (n_embd % n_head == 0).
    n_positions: longest sequence (prompt + answer) in tokens.
    """

    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 128

    def __post_init__(self) -> None:
        problems = []
        for name in ("n_layer", "n_embd", "n_head", "n_positions"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                problems.append(f"The '{name}' parameter of GPT2Spec must be an int >= 1; got {v!r} instead.")
        if not problems and self.n_embd % self.n_head:
            problems.append(f"'n_embd' ({self.n_embd}) must be divisible by 'n_head' ({self.n_head}).")
        if problems:
            raise ConfigError("Invalid GPT-2 specification:", problems)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def build_gpt2(spec: GPT2Spec, vocab_size: int, *, seed: int, eos_token_id: int = 0) -> nn.Module:
    """A freshly initialised ``GPT2LMHeadModel``; the same spec and seed give the same weights."""
    require_transformers()
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab_size, n_positions=spec.n_positions, n_embd=spec.n_embd, n_layer=spec.n_layer,
        n_head=spec.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        activation_function="gelu", use_cache=False,  # one fused GELU kernel; no KV cache while training
        bos_token_id=eos_token_id, eos_token_id=eos_token_id, pad_token_id=eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    return model.eval()


def load_lm(path: str | os.PathLike[str], *, device: str | torch.device = "cpu",
            dtype: str | None = None) -> tuple[nn.Module, Any]:
    """Load a causal LM and its tokenizer from a local directory (never from the hub).

    ``dtype`` is a torch dtype name ("float32", "bfloat16"); None keeps the saved one.
    A tokenizer without a padding token gets its EOS token as padding.
    """
    require_transformers()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"--model-path {str(path)!r} is not a directory. Pass a folder holding a model saved with "
            "save_pretrained (config.json, weights) and its tokenizer files.", [str(folder)])
    kwargs: dict[str, Any] = {"local_files_only": True}
    if dtype is not None:
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ConfigError(f"Unknown dtype {dtype!r}; use a torch dtype name such as 'float32' or 'bfloat16'.")
        kwargs["dtype"] = getattr(torch, dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Could not load a causal LM from {folder}: {exc}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device).eval(), tokenizer


def transformer_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The model's stack of transformer blocks: ``(name, ModuleList)``.

    Found as the longest ``ModuleList`` whose items all have the same type
    (``transformer.h`` in GPT-2, ``model.layers`` in Llama-style models).
    """
    best: tuple[str, nn.ModuleList] | None = None
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) and len({type(m) for m in module}) == 1:
            if best is None or len(module) > len(best[1]):
                best = (name, module)
    if best is None:
        raise ConfigError(f"Found no stack of transformer blocks (a ModuleList of layers) in {type(model).__name__}.")
    return best


class QAFormat:
    """Encodes questions and answers for one tokenizer, the same way everywhere.

    ``prompt_ids(q)`` are the ids of the prompt; ``encode(q, a)`` returns
    ``(prompt_ids, answer_ids)`` where the answer ids end with EOS, so greedy
    decoding knows when to stop and answer-only losses include stopping.

    The prompt is ``format_qa(q)`` (``"Question: ...\\nAnswer:"``) and the answer
    ``" " + a``, or, with ``chat_template=True``, the tokenizer's own chat template
    applied to one user turn with the generation prompt, and the answer as is.
    """

    def __init__(self, tokenizer: Any, *, chat_template: bool = False, max_length: int | None = None) -> None:
        if chat_template and not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                "chat_template=True but this tokenizer has no chat template; "
                "pass chat_template=False to use the plain 'Question: ... Answer:' prompt."
            )
        if tokenizer.eos_token_id is None:
            raise ConfigError("The tokenizer has no EOS token; set tokenizer.eos_token before use.")
        self.tokenizer = tokenizer
        self.chat_template = bool(chat_template)
        self.max_length = max_length
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id)
        self._cache: dict[tuple[str, str | None], tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def prompt_text(self, question: str) -> str:
        if self.chat_template:
            return str(self.tokenizer.apply_chat_template(
                [{"role": "user", "content": question.strip()}], tokenize=False, add_generation_prompt=True))
        return format_qa(question)

    def answer_text(self, answer: str) -> str:
        return answer.strip() if self.chat_template else " " + answer.strip()

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_ids(self, question: str) -> tuple[int, ...]:
        return self.encode(question, None)[0]

    def encode(self, question: str, answer: str | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(prompt_ids, answer_ids + [eos])``; answer ids are empty when ``answer`` is None."""
        key = (question, answer)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        prompt = tuple(self._ids(self.prompt_text(question)))
        ans: tuple[int, ...] = () if answer is None else tuple(self._ids(self.answer_text(answer))) + (self.eos_id,)
        if self.max_length is not None and len(prompt) + len(ans) > self.max_length:
            keep = self.max_length - len(ans)
            if keep < 1:
                ans = ans[: self.max_length - 1]
                keep = 1
            prompt = prompt[-keep:]  # keep the end of the prompt, next to the answer
        self._cache[key] = (prompt, ans)
        return prompt, ans

    def context_prompt_ids(self, question: str, context: Sequence[tuple[str, str]]) -> tuple[int, ...]:
        """Prompt ids with question-answer pairs shown before the question (in-context attacks).

        Plain format: the ``format_qa(q, a)`` texts, one per line, then the prompt;
        chat format: earlier user/assistant turns, then the question.
        """
        if self.chat_template:
            turns: list[dict[str, str]] = []
            for q, a in context:
                turns += [{"role": "user", "content": q.strip()}, {"role": "assistant", "content": a.strip()}]
            turns.append({"role": "user", "content": question.strip()})
            text = str(self.tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True))
        else:
            text = "".join(format_qa(q, a) + "\n" for q, a in context) + format_qa(question)
        ids = tuple(self._ids(text))
        if self.max_length is not None and len(ids) > self.max_length - 1:
            ids = ids[-(self.max_length - 1):]
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of generated ids, cut at the first EOS, stripped."""
        ids = list(ids)
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return str(self.tokenizer.decode(ids, skip_special_tokens=True)).strip()

    def describe(self) -> dict[str, Any]:
        return {"chat_template": self.chat_template, "vocab_size": len(self.tokenizer),
                "max_length": self.max_length, "eos_id": self.eos_id}
