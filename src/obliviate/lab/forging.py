"""``forging``: a model's weights cannot prove that a point was left out of training.

Thudi et al. 2022, "On the Necessity of Auditable Algorithmic Definitions for Machine
Unlearning" (USENIX Security): mini-batch SGD on a dataset D and on D without a point x can
end at (nearly) the same weights, because a batch that holds x can be swapped for a batch of
other data with almost the same mean gradient. This experiment:

1. trains honestly on D (plain mini-batch SGD, data order from a seed);
2. forges a run on D \\ {x}: the same order, but each batch holding x is replaced by the batch,
   among ``candidates`` random batches of other data, whose mean gradient at the current
   weights is closest to the honest batch's;
3. compares ||forged - honest|| with ||honest - honest'||, two honest runs that differ only in
   data order, over several seeds; and, for reference, the run that simply drops x from its batch;
4. does it for an MLP on digits and for linear regression trained by SGD, and shows the exact
   linear case: removing a point that lies on the least-squares fit (residual 0) leaves the fit
   unchanged, a point off it moves it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from obliviate.lab.base import Experiment, ExperimentResult, check_config, config_dict, new_figure, register, to_png
from obliviate.training.trainer import seeded_generator

log = logging.getLogger(__name__)

#: distance to an honest run of a forged run whose data order is shared (seed offset of the other honest run)
OTHER_ORDER = 10_007
#: rows of digits' training split (obliviate's fixed 80/20 split of scikit-learn's 1797 images)
DIGITS_TRAIN = 1438


@dataclass
class ForgingConfig:
    """Sizes of the forging runs (defaults: about half a minute on two busy cores)."""

    #: honest data orders compared (each gives one forged and one honest-vs-honest distance)
    seeds: int = 5
    #: the point to forge away: its row in digits' training split (and in the regression data)
    target: int = 0
    #: random batches of other data searched per forged step (Thudi et al.: a few hundred)
    candidates: int = 300
    batch_size: int = 32
    #: MLP on digits: hidden units, epochs, plain SGD learning rate
    hidden: int = 32
    epochs: int = 10
    lr: float = 0.1
    #: digits training rows used (None: all of them)
    n_train: int | None = None
    #: linear regression by SGD on synthetic data y = Xw + noise
    linear_n: int = 400
    linear_d: int = 8
    linear_noise: float = 0.5
    linear_epochs: int = 10
    linear_lr: float = 0.02
    #: how far off the least-squares fit the contrasting point sits, in residual standard deviations
    off_line: float = 3.0

    def problems(self) -> list[str]:
        """Every problem with the values (empty when all is well)."""
        p = []
        for name in ("seeds", "candidates", "batch_size", "hidden", "epochs", "linear_epochs", "linear_d"):
            if getattr(self, name) < 1:
                p.append(f"{name} must be >= 1; got {getattr(self, name)}.")
        if self.seeds < 2:
            p.append(f"seeds must be >= 2 to give a spread; got {self.seeds}.")
        if self.n_train is not None and self.n_train < 2 * self.batch_size:
            p.append(f"n_train must be at least 2 * batch_size ({2 * self.batch_size}); got {self.n_train}.")
        if self.linear_n < 2 * self.batch_size or self.linear_n <= self.linear_d + 2:
            p.append(f"linear_n must be >= 2 * batch_size and > linear_d + 2; got {self.linear_n}.")
        if not (self.lr > 0 and self.linear_lr > 0):
            p.append("lr and linear_lr must be > 0.")
        rows = min(self.linear_n, self.n_train or DIGITS_TRAIN)
        if not 0 <= self.target < rows:
            p.append(f"target must be a row of the training data (0..{rows - 1}); got {self.target}.")
        return p


# --- one SGD engine for both models -------------------------------------------------------

@dataclass
class Problem:
    """A model, its initial weights, its data and its per-example loss."""

    module: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    loss: Any  # (logits or predictions, targets) -> per-example loss


def _params(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _flat(params: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([v.reshape(-1) for v in params.values()])


def _distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return float(torch.linalg.vector_norm(_flat(a) - _flat(b)))


def _batch_grad(prob: Problem, params: dict[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    def mean_loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return prob.loss(functional_call(prob.module, p, (prob.x[idx],)), prob.y[idx]).mean()

    return grad(mean_loss)(params)


def _per_example_grads(prob: Problem, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """(n, P): every training example's loss gradient at ``params``, flattened."""

    def one(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return prob.loss(functional_call(prob.module, p, (x[None],)), y[None]).sum()

    g = vmap(grad(one), in_dims=(None, 0, 0))(params, prob.x, prob.y)
    return torch.cat([v.reshape(len(prob.y), -1) for v in g.values()], dim=1)


def _order(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=seeded_generator(seed, epoch, 0xF0))
    return [perm[s:s + batch_size] for s in range(0, n, batch_size)]


@dataclass
class RunOut:
    params: dict[str, torch.Tensor]
    forged_steps: int = 0
    #: mean over forged steps of ||g_chosen - g_honest|| / ||g_honest||
    rel_grad_gap: float = float("nan")


def sgd(prob: Problem, *, seed: int, epochs: int, lr: float, batch_size: int, mode: str = "honest",
        target: int = 0, candidates: int = 300) -> RunOut:
    """Plain mini-batch SGD from the module's initial weights.

    ``mode``: ``honest`` (all data), ``drop`` (the same order, the target left out of its
    batch) or ``forge`` (the same order, each batch holding the target replaced by the closest
    mean-gradient batch among ``candidates`` random batches of the other data).
    """
    params = _params(prob.module)
    n = len(prob.y)
    others = torch.tensor([i for i in range(n) if i != target])
    gaps: list[float] = []
    for epoch in range(epochs):
        for step, idx in enumerate(_order(n, batch_size, seed, epoch)):
            has_target = bool((idx == target).any())
            if has_target and mode == "drop":
                idx = idx[idx != target]
                if len(idx) == 0:  # the target was alone in the last batch: that step does not happen
                    continue
            if has_target and mode == "forge":
                idx, gap = _closest_batch(prob, params, idx, others, candidates,
                                          seeded_generator(seed, epoch, step, 0xF1))
                gaps.append(gap)
            g = _batch_grad(prob, params, idx)
            params = {k: v - lr * g[k] for k, v in params.items()}
    return RunOut(params, len(gaps), float(np.mean(gaps)) if gaps else float("nan"))


def _closest_batch(prob: Problem, params: dict[str, torch.Tensor], honest: torch.Tensor, others: torch.Tensor,
                   candidates: int, gen: torch.Generator) -> tuple[torch.Tensor, float]:
    per = _per_example_grads(prob, params)
    want = per[honest].mean(0)
    picks = torch.stack([others[torch.randperm(len(others), generator=gen)[:len(honest)]]
                         for _ in range(candidates)])
    # mean gradient of each candidate batch: a selection-matrix product instead of K gathers
    select = torch.zeros(candidates, len(prob.y), dtype=per.dtype)
    select.scatter_(1, picks, 1.0 / len(honest))
    gaps = torch.linalg.vector_norm(select @ per - want, dim=1)
    best = int(torch.argmin(gaps))
    return picks[best], float(gaps[best] / torch.linalg.vector_norm(want).clamp_min(1e-12))


# --- the two models --------------------------------------------------------------------------

def _digits_problem(cfg: ForgingConfig) -> Problem:
    from obliviate.data.builtin import load_dataset
    from obliviate.models.zoo import ModelSpec, build_model

    train = load_dataset("digits").train
    if cfg.n_train is not None and cfg.n_train < len(train):
        train = train.subset(np.arange(cfg.n_train))
    model = build_model(ModelSpec("mlp", {"hidden": [cfg.hidden]}), train.input_shape, train.n_classes, seed=0)
    x, y = train.tensors()
    return Problem(model, x, y, lambda out, t: nn.functional.cross_entropy(out, t, reduction="none"))


def _regression_data(cfg: ForgingConfig) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(cfg.linear_n, cfg.linear_d))
    w = rng.normal(size=cfg.linear_d)
    return x, x @ w + 1.0 + cfg.linear_noise * rng.normal(size=cfg.linear_n)


def _linear_problem(cfg: ForgingConfig) -> Problem:
    x, y = _regression_data(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(cfg.linear_d, 1), nn.Flatten(0))
    return Problem(model, torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32),
                   lambda out, t: 0.5 * (out - t) ** 2)


def compare(prob: Problem, cfg: ForgingConfig, *, epochs: int, lr: float) -> dict[str, Any]:
    """Per seed: ||forged - honest||, ||dropped - honest|| and ||honest - honest with another order||."""
    forged, dropped, noise, gaps = [], [], [], []
    kw = {"epochs": epochs, "lr": lr, "batch_size": cfg.batch_size, "target": cfg.target}
    for seed in range(cfg.seeds):
        honest = sgd(prob, seed=seed, **kw)
        other = sgd(prob, seed=seed + OTHER_ORDER, **kw)
        fake = sgd(prob, seed=seed, mode="forge", candidates=cfg.candidates, **kw)
        drop = sgd(prob, seed=seed, mode="drop", **kw)
        forged.append(_distance(fake.params, honest.params))
        dropped.append(_distance(drop.params, honest.params))
        noise.append(_distance(other.params, honest.params))
        gaps.append(fake.rel_grad_gap)
        log.info("forging seed %d: forged %.4g, dropped %.4g, honest noise %.4g", seed, forged[-1], dropped[-1],
                 noise[-1])
    f, d, n = (np.asarray(v) for v in (forged, dropped, noise))
    return {"forged_mean": float(f.mean()), "forged_std": float(f.std(ddof=1)),
            "dropped_mean": float(d.mean()), "dropped_std": float(d.std(ddof=1)),
            "noise_mean": float(n.mean()), "noise_std": float(n.std(ddof=1)),
            "ratio": float(f.mean() / n.mean()) if n.mean() > 0 else float("nan"),
            "rel_grad_gap": float(np.mean(gaps)),
            "init_weight_norm": float(torch.linalg.vector_norm(_flat(_params(prob.module))))}


def least_squares_case(cfg: ForgingConfig) -> dict[str, float]:
    """Coefficient change when a point on the fit (residual 0) and one off it are removed (float64)."""
    x, y = _regression_data(cfg)
    design = np.column_stack([x, np.ones(len(x))])
    fit = np.linalg.lstsq(design, y, rcond=None)[0]
    resid_sd = float(np.std(y - design @ fit, ddof=design.shape[1]))
    new = np.append(np.random.default_rng(1).normal(size=cfg.linear_d), 1.0)
    on_y, off_y = float(new @ fit), float(new @ fit) + cfg.off_line * resid_sd
    with_on = np.linalg.lstsq(np.vstack([design, new]), np.append(y, on_y), rcond=None)[0]
    with_off = np.linalg.lstsq(np.vstack([design, new]), np.append(y, off_y), rcond=None)[0]
    return {"on_line_residual": abs(on_y - float(new @ with_on)),
            # the fit on D is the fit after removing the point from D + {point}
            "on_line_coef_change": float(np.linalg.norm(with_on - fit)),
            "off_line_coef_change": float(np.linalg.norm(with_off - fit)),
            "residual_sd": resid_sd}


# --- the experiment ---------------------------------------------------------------------------

def run(cfg: ForgingConfig) -> ExperimentResult:
    check_config(cfg, "forging")
    t0 = time.perf_counter()
    mlp = compare(_digits_problem(cfg), cfg, epochs=cfg.epochs, lr=cfg.lr)
    lin = compare(_linear_problem(cfg), cfg, epochs=cfg.linear_epochs, lr=cfg.linear_lr)
    ls = least_squares_case(cfg)
    inside = {k: v["ratio"] < 1.0 for k, v in (("mlp", mlp), ("linear_sgd", lin))}
    measured = {"mlp": mlp, "linear_sgd": lin, "least_squares": ls,
                "forged_within_noise": {k: float(v) for k, v in inside.items()}}
    claim = _claim(cfg, mlp, lin, ls, inside)
    return ExperimentResult(
        name="forging", claim=claim, measured=measured, figure=_figure(cfg, mlp, lin, ls),
        kind={"honest run (trained with the point)": "none",
              "forged run (a genuine SGD run on the data without the point)": "exact",
              "dropped run (same order, the point left out of its batch)": "exact",
              "least-squares refit without the point": "exact"},
        seconds=time.perf_counter() - t0, config=config_dict(cfg),
        details={"audit": _audit_sentence(inside),
                 "distance": "L2 norm of the difference of all weights (flattened), at the end of training",
                 "paper": "Thudi et al. 2022, On the Necessity of Auditable Algorithmic Definitions for Machine "
                          "Unlearning"})


def _audit_sentence(inside: dict[str, bool]) -> str:
    if all(inside.values()):
        return ("An audit that only looks at the final weights cannot tell the run that used the point from one "
                "that never saw it: the forged run sits inside the spread of honest training itself, so weights "
                "are no proof that data was (or was not) used.")
    out = [k for k, v in inside.items() if not v]
    return (f"For {', '.join(out)} the forged weights fall outside honest training noise at this size, so a "
            "weights-only audit could in principle tell them apart there; it still proves nothing where they "
            "fall inside.")


def _claim(cfg: ForgingConfig, mlp: dict[str, float], lin: dict[str, float], ls: dict[str, float],
           inside: dict[str, bool]) -> str:
    def part(r: dict[str, float]) -> str:
        return (f"{r['forged_mean']:.3g} ± {r['forged_std']:.2g} from the honest run against "
                f"{r['noise_mean']:.3g} ± {r['noise_std']:.2g} between two honest runs differing only in data order "
                f"(ratio {r['ratio']:.2f})")

    return (f"Forging a run without training point {cfg.target} (each batch holding it swapped for the closest-"
            f"gradient batch of {cfg.candidates} random ones) ended an MLP on digits {part(mlp)}, and SGD linear "
            f"regression {part(lin)}, over {cfg.seeds} seeds; removing a least-squares point with residual "
            f"{ls['on_line_residual']:.1e} changed the coefficients by {ls['on_line_coef_change']:.1e}, against "
            f"{ls['off_line_coef_change']:.2g} for a point {cfg.off_line:g} residual SDs off the line. "
            + _audit_sentence(inside))


def _figure(cfg: ForgingConfig, mlp: dict[str, float], lin: dict[str, float], ls: dict[str, float]) -> bytes:
    fig, axes = new_figure(3)
    labels = ["honest vs honest\n(data order)", "forged vs honest", "dropped vs honest"]
    colors = ["#888888", "#d62728", "#1f77b4"]
    for ax, r, title in ((axes[0], mlp, "MLP on digits"), (axes[1], lin, "linear regression (SGD)")):
        means = [r["noise_mean"], r["forged_mean"], r["dropped_mean"]]
        errs = [r["noise_std"], r["forged_std"], r["dropped_std"]]
        ax.bar(range(3), means, yerr=errs, capsize=4, color=colors)
        ax.set_xticks(range(3), labels, fontsize=8)
        ax.set_ylabel("L2 distance of final weights")
        ax.set_title(f"{title}: forged/noise = {r['ratio']:.2f}\n(mean ± sd over {cfg.seeds} seeds)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    ax = axes[2]
    vals = [max(ls["on_line_coef_change"], 1e-18), ls["off_line_coef_change"]]
    ax.bar([0, 1], vals, color=["#2ca02c", "#ff7f0e"])
    ax.set_yscale("log")
    ax.set_xticks([0, 1], ["point on the fit\n(residual 0)", f"point {cfg.off_line:g} SD\noff the fit"], fontsize=8)
    ax.set_ylabel("|coefficient change| when removed")
    ax.set_title("exact least squares", fontsize=9)
    for i, v in enumerate(vals):
        ax.annotate(f"{v:.1e}", (i, v), ha="center", va="bottom", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return to_png(fig)


register(Experiment(
    name="forging", title="Weights cannot prove that data was forgotten (forging)",
    mismatch="auditability: different datasets, the same weights", Config=ForgingConfig, run=run,
    quick={"seeds": 2, "candidates": 30, "epochs": 2, "n_train": 160, "linear_n": 96, "linear_epochs": 2},
))
