"""Input-space attacks for the adversarial methods (amun, aru, boundary_shrink).

These need gradients with respect to the *inputs* of a classifier, so they work on
the ``(x, y)`` tensors of a :class:`ClassificationObjective` rather than through the
generic objective interface. Every attack is untargeted (it ascends the cross-entropy
of the true label), runs the model in eval mode, and never touches parameter grads.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.errors import ConfigError
from obliviate.removal.base import UnlearningTask
from obliviate.removal.objective import ClassificationObjective

Norm = Literal["linf", "l2"]


def require_classifier(task: UnlearningTask, method: str) -> ClassificationObjective:
    """The task's objective, if it is a classifier's; otherwise a ConfigError saying why."""
    if not isinstance(task.objective, ClassificationObjective):
        raise ConfigError(
            f"method {method!r} crafts adversarial inputs, which needs gradients with respect to a "
            f"classifier's input tensors (a ClassificationObjective); this task's objective is "
            f"{type(task.objective).__name__}. Use a method that only needs the objective's loss "
            "(e.g. scrub, salun, ssd, rmu) for this task."
        )
    return task.objective


def model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def data_range(x: torch.Tensor) -> tuple[float, float]:
    """The observed range of input values: attacks keep perturbed inputs inside it."""
    return float(x.min()), float(x.max())


def _per_example(v: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(v, dtype=x.dtype, device=x.device)
    if t.dim() == 0:
        t = t.expand(x.shape[0])
    return t.view(-1, *([1] * (x.dim() - 1)))


def _l2(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (v.dim() - 1)))


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float | torch.Tensor, steps: int,
        step_size: float | torch.Tensor, norm: Norm = "linf",
        bounds: tuple[float, float] | None = None) -> torch.Tensor:
    """Projected gradient ascent on the cross-entropy of ``y`` inside an ``eps`` ball around ``x``.

    ``eps`` and ``step_size`` may be per-example tensors. ``steps=1`` with
    ``step_size=eps`` and ``norm='linf'`` is FGSM. Returns detached inputs.
    """
    was_training = model.training
    model.eval()
    e = _per_example(eps, x)
    a = _per_example(step_size, x)
    x0 = x.detach()
    adv = x0.clone()
    try:
        for _ in range(steps):
            adv.requires_grad_(True)
            loss = F.cross_entropy(model(adv), y)
            (g,) = torch.autograd.grad(loss, adv)
            with torch.no_grad():
                if norm == "linf":
                    adv = adv + a * g.sign()
                    adv = x0 + (adv - x0).clamp(-e, e)
                else:
                    adv = adv + a * g / _l2(g)
                    delta = adv - x0
                    adv = x0 + delta * torch.clamp(e / _l2(delta), max=1.0)
                if bounds is not None:
                    adv = adv.clamp(*bounds)
            adv = adv.detach()
    finally:
        model.train(was_training)
    return adv


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        return model(x).argmax(dim=-1)
    finally:
        model.train(was_training)


def smallest_eps_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps_init: float, growth: float,
                        max_rounds: int, steps: int, norm: Norm,
                        bounds: tuple[float, float] | None = None,
                        step_ratio: float = 2.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per example, the PGD adversarial input at the smallest radius (on a geometric grid) that flips it.

    Starts every example at ``eps_init``; after each round, examples whose prediction
    changed keep that adversarial input, the others multiply their radius by
    ``growth`` and try again, for at most ``max_rounds`` rounds. The PGD step is
    ``step_ratio * eps / steps`` (Madry et al.'s usual 2.5/steps rule).
    Returns ``(x_adv, eps_used, flipped)``; unflipped examples keep their last attempt.
    """
    x_adv = x.detach().clone()
    eps = torch.full((x.shape[0],), float(eps_init), dtype=x.dtype, device=x.device)
    flipped = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    todo = torch.arange(x.shape[0], device=x.device)
    for round_ in range(max_rounds):
        if todo.numel() == 0:
            break
        if round_ > 0:
            eps[todo] *= growth
        e = eps[todo]
        cand = pgd(model, x[todo], y[todo], eps=e, steps=steps, step_size=step_ratio * e / steps, norm=norm,
                   bounds=bounds)
        ok = predict(model, cand) != y[todo]
        x_adv[todo] = cand
        flipped[todo[ok]] = True
        todo = todo[~ok]
    return x_adv, eps, flipped
