"""Built-in classifier architectures and the model registry.

A model factory takes ``(input_shape, n_classes, **options)`` and returns an
``nn.Module`` mapping a batch of inputs to logits. User factories
(``package.module:function``) follow the same signature.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from obliviate.errors import ConfigError
from obliviate.registry import Registry, closest

ModelFactory = Callable[..., nn.Module]
MODELS: Registry[ModelFactory] = Registry("model")


class MLP(nn.Module):
    """Flatten, then ``len(hidden)`` ReLU layers, then a linear classifier."""

    def __init__(self, input_shape: Sequence[int], n_classes: int, hidden: Sequence[int] = (512, 256),
                 dropout: float = 0.0) -> None:
        super().__init__()
        d = 1
        for s in input_shape:
            d *= int(s)
        layers: list[nn.Module] = [nn.Flatten()]
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = h
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(d, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class SmallCNN(nn.Module):
    """Two conv blocks (conv, ReLU, max-pool) and a two-layer head.

    Works on images ``(C, H, W)`` with 2-D convolutions and on signals
    ``(C, L)`` (e.g. MNIST-1D) with 1-D convolutions.
    """

    def __init__(self, input_shape: Sequence[int], n_classes: int, channels: Sequence[int] = (32, 64),
                 hidden: int = 128) -> None:
        super().__init__()
        if len(input_shape) == 3:
            conv, pool = nn.Conv2d, nn.MaxPool2d
        elif len(input_shape) == 2:
            conv, pool = nn.Conv1d, nn.MaxPool1d
        else:
            raise ConfigError(
                f"SmallCNN needs inputs shaped (C, H, W) or (C, L); got {tuple(input_shape)}. "
                "Use the mlp model for flat feature vectors."
            )
        layers: list[nn.Module] = []
        c_in = int(input_shape[0])
        for c in channels:
            layers += [conv(c_in, c, kernel_size=3, padding=1), nn.ReLU(), pool(2)]
            c_in = c
        self.features = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, *input_shape)).shape[1]
        self.head = nn.Sequential(nn.Linear(n_flat, hidden), nn.ReLU())
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.features(x)))


MODELS.register("mlp", MLP)
MODELS.register("cnn", SmallCNN)


@dataclass(frozen=True)
class ModelSpec:
    """Names a model factory and its options; serialisable, hashable into cache keys."""

    name: str = "mlp"
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class UntrustedFactoryError(ConfigError):
    """A model factory named by a file (not by the caller) is not on the caller's allow-list."""


def check_factory_allowed(name: str, allowed: Iterable[str] = (), *, source: str = "a stored file") -> None:
    """Refuse ``package.module:callable`` names that the caller did not allow, before importing anything.

    A name read from a file (a store's ``store.json``) must not choose code to import: only
    registered models (``mlp``, ``cnn``, ...) and factories the user names at load time
    (``--model-factory``, ``factories=``) pass. Raises :class:`UntrustedFactoryError`.
    """
    if not isinstance(name, str) or not name:
        raise UntrustedFactoryError(f"The model name in {source} must be a non-empty string; got {name!r}.")
    if ":" not in name:
        if name not in MODELS:
            raise UntrustedFactoryError(f"The model {name!r} named in {source} is not a registered model "
                                        f"({', '.join(MODELS.names())}); nothing was imported.")
        return
    if name not in set(allowed):
        raise UntrustedFactoryError(
            f"{source} names the model factory {name!r}, which is not on the allow-list; nothing was imported. "
            f"If you trust that code, allow it explicitly: --model-factory {name} on the command line, or "
            f"factories=[{name!r}] in the API call.")


def resolve_factory(name: str, *, allowed: Iterable[str] | None = None) -> ModelFactory:
    """A registered name, or ``package.module:callable`` for a user's own factory.

    ``allowed``: when given, ``name`` came from a file and must pass
    :func:`check_factory_allowed` before anything is imported.
    """
    if allowed is not None:
        check_factory_allowed(name, allowed)
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(
                f"Cannot import model module {module_name!r} from {name!r}: {exc}. "
                "Make sure the module is importable (installed, or on PYTHONPATH)."
            ) from exc
        factory = getattr(module, attr, None)
        if factory is None or not callable(factory):
            raise ConfigError(f"{module_name!r} has no callable {attr!r} (from model {name!r}).")
        return factory
    return MODELS.get(name)


def build_model(spec: ModelSpec, input_shape: Sequence[int], n_classes: int, *, seed: int) -> nn.Module:
    """Build a freshly initialised model; the same seed gives the same weights."""
    factory = resolve_factory(spec.name)
    if spec.options:
        try:
            params = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            params = {}
        accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
        if params and not accepts_kwargs:
            valid = [p for p in params if p not in ("input_shape", "n_classes")]
            bad = [k for k in spec.options if k not in params]
            if bad:
                problems = []
                for k in bad:
                    hint = closest(k, valid)
                    problems.append(f"{k!r} is not an option of model {spec.name!r}"
                                    + (f"; did you mean {hint!r}?" if hint else "")
                                    + f" Valid options: {', '.join(valid) or 'none'}.")
                raise ConfigError(f"Bad options for model {spec.name!r}:", problems)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = factory(tuple(input_shape), int(n_classes), **spec.options)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"Model factory {spec.name!r} returned {type(model).__name__}, not an nn.Module.")
    return model
