"""Greedy decoding of causal LMs on token-id prompts (left-padded batches, explicit masks).

Model I/O that training (exact-answer accuracy) and audits (greedy answers, in-context
and extraction attacks) both need, so it sits below both layers. Every ``generate`` call
passes the attention mask and the padding id: batches are left-padded with a pad id that
is often the EOS id, which ``transformers`` cannot tell apart from text on its own (and
warns about, once per batch, when either is missing).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from obliviate.models.lm import QAFormat

__all__ = ["sorted_batches", "left_padded", "greedy_continuations", "greedy_answers"]


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices in batches of similar length: less padding, and a deterministic order."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]


def left_padded(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` of prompts padded on the left to the longest one."""
    length = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), length), dtype=torch.long)
    for row, p in enumerate(prompts):
        if p:
            ids[row, length - len(p):] = torch.tensor(list(p), dtype=torch.long)
            mask[row, length - len(p):] = 1
    return ids, mask


@torch.no_grad()
def greedy_continuations(model: nn.Module, prompts: Sequence[Sequence[int]], *, max_new_tokens: int,
                         eos_id: int, pad_id: int, batch_size: int = 64,
                         device: str | torch.device = "cpu") -> list[list[int]]:
    """Greedy continuation ids of each prompt (left-padded batches), cut after EOS."""
    was_training = model.training
    model.eval()
    out: list[list[int]] = [[] for _ in prompts]
    for idx in sorted_batches([len(p) for p in prompts], batch_size):
        ids, mask = left_padded([prompts[i] for i in idx], pad_id)
        gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                             max_new_tokens=max_new_tokens, eos_token_id=eos_id, pad_token_id=pad_id,
                             use_cache=True)
        new = gen[:, ids.shape[1]:].cpu().tolist()
        for row, i in enumerate(idx):
            seq = new[row]
            if eos_id in seq:
                seq = seq[: seq.index(eos_id) + 1]
            out[i] = seq
    if was_training:
        model.train()
    return out


def greedy_answers(model: nn.Module, fmt: QAFormat, questions: Sequence[str], *, max_new_tokens: int = 32,
                   batch_size: int = 64, device: str | torch.device = "cpu") -> list[str]:
    """The model's greedy answer text to each question (stopped at EOS)."""
    prompts = [fmt.prompt_ids(q) for q in questions]
    conts = greedy_continuations(model, prompts, max_new_tokens=max_new_tokens, eos_id=fmt.eos_id,
                                 pad_id=fmt.pad_id, batch_size=batch_size, device=device)
    return [fmt.decode(c) for c in conts]
