# ~790 lines: the batched trainers (MLP kernel, vmap) and their one-at-a-time reference must stay side by side (they must agree).
"""Train many small models at once with ``torch.func`` (shadow models, retrain oracles).

Strong audits (LiRA, U-LiRA, the NeurIPS 2023 challenge score) need tens to
hundreds of models that differ only in their seed and in which examples they
train on. For small models one training step is far too small to keep a CPU
(let alone a GPU) busy, so we train R replicas *simultaneously*: their
parameters are stacked along a leading axis (``torch.func.stack_module_state``),
the forward pass is ``vmap`` over ``functional_call`` (differentiated by ordinary
autograd: replicas share no parameters), and
the optimizer updates the stacked tensors in a handful of large ops.

Plain MLPs (``[Flatten] (Linear ReLU)* Linear``, checked against the module's own forward)
take a faster kernel: batched matmuls (``torch.baddbmm``/``torch.bmm``) over the stacked
weights with the backward written out by hand, and ``torch.optim``'s fused SGD/Adam kernels
on each replica's parameter slices. ``ReplicaRecipe(precision="bfloat16")`` runs the matrix
multiplies in bfloat16 with float32 master weights and loss (autocast semantics; the reference
runs under ``torch.autocast``): bfloat16 runs agree with the reference in accuracy, not to
float rounding.

Recipe (the same in both paths; keep it simple on purpose):

* replica r is initialised by ``model_factory()`` under ``torch.manual_seed(seeds[r])``
  (inside ``torch.random.fork_rng``, so the caller's RNG state is untouched);
* each epoch, replica r shuffles *its own* included examples (``mask[r]``) with
  a numpy generator seeded by ``(seeds[r], epoch stream)`` and walks them in
  minibatches of ``batch_size`` (last batch smaller, nothing dropped);
* loss: mean cross-entropy over the minibatch; optimizer: SGD with momentum
  (``torch.optim.SGD`` semantics) or Adam (``torch.optim.Adam`` semantics, L2
  ``weight_decay`` added to the gradient in both);
* learning rate: constant, or ``schedule="cosine"``: ``torch.optim.lr_scheduler.CosineAnnealingLR``
  over each replica's own number of steps (``epochs * ceil(n_r / batch_size)``, down to 0),
  the schedule of :class:`obliviate.training.recipe.Recipe`'s default.

Replicas with fewer included examples run fewer steps per epoch; in the batched
path they sit idle (masked, no parameter or optimizer-state change) while the
others finish the epoch, so both paths compute the same function of the seeds.
:func:`train_one_at_a_time` is the ordinary-loop reference with ``torch.optim``;
for deterministic models (no dropout) the two agree to float rounding.

Not supported in the batched path: BatchNorm (running statistics are updated in
place, which ``vmap`` forbids; use GroupNorm/LayerNorm). Dropout works, but its
random masks differ from the one-at-a-time path.
"""

from __future__ import annotations

import copy
import logging
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from dataclasses import replace as dataclass_replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from obliviate.errors import ConfigError, DataError, ShapeError

logger = logging.getLogger(__name__)

__all__ = [
    "ReplicaRecipe",
    "StackedReplicas",
    "predict_logits",
    "train_one_at_a_time",
    "train_replicas",
]

ModelFactory = Callable[[], nn.Module]
_DATA_ORDER_STREAM = 0x0B11  # keeps data-order randomness independent of init randomness


# --------------------------------------------------------------------------- recipe
@dataclass(frozen=True)
class ReplicaRecipe:
    """Training recipe shared by every replica.

    Attributes:
        epochs: passes over each replica's own included examples.
        batch_size: minibatch size (the last batch of an epoch may be smaller).
        lr: learning rate.
        optimizer: "sgd" (with ``momentum``) or "adam" (with ``betas``, ``adam_eps``).
        momentum: SGD momentum (0 = plain SGD).
        weight_decay: L2 penalty added to the gradient (``torch.optim`` convention).
        betas: Adam moment decay rates.
        adam_eps: Adam denominator epsilon.
        schedule: "constant" or "cosine" (annealed to 0 over each replica's own steps).
        precision: "float32", or "bfloat16": matrix multiplies in bfloat16 with float32
            master weights, optimizer state and loss (what ``torch.autocast("cpu",
            dtype=torch.bfloat16)`` does; the reference path runs under exactly that).
    """

    epochs: int = 1
    batch_size: int = 64
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    schedule: str = "constant"
    precision: str = "float32"

    def validate(self) -> ReplicaRecipe:
        """Raise :class:`ConfigError` listing every invalid field; return self."""
        p = []

        def bad(name: str, want: str) -> None:
            p.append(f"The {name!r} parameter of ReplicaRecipe must be {want}; got {getattr(self, name)!r} instead.")

        if not (isinstance(self.epochs, numbers.Integral) and self.epochs >= 1):
            bad("epochs", "an int >= 1")
        if not (isinstance(self.batch_size, numbers.Integral) and self.batch_size >= 1):
            bad("batch_size", "an int >= 1")
        if not (isinstance(self.lr, numbers.Real) and math.isfinite(self.lr) and self.lr > 0):
            bad("lr", "a float > 0")
        if self.optimizer not in _OPTIMIZERS:
            bad("optimizer", f"one of {sorted(_OPTIMIZERS)}")
        if not (isinstance(self.momentum, numbers.Real) and 0 <= self.momentum < 1):
            bad("momentum", "a float in [0, 1)")
        if not (isinstance(self.weight_decay, numbers.Real) and self.weight_decay >= 0):
            bad("weight_decay", "a float >= 0")
        if not (len(self.betas) == 2 and all(isinstance(b, numbers.Real) and 0 <= b < 1 for b in self.betas)):
            bad("betas", "two floats in [0, 1)")
        if not (isinstance(self.adam_eps, numbers.Real) and self.adam_eps > 0):
            bad("adam_eps", "a float > 0")
        if self.schedule not in _SCHEDULES:
            bad("schedule", f"one of {list(_SCHEDULES)}")
        if self.precision not in _PRECISIONS:
            bad("precision", f"one of {list(_PRECISIONS)}")
        if p:
            raise ConfigError("Invalid replica training recipe.", p)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SCHEDULES = ("constant", "cosine")
_PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}
_KERNELS = ("auto", "mlp", "vmap")


def _autocast(recipe: ReplicaRecipe, device: torch.device) -> Any:
    """``torch.autocast`` for a bfloat16 recipe, else a no-op context."""
    import contextlib

    if recipe.precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_PRECISIONS[recipe.precision])


# --------------------------------------------------------------------------- optimizers
class _StackedOptimizer:
    """Optimizer over stacked parameters (leading axis = replica), updated in place.

    ``step`` receives the replicas' gradients (which it may overwrite) and a
    boolean (R,) ``active`` vector (``all_active`` says, without a device sync,
    whether every entry is True); inactive replicas (idle for this step) get no
    parameter or state change. ``lr_scale`` (R,) float64, if given, multiplies each
    replica's learning rate for this step (a schedule). Updates are in place, under ``torch.no_grad``,
    to avoid allocating temporaries the size of every parameter.
    """

    def __init__(self, params: dict[str, Tensor], recipe: ReplicaRecipe) -> None:
        self.recipe = recipe

    def step(self, params: dict[str, Tensor], grads: dict[str, Tensor], active: Tensor, all_active: bool,
             lr_scale: Tensor | None = None) -> None:
        raise NotImplementedError

    @staticmethod
    def torch_reference(params: Any, recipe: ReplicaRecipe) -> torch.optim.Optimizer:
        """The ``torch.optim`` optimizer with the same semantics, for one model."""
        raise NotImplementedError

    def _prepare(self, p: Tensor, g: Tensor, gate: Tensor | None) -> Tensor:
        # L2 weight decay as in torch.optim, then zero the gradient of idle replicas
        if self.recipe.weight_decay:
            g.add_(p, alpha=self.recipe.weight_decay)
        if gate is not None:
            g.mul_(gate)
        return g


def _bcast(v: Tensor, like: Tensor) -> Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


class _SGD(_StackedOptimizer):
    def __init__(self, params: dict[str, Tensor], recipe: ReplicaRecipe) -> None:
        super().__init__(params, recipe)
        self.buf = {k: torch.zeros_like(v) for k, v in params.items()}

    def step(self, params: dict[str, Tensor], grads: dict[str, Tensor], active: Tensor, all_active: bool,
             lr_scale: Tensor | None = None) -> None:
        r = self.recipe
        act = active.to(next(iter(params.values())).dtype)
        # per-replica step multiplier: the schedule's scale, zero for idle replicas
        coef = None if lr_scale is None else (lr_scale * active.to(lr_scale.dtype)).to(act.dtype)
        decay = torch.where(active, r.momentum, 1.0).to(act.dtype)  # idle replicas keep their buffer
        for k, p in params.items():
            gate = None if all_active else _bcast(act, p)
            g = self._prepare(p, grads[k], gate)
            if r.momentum:
                # torch.optim.SGD: buf = momentum * buf + g (buf = g on the first step)
                buf = self.buf[k]
                if all_active:
                    buf.mul_(r.momentum).add_(g)
                else:
                    buf.mul_(_bcast(decay, p)).add_(g)
                g = buf
            if coef is not None:
                p.addcmul_(g, _bcast(coef, p), value=-r.lr)
            elif all_active:
                p.add_(g, alpha=-r.lr)
            else:
                p.addcmul_(g, gate, value=-r.lr)

    @staticmethod
    def torch_reference(params: Any, recipe: ReplicaRecipe) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay,
                               fused=True)  # the fastest torch.optim kernel (same math as the for-loop one)


class _Adam(_StackedOptimizer):
    def __init__(self, params: dict[str, Tensor], recipe: ReplicaRecipe) -> None:
        super().__init__(params, recipe)
        self.m = {k: torch.zeros_like(v) for k, v in params.items()}
        self.v = {k: torch.zeros_like(v) for k, v in params.items()}
        first = next(iter(params.values()))
        self.t = torch.zeros(first.shape[0], dtype=torch.float64, device=first.device)

    def step(self, params: dict[str, Tensor], grads: dict[str, Tensor], active: Tensor, all_active: bool,
             lr_scale: Tensor | None = None) -> None:
        r = self.recipe
        b1, b2 = r.betas
        dtype = next(iter(params.values())).dtype
        act = active.to(dtype)
        self.t += active.to(self.t.dtype)
        t = self.t.clamp_min(1.0)  # replicas that never stepped: value unused (gated)
        # per-replica bias corrections in float64, as torch.optim.Adam does in Python floats
        neg_step = -r.lr / (1.0 - b1**t) * active.to(t.dtype)
        if lr_scale is not None:
            neg_step = neg_step * lr_scale.to(t.dtype)
        neg_step = neg_step.to(dtype)
        bc2_sqrt = torch.sqrt(1.0 - b2**t).to(dtype)
        m_weight = (act * (1.0 - b1)).to(dtype)
        v_decay = torch.where(active, b2, 1.0).to(dtype)
        for k, p in params.items():
            gate = None if all_active else _bcast(act, p)
            g = self._prepare(p, grads[k], gate)
            m, v = self.m[k], self.v[k]
            if all_active:
                m.lerp_(g, 1.0 - b1)
                v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
            else:
                m.lerp_(g, _bcast(m_weight, p))
                v.mul_(_bcast(v_decay, p)).addcmul_(g, g, value=1.0 - b2)
            denom = v.sqrt().div_(_bcast(bc2_sqrt, p)).add_(r.adam_eps)
            p.addcdiv_(m * _bcast(neg_step, p), denom)

    @staticmethod
    def torch_reference(params: Any, recipe: ReplicaRecipe) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            params, lr=recipe.lr, betas=recipe.betas, eps=recipe.adam_eps, weight_decay=recipe.weight_decay,
            fused=True,  # the fastest torch.optim kernel (same math as the for-loop one)
        )


_OPTIMIZERS: dict[str, type[_StackedOptimizer]] = {"sgd": _SGD, "adam": _Adam}


# --------------------------------------------------------------------------- validation
def _validate(
    model_factory: Any, x: Any, y: Any, mask: Any, seeds: Any, recipe: ReplicaRecipe | None
) -> tuple[Tensor, Tensor, np.ndarray, list[int], ReplicaRecipe]:
    recipe = (recipe or ReplicaRecipe()).validate()
    if not callable(model_factory):
        raise ConfigError(
            "The 'model_factory' parameter must be a callable returning a fresh nn.Module "
            f"(e.g. lambda: nn.Linear(784, 10)); got {type(model_factory).__name__} instead."
        )
    try:
        xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"The 'x' parameter must be a float array (n, ...); numpy could not convert it ({exc}).") from None
    y_np = np.asarray(y)
    if y_np.ndim != 1 or not np.issubdtype(y_np.dtype, np.integer):
        raise DataError(
            f"The 'y' parameter must be a 1-D integer array of class labels; got shape {y_np.shape}, dtype {y_np.dtype}."
        )
    if xt.dim() < 1 or xt.shape[0] != y_np.shape[0]:
        raise ShapeError(f"'x' and 'y' must have the same number of examples; got x {tuple(xt.shape)}, y {y_np.shape}.")
    if not torch.isfinite(xt).all():
        raise DataError("The 'x' parameter contains NaN or inf; clean or impute the features first.")
    if y_np.size and y_np.min() < 0:
        raise DataError(f"The 'y' parameter must hold class indices >= 0; got min {y_np.min()}.")
    n = xt.shape[0]
    if isinstance(seeds, numbers.Integral) or not all(isinstance(s, numbers.Integral) for s in seeds):
        raise ConfigError(f"The 'seeds' parameter must be a sequence of ints, one per replica; got {seeds!r} instead.")
    seeds = [int(s) for s in seeds]
    if not seeds or min(seeds) < 0:
        raise ConfigError(
            f"The 'seeds' parameter must be a non-empty sequence of ints >= 0, one per replica; got {seeds!r} instead."
        )
    if mask is None:
        m = np.ones((len(seeds), n), dtype=bool)
    else:
        m = np.asarray(mask)
        if m.dtype != bool:
            if not (np.issubdtype(m.dtype, np.integer) and np.isin(m, (0, 1)).all()):
                raise DataError(f"The 'mask' parameter must be boolean (R, n); got dtype {m.dtype}.")
            m = m.astype(bool)
        if m.shape != (len(seeds), n):
            raise ShapeError(
                f"The 'mask' parameter must have shape (R, n) = ({len(seeds)}, {n}) (one row per seed); got {m.shape}."
            )
    empty = np.flatnonzero(m.sum(axis=1) == 0)
    if empty.size:
        raise DataError(f"Replica(s) {empty[:10].tolist()} include no training example; every mask row needs a True.")
    return xt, torch.as_tensor(y_np, dtype=torch.int64), m, seeds, recipe


def _init_module(model_factory: ModelFactory, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = model_factory()
    if not isinstance(module, nn.Module):
        raise ConfigError(
            f"The 'model_factory' parameter must return an nn.Module; it returned {type(module).__name__}."
        )
    return module


def _check_module(module: nn.Module, x: Tensor, y: Tensor) -> None:
    bn = [name for name, mod in module.named_modules() if isinstance(mod, nn.modules.batchnorm._BatchNorm)]
    if bn:
        raise ConfigError(
            f"Batched replica training does not support BatchNorm (found {bn[:3]}): vmap cannot update "
            "running statistics in place. Use GroupNorm/LayerNorm, or train_one_at_a_time."
        )
    with torch.no_grad():
        out = module.eval()(x[:1])
    if out.dim() != 2:
        raise ShapeError(f"The model must return logits of shape (batch, classes); got {tuple(out.shape)} for one example.")
    if y.numel() and int(y.max()) >= out.shape[1]:
        raise DataError(f"Labels go up to {int(y.max())} but the model outputs {out.shape[1]} classes.")


# --------------------------------------------------------------------------- batch plan
def _order_rngs(seeds: Sequence[int]) -> list[np.random.Generator]:
    return [np.random.default_rng([s, _DATA_ORDER_STREAM]) for s in seeds]


def _epoch_plan(
    mask: np.ndarray, rngs: list[np.random.Generator], batch_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, R, B) example indices and weights, (T, R) active flags for one epoch."""
    n_rep = mask.shape[0]
    orders = [rng.permutation(np.flatnonzero(row)) for rng, row in zip(rngs, mask)]
    steps = max(math.ceil(o.size / batch_size) for o in orders)
    idx = np.zeros((n_rep, steps * batch_size), dtype=np.int64)
    w = np.zeros((n_rep, steps * batch_size), dtype=np.float32)
    for r, o in enumerate(orders):
        idx[r, : o.size] = o
        w[r, : o.size] = 1.0
    idx = idx.reshape(n_rep, steps, batch_size).transpose(1, 0, 2)
    w = w.reshape(n_rep, steps, batch_size).transpose(1, 0, 2)
    return np.ascontiguousarray(idx), np.ascontiguousarray(w), w.sum(axis=2) > 0


# --------------------------------------------------------------------------- results
@dataclass(eq=False)
class StackedReplicas:
    """R trained replicas of one architecture, parameters stacked along axis 0."""

    params: dict[str, Tensor]
    buffers: dict[str, Tensor]
    template: nn.Module  # structure only (meta device), used by functional_call
    model_factory: ModelFactory
    seeds: tuple[int, ...]
    recipe: ReplicaRecipe

    def __len__(self) -> int:
        return len(self.seeds)

    def state_dicts(self) -> list[dict[str, Tensor]]:
        """One ordinary ``state_dict`` per replica (detached CPU tensors)."""
        sd_keys = set(self.template.state_dict().keys())
        out = []
        for r in range(len(self)):
            sd = {k: v[r].detach().cpu().clone() for k, v in {**self.params, **self.buffers}.items() if k in sd_keys}
            out.append(sd)
        return out

    def module(self, index: int) -> nn.Module:
        """Replica ``index`` as an ordinary ``nn.Module`` (built by the factory, CPU)."""
        module = _init_module(self.model_factory, self.seeds[index])
        module.load_state_dict(self.state_dicts()[index])
        return module

    def modules(self) -> list[nn.Module]:
        return [self.module(i) for i in range(len(self))]

    def predict_logits(self, x: Any, *, batch_size: int = 4096) -> np.ndarray:
        """Logits of every replica on ``x``: (R, n, classes) float32, eval mode, no grad."""
        return predict_logits(self, x, batch_size=batch_size)

    @classmethod
    def from_modules(
        cls,
        modules: Sequence[nn.Module],
        *,
        model_factory: ModelFactory,
        seeds: Sequence[int],
        recipe: ReplicaRecipe | None = None,
    ) -> StackedReplicas:
        """Stack ordinary modules (e.g. from :func:`train_one_at_a_time`) for batched prediction."""
        if len(modules) != len(seeds) or not modules:
            raise ConfigError(f"Need one seed per module; got {len(modules)} modules and {len(seeds)} seeds.")
        params, buffers = stack_module_state(list(modules))
        template = copy.deepcopy(modules[0]).to("meta")
        return cls(
            params={k: v.detach() for k, v in params.items()},
            buffers={k: v.detach() for k, v in buffers.items()},
            template=template,
            model_factory=model_factory,
            seeds=tuple(int(s) for s in seeds),
            recipe=recipe or ReplicaRecipe(),
        )


def predict_logits(stacked: StackedReplicas, x: Any, *, batch_size: int = 4096) -> np.ndarray:
    """Logits of every replica in ``stacked`` on ``x``: (R, n, classes) float32 numpy array."""
    if not (isinstance(batch_size, numbers.Integral) and batch_size >= 1):
        raise ConfigError(f"The 'batch_size' parameter of predict_logits must be an int >= 1; got {batch_size!r}.")
    device = next(iter(stacked.params.values())).device
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    template = stacked.template.eval()

    def fwd(p: dict[str, Tensor], b: dict[str, Tensor], xb: Tensor) -> Tensor:
        return functional_call(template, (p, b), (xb,))

    batched = vmap(fwd, in_dims=(0, 0, None))
    chunks = []
    with torch.no_grad():
        for start in range(0, xt.shape[0], batch_size):
            xb = xt[start : start + batch_size].to(device)
            chunks.append(batched(stacked.params, stacked.buffers, xb).cpu())
    return torch.cat(chunks, dim=1).numpy()


# --------------------------------------------------------------------------- grouped-matmul MLP kernel
@dataclass(frozen=True)
class _Layer:
    weight: str          # parameter name of the (out, in) weight
    bias: str | None     # parameter name of the (out,) bias, or None
    relu: bool           # ReLU after this layer


def _mlp_layers(module: nn.Module, x: Tensor) -> list[_Layer] | None:
    """The model as [Flatten] (Linear ReLU)* Linear, or None when it is anything else.

    The chain is read from the leaf modules in registration order and then *checked*:
    it must reproduce ``module(x)`` on a probe batch (so a custom ``forward`` that
    wires the same leaves differently is never mistaken for a plain MLP).
    """
    leaves = [(name, m) for name, m in module.named_modules() if not any(True for _ in m.children())]
    if any(True for _ in module.buffers()):
        return None
    layers: list[_Layer] = []
    flatten_seen = False
    for i, (name, m) in enumerate(leaves):
        prefix = f"{name}." if name else ""
        if isinstance(m, nn.Flatten) and i == 0 and m.start_dim == 1 and m.end_dim == -1:
            flatten_seen = True
        elif isinstance(m, (nn.Identity,)) or (isinstance(m, nn.Dropout) and m.p == 0):
            continue
        elif type(m) is nn.Linear:
            layers.append(_Layer(prefix + "weight", prefix + "bias" if m.bias is not None else None, False))
        elif type(m) is nn.ReLU and layers and not layers[-1].relu:
            layers[-1] = dataclass_replace(layers[-1], relu=True)
        else:
            return None
    n_params = sum(1 for _ in module.parameters())
    if not layers or layers[-1].relu or n_params != sum(1 + (la.bias is not None) for la in layers):
        return None
    if not flatten_seen and x.dim() != 2:
        return None
    probe = x[:4]
    params = dict(module.named_parameters())
    with torch.no_grad():
        h = probe.flatten(1)
        for la in layers:
            h = F.linear(h, params[la.weight], None if la.bias is None else params[la.bias])
            if la.relu:
                h = h.relu()
        want = module.eval()(probe)
        module.train()
    if want.shape != h.shape or not torch.allclose(want, h, atol=1e-5, rtol=1e-4):
        return None
    return layers


def _mlp_grads(layers: list[_Layer], params: dict[str, Tensor], xb: Tensor, yb: Tensor, scale: Tensor,
               mm_dtype: torch.dtype) -> dict[str, Tensor]:
    """Per-replica gradients of the mean cross-entropy, by hand, with batched matmuls.

    xb (R, B, D) in ``mm_dtype``; yb (R, B) int64; scale (R, B) = example weight / examples
    in the replica's batch (0 for padding). Weights are float32 masters, (R, out, in) in
    float32 and (R, in, out) in bfloat16 (see :func:`_weight_layout`). In bfloat16 the matmul
    operands are cast (as autocast does); logits, the loss gradient, bias gradients and the
    returned gradients are float32.
    """
    low = mm_dtype != torch.float32
    # the (R, in, out) right operands of the forward: a transposed view of the float32 masters,
    # or the bfloat16 cast of the (R, in, out) masters (a contiguous cast: a transposing cast
    # costs ~15x more, and oneDNN's bfloat16 GEMM is faster on this layout; both measured)
    wts = [params[la.weight].to(mm_dtype) if low else params[la.weight].transpose(1, 2) for la in layers]
    acts = [xb]
    h = xb
    for i, la in enumerate(layers):
        if la.bias is None:
            z = torch.bmm(h, wts[i])
        else:
            bias = params[la.bias].unsqueeze(1)
            z = torch.baddbmm(bias.to(mm_dtype) if low else bias, h, wts[i])
        h = z.relu_() if la.relu else z
        if i + 1 < len(layers):
            acts.append(h)
    # d(mean CE)/d logits = (softmax - onehot) * weight / count, in float32
    g = torch.softmax(h.float(), dim=-1)
    g.scatter_add_(-1, yb.unsqueeze(-1), torch.full_like(g[..., :1], -1.0))
    g.mul_(scale.unsqueeze(-1))
    grads: dict[str, Tensor] = {}
    for i in range(len(layers) - 1, -1, -1):
        la = layers[i]
        if low:
            gc = g.to(mm_dtype)
            grads[la.weight] = torch.bmm(acts[i].transpose(1, 2), gc).float()  # (R, in, out)
        else:
            gc = g
            grads[la.weight] = torch.bmm(g.transpose(1, 2), acts[i])  # (R, out, in)
        if la.bias is not None:
            grads[la.bias] = g.sum(dim=1, dtype=torch.float32)
        if i:
            gh = torch.bmm(gc, wts[i].transpose(1, 2))
            gh.mul_(acts[i] > 0)  # ReLU of layer i-1 (its output is acts[i])
            g = gh.float() if low else gh
    return grads


def _weight_layout(layers: list[_Layer], params: dict[str, Tensor], mm_dtype: torch.dtype) -> dict[str, Tensor]:
    """The kernel's working copy of the parameters: bfloat16 keeps (R, in, out) weight masters."""
    if mm_dtype == torch.float32:
        return params
    out = dict(params)
    for la in layers:
        out[la.weight] = params[la.weight].transpose(1, 2).contiguous()
    return out


class _FusedReplicaOptimizer:
    """``torch.optim``'s fused CPU/GPU kernels (``_fused_sgd_``/``_fused_adam_``) per replica slice.

    Every parameter is (R, ...); replica r's slices ``p[r]`` are contiguous, so one fused call
    updates all the slices of the replicas that share a learning rate (with per-slice step
    counts for Adam's bias correction). Idle replicas are left out of the call: no change to
    their parameters or state, as in the reference loop where they simply do not step.
    """

    def __init__(self, params: dict[str, Tensor], recipe: ReplicaRecipe) -> None:
        self.recipe = recipe
        first = next(iter(params.values()))
        n_rep = first.shape[0]
        self.names = list(params)
        if recipe.optimizer == "sgd":
            self.buf = {k: torch.zeros_like(v) for k, v in params.items()}
        else:
            self.m = {k: torch.zeros_like(v) for k, v in params.items()}
            self.v = {k: torch.zeros_like(v) for k, v in params.items()}
        self.steps = [torch.zeros((), dtype=torch.float32, device=first.device) for _ in range(n_rep)]
        self.count = [0] * n_rep

    def step(self, params: dict[str, Tensor], grads: dict[str, Tensor], active: Sequence[int],
             lrs: Sequence[float]) -> None:
        r = self.recipe
        groups: dict[tuple[float, bool], list[int]] = {}
        for i in active:
            groups.setdefault((float(lrs[i]), self.count[i] == 0), []).append(i)
            self.count[i] += 1
        for (lr, first), reps in groups.items():
            ps = [params[k][i] for k in self.names for i in reps]
            gs = [grads[k][i] for k in self.names for i in reps]
            if r.optimizer == "sgd":
                bufs = [self.buf[k][i] for k in self.names for i in reps] if r.momentum else []
                torch._fused_sgd_(ps, gs, bufs, weight_decay=r.weight_decay, momentum=r.momentum, lr=lr,
                                  dampening=0.0, nesterov=False, maximize=False, is_first_step=first)
            else:
                for i in reps:
                    self.steps[i] += 1
                torch._fused_adam_(ps, gs, [self.m[k][i] for k in self.names for i in reps],
                                   [self.v[k][i] for k in self.names for i in reps], [],
                                   [self.steps[i] for _ in self.names for i in reps], lr=lr,
                                   beta1=r.betas[0], beta2=r.betas[1], weight_decay=r.weight_decay,
                                   eps=r.adam_eps, amsgrad=False, maximize=False)


def _train_mlp(layers: list[_Layer], params: dict[str, Tensor], xt: Tensor, yt: Tensor, m: np.ndarray,
               seeds: list[int], recipe: ReplicaRecipe, device: torch.device) -> None:
    """Train the stacked MLP ``params`` in place (the recipe of the module docstring)."""
    mm_dtype = _PRECISIONS[recipe.precision]
    x_flat = xt.flatten(1).to(device=device, dtype=mm_dtype)
    yt = yt.to(device)
    work = _weight_layout(layers, params, mm_dtype)
    opt = _FusedReplicaOptimizer(work, recipe)
    totals = recipe.epochs * np.ceil(m.sum(axis=1) / recipe.batch_size)
    done = np.zeros(len(seeds))
    rngs = _order_rngs(seeds)
    n_rep, bs = len(seeds), recipe.batch_size
    for epoch in range(recipe.epochs):
        idx_np, w_np, active_np = _epoch_plan(m, rngs, bs)
        scale_np = w_np / np.maximum(w_np.sum(axis=2, keepdims=True), 1.0)
        idx = torch.from_numpy(idx_np).to(device)
        scale = torch.from_numpy(scale_np).to(device)
        y_steps = yt[idx]  # (T, R, B)
        for step in range(idx.shape[0]):
            xb = x_flat.index_select(0, idx[step].view(-1)).view(n_rep, bs, -1)
            grads = _mlp_grads(layers, work, xb, y_steps[step], scale[step], mm_dtype)
            active = np.flatnonzero(active_np[step])
            if recipe.schedule == "cosine":
                lrs = recipe.lr * 0.5 * (1.0 + np.cos(math.pi * done / totals))
            else:
                lrs = np.full(n_rep, recipe.lr)
            done[active] += 1
            opt.step(work, grads, active.tolist(), lrs.tolist())
        logger.debug("replicas (mlp kernel): epoch %d/%d done (%d steps)", epoch + 1, recipe.epochs, idx.shape[0])
    for k, v in _weight_layout(layers, work, mm_dtype).items():  # the transpose is its own inverse
        params[k] = v


# --------------------------------------------------------------------------- training
def train_replicas(
    model_factory: ModelFactory,
    x: Any,
    y: Any,
    mask: Any,
    seeds: Sequence[int],
    *,
    recipe: ReplicaRecipe | None = None,
    device: str | torch.device = "cpu",
    kernel: str = "auto",
) -> StackedReplicas:
    """Train ``len(seeds)`` replicas at once; replica r trains only on ``x[mask[r]]``.

    Args:
        model_factory: callable returning a fresh ``nn.Module`` mapping (b, ...) -> (b, classes).
        x: (n, ...) float features; y: (n,) int64 labels.
        mask: (R, n) booleans (or None = every replica sees every example).
        seeds: R ints; replica r's init and data order depend only on ``seeds[r]``
            (and dropout masks on all seeds together).
        recipe: :class:`ReplicaRecipe` (defaults work).
        device: where to train ("cpu", "cuda", ...).
        kernel: "auto" (the grouped-matmul MLP kernel when the model is a plain
            ``[Flatten] (Linear ReLU)* Linear`` chain, else vmap), "mlp" (that kernel;
            a ConfigError for any other model) or "vmap" (``torch.func`` for any model).

    Returns:
        :class:`StackedReplicas` with parameters on ``device``.
    """
    xt, yt, m, seeds, recipe = _validate(model_factory, x, y, mask, seeds, recipe)
    if kernel not in _KERNELS:
        raise ConfigError(f"The 'kernel' parameter of train_replicas must be one of {list(_KERNELS)}; "
                          f"got {kernel!r} instead.")
    device = torch.device(device)
    modules = [_init_module(model_factory, s) for s in seeds]
    _check_module(modules[0], xt, yt)
    for mod in modules:
        mod.train()
    layers = None if kernel == "vmap" else _mlp_layers(modules[0], xt)
    if kernel == "mlp" and layers is None:
        raise ConfigError(
            f"kernel='mlp' needs a plain MLP ([Flatten] (Linear ReLU)* Linear, no dropout, no buffers); "
            f"{type(modules[0]).__name__} is not one. Use kernel='auto' or 'vmap' for other models."
        )
    params, buffers = stack_module_state(modules)
    template = copy.deepcopy(modules[0]).to("meta").train()
    if layers is not None:
        params = {k: v.detach().to(device).contiguous() for k, v in params.items()}
        with torch.no_grad():
            _train_mlp(layers, params, xt, yt, m, seeds, recipe, device)
        return StackedReplicas(params=params, buffers={k: v.detach().to(device) for k, v in buffers.items()},
                               template=template, model_factory=model_factory, seeds=tuple(seeds), recipe=recipe)
    params = {k: v.detach().to(device).requires_grad_(True) for k, v in params.items()}
    buffers = {k: v.detach().to(device) for k, v in buffers.items()}
    xt, yt = xt.to(device), yt.to(device)

    def forward(p: dict[str, Tensor], b: dict[str, Tensor], xb: Tensor) -> Tensor:
        return functional_call(template, (p, b), (xb,))

    # vmap only the forward pass and let ordinary autograd differentiate the
    # summed loss: replicas share no parameters, so each slice of the gradient is
    # that replica's own gradient. (Measured ~20% faster on CPU than vmap(grad(.)).)
    batched_forward = vmap(forward, in_dims=(0, 0, 0), randomness="different")
    names = list(params)

    def grads_of(p: dict[str, Tensor], xb: Tensor, yb: Tensor, wb: Tensor) -> dict[str, Tensor]:
        with _autocast(recipe, device):
            logits = batched_forward(p, buffers, xb).float()  # (R, B, classes)
        losses = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none").view_as(wb)
        per_replica = (losses * wb).sum(dim=1) / wb.sum(dim=1).clamp_min(1.0)  # mean over real examples
        return dict(zip(names, torch.autograd.grad(per_replica.sum(), [p[k] for k in names])))

    opt = _OPTIMIZERS[recipe.optimizer](params, recipe)
    lr_scale: Tensor | None = None
    if recipe.schedule == "cosine":
        # CosineAnnealingLR(T_max = the replica's own total steps), stepped after every step
        total = torch.from_numpy(recipe.epochs * np.ceil(m.sum(axis=1) / recipe.batch_size)).to(device)
        done = torch.zeros(len(seeds), dtype=torch.float64, device=device)
    rngs = _order_rngs(seeds)
    dropout_seed = int(np.random.SeedSequence(seeds).generate_state(1)[0])
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(dropout_seed)
        for epoch in range(recipe.epochs):
            idx_np, w_np, active_np = _epoch_plan(m, rngs, recipe.batch_size)
            idx = torch.from_numpy(idx_np).to(device)
            w = torch.from_numpy(w_np).to(device)
            active = torch.from_numpy(active_np).to(device)
            for step in range(idx.shape[0]):
                ids = idx[step]
                grads = grads_of(params, xt[ids], yt[ids], w[step])
                if recipe.schedule == "cosine":
                    lr_scale = 0.5 * (1.0 + torch.cos(math.pi * done / total))
                    done += active[step].to(done.dtype)
                with torch.no_grad():
                    opt.step(params, grads, active[step], bool(active_np[step].all()), lr_scale)
            logger.debug("replicas: epoch %d/%d done (%d steps)", epoch + 1, recipe.epochs, idx.shape[0])
    return StackedReplicas(
        params={k: v.detach() for k, v in params.items()},
        buffers=buffers,
        template=template,
        model_factory=model_factory,
        seeds=tuple(seeds),
        recipe=recipe,
    )


def train_one_at_a_time(
    model_factory: ModelFactory,
    x: Any,
    y: Any,
    mask: Any,
    seeds: Sequence[int],
    *,
    recipe: ReplicaRecipe | None = None,
    device: str | torch.device = "cpu",
) -> list[nn.Module]:
    """Reference path: the same recipe as :func:`train_replicas`, one model after another.

    An ordinary loop with ``torch.optim``; returns the trained modules (on ``device``).
    """
    xt, yt, m, seeds, recipe = _validate(model_factory, x, y, mask, seeds, recipe)
    device = torch.device(device)
    xt, yt = xt.to(device), yt.to(device)
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    out = []
    for r, seed in enumerate(seeds):
        with torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(seed)
            module = model_factory()
            if r == 0:
                if not isinstance(module, nn.Module):
                    raise ConfigError(
                        f"The 'model_factory' parameter must return an nn.Module; it returned {type(module).__name__}."
                    )
            module = module.to(device).train()
            opt = _OPTIMIZERS[recipe.optimizer].torch_reference(module.parameters(), recipe)
            (rng,) = _order_rngs([seed])
            included = np.flatnonzero(m[r])
            sched = None
            if recipe.schedule == "cosine":
                total_steps = recipe.epochs * math.ceil(included.size / recipe.batch_size)
                sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
            for _ in range(recipe.epochs):
                order = torch.from_numpy(rng.permutation(included)).to(device)
                for start in range(0, order.numel(), recipe.batch_size):
                    ids = order[start : start + recipe.batch_size]
                    opt.zero_grad(set_to_none=True)
                    with _autocast(recipe, device):
                        logits = module(xt[ids])
                    F.cross_entropy(logits.float(), yt[ids]).backward()
                    opt.step()
                    if sched is not None:
                        sched.step()
        out.append(module)
    return out
