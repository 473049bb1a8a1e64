"""The causal-LM objective: what removal methods optimise on question-answer data.

:class:`CausalLMObjective` implements :class:`~obliviate.removal.objective.Objective`
for a causal language model and a :class:`~obliviate.models.lm.QAFormat`, so the
methods written against the interface (gradient ascent, GradDiff, KL,
fine-tuning) run on language models unchanged:

- data are :class:`~obliviate.data.qa.QADataset` objects (``task.forget``, ``task.retain``);
- a batch is a dict of right-padded ``input_ids``, ``attention_mask`` and ``labels``
  (``-100`` outside the answer tokens);
- ``loss`` is the negative log-likelihood of the answer tokens only (mean per
  token; per example with ``reduction="none"``);
- ``log_probs`` are next-token log-distributions at the answer positions,
  shape ``(n_answer_tokens, vocab)``, so ``kl_to`` is a per-token KL over answers.

Language-model-only methods (NPO, SimNPO, IdkFT, WHP) also use
:meth:`sequence_logprob`, :meth:`with_answers`, :meth:`answer_logits` and
:meth:`with_targets`.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.data.qa import QADataset, QAExample
from obliviate.errors import ConfigError, DataError
from obliviate.models.lm import QAFormat
from obliviate.removal.objective import Objective
from obliviate.training.lm import answer_nll, answer_positions_logits, collate_qa, encode_dataset
from obliviate.training.trainer import batch_indices

__all__ = ["CausalLMObjective", "LMBatch"]

LMBatch = dict[str, torch.Tensor]


class CausalLMObjective(Objective):
    """Answer-token losses and distributions of a causal LM on QA pairs.

    ``fmt`` encodes questions and answers (the same :class:`QAFormat` the model
    was trained with). Encodings are cached per dataset object.
    """

    def __init__(self, fmt: QAFormat, device: str | torch.device = "cpu") -> None:
        if not isinstance(fmt, QAFormat):
            raise ConfigError(f"CausalLMObjective takes a QAFormat; got {type(fmt).__name__}. "
                              "Build one with QAFormat(tokenizer).")
        self.fmt = fmt
        self.device = device
        self._encoded: dict[int, tuple[weakref.ref[QADataset], list[tuple[tuple[int, ...], tuple[int, ...]]]]] = {}

    # --- data ---------------------------------------------------------------
    def encoded(self, data: QADataset) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        if not isinstance(data, QADataset):
            raise DataError(f"A language-model objective takes QADataset data; got {type(data).__name__}.")
        hit = self._encoded.get(id(data))
        if hit is not None and hit[0]() is data:
            return hit[1]
        enc = encode_dataset(self.fmt, data)
        self._encoded[id(data)] = (weakref.ref(data), enc)
        return enc

    def collate(self, items: Sequence[tuple[tuple[int, ...], tuple[int, ...]]]) -> LMBatch:
        return collate_qa(items, self.fmt.pad_id, device=self.device)

    def batches(self, data: QADataset, batch_size: int, generator: torch.Generator,
                *, shuffle: bool = True) -> Iterator[LMBatch]:
        enc = self.encoded(data)
        for idx in batch_indices(len(enc), batch_size, generator, shuffle=shuffle):
            yield self.collate([enc[int(i)] for i in idx])

    def size(self, data: QADataset) -> int:
        return len(data)

    # --- losses and distributions ----------------------------------------------
    def loss(self, model: nn.Module, batch: LMBatch, *, reduction: str = "mean") -> torch.Tensor:
        nll, count = answer_nll(model, batch)
        if reduction == "mean":
            return nll.sum() / count.sum().clamp_min(1)
        if reduction == "none":
            return nll / count.clamp_min(1)
        if reduction == "sum":
            return nll.sum()
        raise ConfigError(f"reduction must be 'mean', 'none' or 'sum'; got {reduction!r}.")

    def log_probs(self, model: nn.Module, batch: LMBatch) -> torch.Tensor:
        logits, _, _ = answer_positions_logits(model, batch)
        return F.log_softmax(logits, dim=-1)

    def answer_logits(self, model: nn.Module, batch: LMBatch) -> torch.Tensor:
        """Raw next-token logits at the answer positions, ``(n_answer_tokens, vocab)``."""
        return answer_positions_logits(model, batch)[0]

    def sequence_logprob(self, model: nn.Module, batch: LMBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log P(answer | prompt) summed over tokens, number of answer tokens)`` per example."""
        nll, count = answer_nll(model, batch)
        return -nll, count

    # --- target rewriting (LM-only methods) ------------------------------------
    def with_answers(self, data: QADataset, answers: Sequence[str], *, name: str | None = None) -> QADataset:
        """``data`` with each answer replaced (e.g. by a refusal); ids and questions kept."""
        if len(answers) != len(data):
            raise DataError(f"with_answers needs one answer per example ({len(data)}); got {len(answers)}.")
        return QADataset((QAExample(id=ex.id, subject=ex.subject, question=ex.question, answer=a)
                          for ex, a in zip(data, answers, strict=True)), name=name or data.name)

    def with_targets(self, batch: LMBatch, targets: torch.Tensor) -> LMBatch:
        """The batch with its answer-position labels replaced by ``targets`` (one per answer token).

        Inputs stay the original text (teacher forcing), as in "Who's Harry Potter".
        """
        labels = batch["labels"].clone()
        mask = labels[:, 1:] != -100
        if int(mask.sum()) != targets.numel():
            raise DataError(f"with_targets needs {int(mask.sum())} targets (one per answer token); "
                            f"got {targets.numel()}.")
        shifted = labels[:, 1:]
        shifted[mask] = targets.to(labels.dtype).reshape(-1)
        return {**batch, "labels": labels}

    def relabel_random(self, batch: LMBatch, generator: torch.Generator, *, exclude_true: bool = True) -> Any:
        raise ConfigError("CausalLMObjective does not relabel at random; for language models use "
                          "'idk' (refusal targets) or 'whp' (generic targets) instead of 'random_label'.")
