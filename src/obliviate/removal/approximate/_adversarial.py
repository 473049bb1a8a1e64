"""Input-space attacks for the adversarial methods (amun, aru, boundary_shrink).

These need gradients with respect to the *inputs* of a classifier, so they work on
the ``(x, y)`` tensors of a :class:`ClassificationObjective` rather than through the
generic objective interface. Every attack is untargeted (it ascends the cross-entropy
of the true label), runs the model in eval mode, and never touches parameter grads.

Attack sizes are relative to the features' scale (``units="std"``, the default of every
method here): the perturbation of feature ``j`` is ``delta_j = s_j * u_j`` with ``s_j`` the
feature's standard deviation over the task's training inputs (forget and retain), and the
radius and step bound ``u``. A radius means the same on [0, 1] pixels, standardised
columns and one-hot columns, and multiplying a feature by ``c`` multiplies its
perturbation by ``c``. A feature that never varies in the data (a border pixel that is
always 0) is never perturbed. Perturbed inputs stay inside each feature's observed
[min, max] (so one-hot columns stay in [0, 1]). ``units="input"`` keeps the radius in raw
input units, as the papers write it for [0, 1] images.

The papers' radii are for CIFAR-10 pixels in [0, 1], whose per-channel standard deviation
is about 0.25 (0.247, 0.243, 0.261): a radius of ``r`` pixels is ``r / 0.25 = 4 r`` standard
deviations. The methods' std-unit defaults are the papers' pixel radii converted this way
(:data:`PIXEL_STD`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from obliviate.errors import ConfigError
from obliviate.removal.base import UnlearningTask
from obliviate.removal.objective import ClassificationObjective

Norm = Literal["linf", "l2"]
Units = Literal["std", "input"]

#: the per-channel standard deviation of CIFAR-10 pixels in [0, 1] (the adversarial methods' papers'
#: data), which converts their pixel radii to standard-deviation units
PIXEL_STD = 0.25
#: at most this many retain rows join the forget rows when measuring feature scales
SCALE_SAMPLE = 5000


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
    """The observed range of input values over all features (``units="input"`` keeps inputs inside it)."""
    return float(x.min()), float(x.max())


@dataclass(frozen=True)
class FeatureScale:
    """Per-feature scale and bounds of a task's inputs, each of shape ``input_shape``."""

    std: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor

    def to(self, device: torch.device) -> FeatureScale:
        return FeatureScale(self.std.to(device), self.low.to(device), self.high.to(device))


def feature_scale(task: UnlearningTask, *, sample: int = SCALE_SAMPLE) -> FeatureScale:
    """Standard deviation, minimum and maximum of every input feature over forget and (a seeded sample of) retain rows."""
    rows = [np.asarray(task.forget.x, dtype=np.float64)]
    retain_x = getattr(task.retain, "x", None)
    if retain_x is not None and len(retain_x):
        take = np.random.default_rng(task.seed).permutation(len(retain_x))[:sample]
        rows.append(np.asarray(retain_x[np.sort(take)], dtype=np.float64))
    x = np.concatenate(rows)
    std = torch.from_numpy(x.std(axis=0)).float()
    return FeatureScale(std=std, low=torch.from_numpy(x.min(axis=0)).float(),
                        high=torch.from_numpy(x.max(axis=0)).float())


def attack_geometry(task: UnlearningTask, x: torch.Tensor, units: Units, clip: bool) -> tuple[
        torch.Tensor | None, tuple[Any, Any] | None]:
    """``(scale, bounds)`` for :func:`pgd`: per-feature std and [min, max] (``"std"``) or raw units (``"input"``)."""
    if units == "input":
        return None, (data_range(x) if clip else None)
    fs = feature_scale(task).to(x.device)
    return fs.std, ((fs.low, fs.high) if clip else None)


def _per_example(v: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(v, dtype=x.dtype, device=x.device)
    if t.dim() == 0:
        t = t.expand(x.shape[0])
    return t.view(-1, *([1] * (x.dim() - 1)))


def _l2(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (v.dim() - 1)))


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float | torch.Tensor, steps: int,
        step_size: float | torch.Tensor, norm: Norm = "linf", bounds: tuple[Any, Any] | None = None,
        scale: torch.Tensor | None = None) -> torch.Tensor:
    """Projected gradient ascent on the cross-entropy of ``y`` inside an ``eps`` ball around ``x``.

    ``eps`` and ``step_size`` may be per-example tensors. With ``scale`` (one value per
    feature, e.g. its std) the ball and the steps are in scaled units: the attack moves
    ``u`` with ``x = x0 + scale * u`` and bounds ``u`` (L-inf: ``|delta_j| <= eps * scale_j``).
    ``bounds`` is ``(low, high)``, floats or per-feature tensors. ``steps=1`` with
    ``step_size=eps`` and ``norm='linf'`` is FGSM. Returns detached inputs.
    """
    was_training = model.training
    model.eval()
    e = _per_example(eps, x)
    a = _per_example(step_size, x)
    s = torch.ones_like(x[:1]) if scale is None else scale.to(x).expand_as(x[0]).unsqueeze(0)
    x0 = x.detach()
    u = torch.zeros_like(x0)
    adv = x0.clone()
    try:
        for _ in range(steps):
            adv.requires_grad_(True)
            loss = F.cross_entropy(model(adv), y)
            (g,) = torch.autograd.grad(loss, adv)
            with torch.no_grad():
                gu = g * s  # the gradient with respect to u
                if norm == "linf":
                    u = (u + a * gu.sign()).clamp(-e, e)
                else:
                    u = u + a * gu / _l2(gu)
                    u = u * torch.clamp(e / _l2(u), max=1.0)
                adv = x0 + s * u
                if bounds is not None:
                    adv = torch.max(torch.min(adv, _bound(bounds[1], adv)), _bound(bounds[0], adv))
                    u = torch.where(s > 0, (adv - x0) / s.clamp_min(1e-12), torch.zeros_like(u))
            adv = adv.detach()
    finally:
        model.train(was_training)
    return adv


def _bound(b: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(b, dtype=like.dtype, device=like.device).expand_as(like[0]).unsqueeze(0)


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
                        bounds: tuple[Any, Any] | None = None, scale: torch.Tensor | None = None,
                        step_ratio: float = 2.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per example, the PGD adversarial input at the smallest radius (on a geometric grid) that flips it.

    Starts every example at ``eps_init``; after each round, examples whose prediction
    changed keep that adversarial input, the others multiply their radius by
    ``growth`` and try again, for at most ``max_rounds`` rounds. The PGD step is
    ``step_ratio * eps / steps`` (Madry et al.'s usual 2.5/steps rule); ``scale`` as in :func:`pgd`.
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
                   bounds=bounds, scale=scale)
        ok = predict(model, cand) != y[todo]
        x_adv[todo] = cand
        flipped[todo[ok]] = True
        todo = todo[~ok]
    return x_adv, eps, flipped
