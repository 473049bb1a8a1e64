"""``ssd``: Selective Synaptic Dampening, a one-shot edit of the weights without training.

Foster, Schoepf & Brintrup 2024, "Fast Machine Unlearning Without Retraining Through
Selective Synaptic Dampening" (AAAI). The importance of parameter ``i`` for a data
set ``D`` is the diagonal of the (empirical) Fisher information,
``[I_D]_i = E[(d L / d theta_i)^2]``. With ``I_F`` on the forget set and ``I_D`` on the
full training set, every parameter with ``I_F > alpha * I_D`` (specialised to the
forget set) is multiplied by ``beta = min(lambda * I_D / I_F, 1)``; all others are
left exactly as they were. Defaults are the paper's: ``alpha = 10``, ``lambda = 1``.

As in the authors' code, the expectation is estimated per minibatch: the squared
gradient of the minibatch's mean loss, averaged over minibatches (in eval mode), so
both importances use the same batch size. The batch size is not a detail: with one
example per batch (the per-example Fisher of the paper's formula) a forget set that
is 10% of the data can never exceed ``alpha = 10`` times the full importance, while
large batches average the full-data gradients toward zero and select too much. The
authors' batch size is not given with the method; 16 is this implementation's choice
(on digits it removes a forgotten class while retain accuracy moves by under 2
points, where 64 costs 16 points). Batches are drawn shuffled (the authors' loader
concatenates retain then forget data without shuffling). Each minibatch counts as one step of the
budget; if the budget stops the estimate early the partial average is used (and a
partial full-data importance is never cached).

The full-data importance is the expensive part and does not depend on the forget
set, so it is cached in memory keyed by a hash of the model's weights, the data's
fingerprint, the batch size and the seed (the shuffle order), and optionally on disk
(``cache_dir``). The full training set comes from ``task.extras["train"]`` (the
bench sets it); without it, forget and retain sets together stand in for it.

Why it changes almost nothing on random forgetting (issue 17; BENCHMARKS.md, "Why some methods do
nothing"): SSD selects weights *specialised* to the forget set. A random forget set is a sample
of the training distribution, so every forget minibatch is distributed like a full-data
minibatch and ``E[I_F] = E[I_D]`` for every weight; ``I_F > alpha * I_D`` then holds only where
sampling noise makes it so, mostly on weights few examples touch (the forget estimate averages
32 minibatches of a 500-example forget set, the full one 313), and dampening those changes few
predictions. The paper's alpha stays: it is right for the class and sub-class forgetting SSD is
built for (Fashion-MNIST class 0: 99% of the gap closed at 0.3% of retraining time, issue 3).
Lower alphas are in the tuning space; they select more weights without making the selection
any more specific to the forget set.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from obliviate.data.dataset import ArrayDataset
from obliviate.errors import ConfigError
from obliviate.progress import Progress
from obliviate.removal.base import MethodConfig, RemovalMethod, StepBudget, UnlearningTask, register
from obliviate.training.trainer import seeded_generator

log = logging.getLogger(__name__)

_MEMORY_CACHE: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()
_MEMORY_CACHE_SIZE = 4


@dataclass
class SSDConfig(MethodConfig):
    # oracle-free search (issue 17), gentlest first: the paper's alpha, then looser selection thresholds; a lower
    # lambda dampens the selected weights harder. The full-data importance is cached, so trials are cheap.
    tuning_space: ClassVar[dict[str, dict[str, list[Any]]]] = {
        "classification": {"alpha": [10.0, 5.0, 2.0, 1.0], "dampening": [1.0, 0.5]}}

    alpha: float = 10.0           # selection: dampen where I_forget > alpha * I_full (paper: 10)
    dampening: float = 1.0        # lambda: beta = min(lambda * I_full / I_forget, 1) (paper: 1)
    exponent: float = 1.0         # beta is raised to this power (the authors' code; 1 = the paper)
    batch_size: int = 16          # minibatch size of both importance estimates (see the module docstring)
    cache_dir: str | None = None  # also cache the full-data importance here ("auto" = the model cache dir)

    def __post_init__(self) -> None:
        problems = []
        for name in ("alpha", "dampening", "exponent"):
            if not getattr(self, name) > 0:
                problems.append(f"The {name!r} parameter of ssd must be > 0; got {getattr(self, name)!r} instead.")
        if self.batch_size < 1:
            problems.append(f"The 'batch_size' parameter of ssd must be >= 1; got {self.batch_size!r} instead.")
        if problems:
            raise ConfigError(" ".join(problems))


def weights_hash(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(t.detach().cpu().numpy()).tobytes())
    return h.hexdigest()[:32]


def full_training_data(task: UnlearningTask) -> Any:
    """``task.extras['train']`` if given, else forget and retain sets together."""
    train = task.extras.get("train")
    if train is not None:
        return train
    f, r = task.forget, task.retain
    if isinstance(f, ArrayDataset) and isinstance(r, ArrayDataset):
        return ArrayDataset(x=np.concatenate([f.x, r.x]), y=np.concatenate([f.y, r.y]),
                            ids=np.concatenate([f.ids, r.ids]), name="forget+retain",
                            classes=f.classes, n_classes_=max(f.n_classes, r.n_classes))
    raise ConfigError(
        "ssd needs the full training set for its reference importance: pass it as "
        "task.extras['train'] (the bench does), or use ArrayDataset forget/retain sets."
    )


def diagonal_importance(model: nn.Module, task: UnlearningTask, data: Any, batch_size: int, seed_tag: int,
                        ctl: StepBudget, progress: Progress, description: str) -> tuple[dict[str, torch.Tensor], bool]:
    """Mean over minibatches of the squared gradient of the minibatch loss; ``(importance, complete)``."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    imp = {n: torch.zeros_like(p) for n, p in params.items()}
    n_batches, complete = 0, True
    was_training = model.training
    model.eval()
    gen = seeded_generator(task.seed, seed_tag)
    total = -(-task.objective.size(data) // batch_size)
    with progress.task(description, total=total) as bar:
        for batch in task.objective.batches(data, batch_size, gen):
            if not ctl.ok():
                complete = False
                break
            grads = torch.autograd.grad(task.objective.loss(model, batch), list(params.values()), allow_unused=True)
            for (n, _), g in zip(params.items(), grads):
                if g is not None:
                    imp[n].add_(g.detach().pow(2))
            n_batches += 1
            ctl.step()
            bar.advance(1)
    model.train(was_training)
    for t in imp.values():
        t.div_(max(1, n_batches))
    return imp, complete


def _disk_path(cache_dir: str, key: str) -> Path:
    if cache_dir == "auto":
        from obliviate.training.cache import default_cache_dir

        return default_cache_dir() / "ssd-importance" / f"{key}.safetensors"
    return Path(cache_dir) / f"{key}.safetensors"


@torch.no_grad()
def dampen(model: nn.Module, forget_imp: dict[str, torch.Tensor], full_imp: dict[str, torch.Tensor], *,
           alpha: float, dampening: float, exponent: float) -> dict[str, torch.Tensor]:
    """Multiply selected parameters by ``beta`` in place; returns the selection masks."""
    selected = {}
    for name, p in model.named_parameters():
        if name not in forget_imp:
            continue
        fi, oi = forget_imp[name], full_imp[name]
        sel = fi > alpha * oi
        beta = torch.where(sel, (dampening * oi / torch.where(sel, fi, torch.ones_like(fi))).pow(exponent),
                           torch.ones_like(fi)).clamp(max=1.0)
        p.mul_(beta)
        selected[name] = sel
    return selected


@register
class SSD(RemovalMethod):
    name = "ssd"
    summary = "Selective Synaptic Dampening: shrink weights far more important to the forget set (no training)."
    paper = "Foster et al. 2024, Fast Machine Unlearning Without Retraining Through Selective Synaptic Dampening"
    Config = SSDConfig

    def _full_importance(self, model: nn.Module, task: UnlearningTask, ctl: StepBudget,
                         progress: Progress) -> tuple[dict[str, torch.Tensor], bool]:
        cfg = self.config
        data = full_training_data(task)
        fingerprint = getattr(data, "fingerprint", None)
        key = None
        if fingerprint is not None:
            key = hashlib.sha256(
                f"{weights_hash(model)}|{fingerprint}|{cfg.batch_size}|{task.seed}|"
                f"{type(task.objective).__name__}".encode()).hexdigest()[:32]
            if key in _MEMORY_CACHE:
                _MEMORY_CACHE.move_to_end(key)
                return {n: t.clone() for n, t in _MEMORY_CACHE[key].items()}, True
            if cfg.cache_dir:
                path = _disk_path(cfg.cache_dir, key)
                if path.is_file():
                    from safetensors.torch import load_file

                    imp = load_file(str(path))
                    self._remember(key, imp)
                    return imp, True
        imp, complete = diagonal_importance(model, task, data, cfg.batch_size, 0x55D0, ctl, progress,
                                            "ssd: full-data importance")
        if key is not None and complete:
            self._remember(key, imp)
            if cfg.cache_dir:
                from safetensors.torch import save_file

                path = _disk_path(cfg.cache_dir, key)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                save_file({n: t.contiguous().cpu() for n, t in imp.items()}, str(tmp))
                tmp.replace(path)
        return imp, False

    @staticmethod
    def _remember(key: str, imp: dict[str, torch.Tensor]) -> None:
        _MEMORY_CACHE[key] = {n: t.detach().clone() for n, t in imp.items()}
        while len(_MEMORY_CACHE) > _MEMORY_CACHE_SIZE:
            _MEMORY_CACHE.popitem(last=False)

    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        cfg = self.config
        full_imp, cached = self._full_importance(model, task, ctl, progress)
        forget_imp, _ = diagonal_importance(model, task, task.forget, cfg.batch_size, 0x55D1, ctl, progress,
                                            "ssd: forget importance")
        full_imp = {n: t.to(forget_imp[n].device) for n, t in full_imp.items() if n in forget_imp}
        selected = dampen(model, forget_imp, full_imp, alpha=cfg.alpha, dampening=cfg.dampening,
                          exponent=cfg.exponent)
        n_sel = sum(int(s.sum()) for s in selected.values())
        n_all = sum(s.numel() for s in selected.values())
        log.info("ssd: dampened %d of %d parameters", n_sel, n_all)
        return model, {"dampened": n_sel, "dampened_fraction": n_sel / max(1, n_all),
                       "full_importance_cached": cached}
