"""Content-addressed cache of trained models.

A trained model is identified by everything that determines its numbers: the
exact training data (its fingerprint covers ids, labels and features, so a
different split or forget set is a different key), the model's *code* (the
source of its factory and of every non-torch module class it builds, and a
hash of the freshly initialised weights), its options by content (arrays by
dtype, shape and bytes, never by their abbreviated ``str``), the recipe, the
seed, and the runtime that changes floating-point results (torch version,
thread count, device, default dtype). Re-running a benchmark reuses these
instead of retraining. The recorded training wall time travels with the
checkpoint so time ratios stay honest.
"""

from __future__ import annotations

import contextvars
import dataclasses
import enum
import functools
import hashlib
import inspect
import json
import logging
import os
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch
from torch import nn

from obliviate.data.dataset import ArrayDataset
from obliviate.errors import CheckpointError, ConfigError
from obliviate.models.zoo import ModelSpec, build_model, resolve_factory
from obliviate.progress import Progress
from obliviate.training.checkpoint import load_checkpoint, save_checkpoint
from obliviate.training.recipe import Recipe
from obliviate.training.trainer import train_classifier

log = logging.getLogger(__name__)

CACHE_ENV = "OBLIVIATE_CACHE"
CACHE_FORMAT = "obliviate-train-v1"


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "obliviate" / "models"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().cpu().contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def _array_digest(kind: str, dtype: str, shape: tuple[int, ...], data: bytes) -> dict[str, Any]:
    return {f"__{kind}__": {"dtype": dtype, "shape": list(shape), "sha256": _sha256(data)}}


def canonical(value: Any, *, where: str = "value") -> Any:
    """``value`` as JSON-ready data that identifies it by content.

    JSON-native values come back unchanged (so keys made only of them are
    what they always were). Arrays and tensors become their dtype, shape and
    a hash of their bytes: ``str`` of a large array elides its middle, so two
    different arrays would print alike. Code (functions, classes) becomes a
    fingerprint of its source. Anything else is hashed through pickle; a value
    that cannot be identified is a ConfigError, never a silent shared key.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {k if isinstance(k, str | int | float | bool) or k is None else json.dumps(canonical(k, where=where)):
                canonical(v, where=f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = [canonical(v, where=where) for v in value]
        return {"__set__": sorted(items, key=lambda v: json.dumps(v, sort_keys=True))}
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:  # bytes of an object array are pointers, not content
            return {"__ndarray__": {"dtype": "object", "shape": list(value.shape),
                                    "items": canonical(value.ravel().tolist(), where=where)}}
        return _array_digest("ndarray", value.dtype.str, value.shape, np.ascontiguousarray(value).tobytes())
    if isinstance(value, np.generic):
        return {"__numpy__": value.dtype.str, "value": canonical(value.item(), where=where)}
    if isinstance(value, torch.Tensor):
        return _array_digest("tensor", str(value.dtype), tuple(value.shape), _tensor_bytes(value))
    if isinstance(value, bytes | bytearray):
        return {"__bytes__": _sha256(bytes(value))}
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return {"__enum__": f"{type(value).__module__}.{type(value).__qualname__}",
                "value": canonical(value.value, where=where)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__dataclass__": f"{type(value).__module__}.{type(value).__qualname__}",
                "fields": {f.name: canonical(getattr(value, f.name), where=f"{where}.{f.name}")
                           for f in dataclasses.fields(value)}}
    if hasattr(value, "model_dump") and callable(value.model_dump):  # pydantic models
        return {"__model__": f"{type(value).__module__}.{type(value).__qualname__}",
                "fields": canonical(value.model_dump(), where=where)}
    if isinstance(value, nn.Module):  # a module passed as an option (a backbone): its code and its weights
        return {"__nn_module__": code_fingerprint(type(value)), "state_sha256": _state_digest(value)}
    if inspect.isroutine(value) or inspect.isclass(value) or isinstance(value, functools.partial):
        return {"__code__": code_fingerprint(value)}
    try:
        found = {"__pickle__": f"{type(value).__module__}.{type(value).__qualname__}",
                 "sha256": _sha256(pickle.dumps(value, protocol=4))}
        if callable(value):  # a callable object: its state (pickled) and its class's code
            found["code"] = code_fingerprint(type(value))
        return found
    except Exception as exc:  # any pickling failure means the same thing: no content to key on
        raise ConfigError(f"Cannot identify {where} (of type {type(value).__name__}) for the model cache "
                          f"({exc}). Pass plain values (numbers, strings, lists, dicts, numpy arrays, tensors) "
                          "as model options, or turn the cache off (--no-cache, or cache=None).") from None


def _state_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        h.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        h.update(_tensor_bytes(tensor))
    return h.hexdigest()


def _best_effort(value: Any, where: str) -> Any:
    """``canonical(value)``, or a marker and a warning when part of a factory's state cannot be identified."""
    try:
        return canonical(value, where=where)
    except ConfigError:
        log.warning("cannot identify %s for the model cache: changing it will not invalidate cached models; "
                    "pass --no-cache (cache=None) after changing it", where)
        return {"unidentified": type(value).__name__}


_PLAIN = (type(None), bool, int, float, str, bytes, tuple, list, dict, np.ndarray, np.generic)
_FINGERPRINTING: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar("fingerprinting", default=frozenset())


def _function_state(fn: Any, name: str) -> dict[str, Any]:
    """What a function's source does not show: defaults, closure values, plain module constants it reads."""
    state: dict[str, Any] = {}
    if fn.__defaults__:
        state["defaults"] = list(fn.__defaults__)
    if fn.__kwdefaults__:
        state["kwdefaults"] = dict(fn.__kwdefaults__)
    cells = {}
    for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
        try:
            cells[var] = cell.cell_contents
        except ValueError:  # an empty cell (a variable not yet assigned)
            continue
    if cells:
        state["closure"] = cells
    constants = {k: fn.__globals__[k] for k in fn.__code__.co_names
                 if k in fn.__globals__ and isinstance(fn.__globals__[k], _PLAIN)}
    if constants:
        state["globals"] = constants
    return {k: _best_effort(v, f"{k} of {name}") for k, v in state.items()}


def _package_version(module_name: str) -> str | None:
    top = sys.modules.get(module_name.partition(".")[0])
    version = getattr(top, "__version__", None)
    return str(version) if version is not None else None


def code_fingerprint(obj: Any) -> dict[str, Any]:
    """What identifies the code of a function or class: a hash of its source.

    Where the source cannot be read (a C extension, a REPL definition), the
    defining package's ``__version__`` and a hash of the module's file stand
    in; with neither, only the name is keyed and a warning says that editing
    this code will not invalidate cached models.
    """
    if isinstance(obj, functools.partial):
        return {"partial": code_fingerprint(obj.func), "args": canonical(list(obj.args)),
                "keywords": canonical(dict(obj.keywords))}
    target = inspect.unwrap(obj) if callable(obj) else obj
    if not (inspect.isroutine(target) or inspect.isclass(target)):
        # a callable instance: its class's __call__ is the code, its pickled state the rest
        return {"class": code_fingerprint(type(target)), "state": _best_effort(target, repr(type(target)))}
    module_name = getattr(target, "__module__", None) or ""
    name = f"{module_name}.{getattr(target, '__qualname__', repr(target))}"
    seen = _FINGERPRINTING.get()
    if id(target) in seen:  # a recursive closure refers to itself
        return {"name": name, "recursive": True}
    token = _FINGERPRINTING.set(seen | {id(target)})
    try:
        found = _source_fingerprint(target, name, module_name)
        if inspect.ismethod(target):
            found["self"] = _best_effort(target.__self__, f"the object of {name}")
            target = target.__func__
        if inspect.isfunction(target):
            state = _function_state(target, name)
            if state:
                found["state"] = state
        return found
    finally:
        _FINGERPRINTING.reset(token)


def _source_fingerprint(target: Any, name: str, module_name: str) -> dict[str, Any]:
    try:
        return {"name": name, "source_sha256": _sha256(inspect.getsource(target).encode())}
    except (OSError, TypeError):
        pass
    found: dict[str, Any] = {"name": name}
    version = _package_version(module_name) if module_name else None
    if version:
        found["version"] = version
    file = getattr(sys.modules.get(module_name), "__file__", None)
    if file and Path(file).is_file():
        found["file_sha256"] = _sha256(Path(file).read_bytes())
    if len(found) == 1:
        log.warning("cannot read the source of %s: editing it will not invalidate cached models; "
                    "pass --no-cache (cache=None) after changing it", name)
    return found


def _from_torch(cls: type) -> bool:
    module = cls.__module__ or ""
    return module == "builtins" or module == "torch" or module.startswith("torch.")


def model_fingerprint(spec: ModelSpec, model: nn.Module) -> dict[str, Any]:
    """The model's code and initial state: factory source, module classes' sources, initial weights.

    torch's own classes are covered by the torch version in :func:`runtime_fingerprint`.
    """
    classes: dict[str, dict[str, Any]] = {}
    for module in model.modules():
        for cls in type(module).__mro__:
            if not _from_torch(cls):
                classes.setdefault(f"{cls.__module__}.{cls.__qualname__}", code_fingerprint(cls))
    return {"factory": code_fingerprint(resolve_factory(spec.name)),
            "classes": dict(sorted(classes.items())), "init_sha256": _state_digest(model)}


def runtime_fingerprint(device: str | torch.device = "cpu") -> dict[str, Any]:
    """What, besides data, code and seed, changes the trained numbers."""
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(torch.device(device)),
            "default_dtype": str(torch.get_default_dtype()),
            "deterministic": torch.are_deterministic_algorithms_enabled()}


def cache_key(**parts: Any) -> str:
    """A short hash of ``parts``, each identified by content (see :func:`canonical`)."""
    blob = json.dumps({"format": CACHE_FORMAT, **canonical(parts, where="cache key")}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def train_cache_parts(spec: ModelSpec, data: ArrayDataset, recipe: Recipe, *, seed: int, n_classes: int,
                      model: nn.Module, device: str | torch.device = "cpu") -> dict[str, Any]:
    """What identifies training ``model`` (freshly built from ``spec``, not yet trained) on ``data``."""
    return {"kind": "classifier-v2", "data": data.fingerprint,
            "model": canonical(spec.to_dict(), where=f"model {spec.name!r}"),
            "code": model_fingerprint(spec, model), "input_shape": list(data.input_shape), "n_classes": n_classes,
            "recipe": recipe.to_dict(), "seed": seed, "runtime": runtime_fingerprint(device)}


@dataclass
class TrainedModel:
    model: nn.Module
    wall_s: float
    cached: bool
    key: str
    manifest: dict[str, Any]


class ModelCache:
    """Stores trained models under ``root/<key>/`` (safetensors + manifest)."""

    def __init__(self, root: str | os.PathLike[str] | None = None, *, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled

    def path(self, key: str) -> Path:
        return self.root / key

    def load(self, key: str, model: nn.Module) -> dict[str, Any] | None:
        if not self.enabled or not (self.path(key) / "manifest.json").is_file():
            return None
        try:
            return load_checkpoint(model, self.path(key))
        except CheckpointError as exc:
            log.warning("ignoring unusable cached model %s: %s", key, exc)
            return None

    def store(self, key: str, model: nn.Module, manifest: dict[str, Any]) -> None:
        if self.enabled:
            save_checkpoint(model, self.path(key), manifest)


def train_cached(spec: ModelSpec, data: ArrayDataset, recipe: Recipe, *, seed: int, n_classes: int,
                 cache: ModelCache | None = None, progress: Progress | None = None,
                 device: str | torch.device = "cpu", description: str = "train") -> TrainedModel:
    """Build and train a model from scratch, or load the identical one from the cache."""
    model = build_model(spec, data.input_shape, n_classes, seed=seed)
    parts = train_cache_parts(spec, data, recipe, seed=seed, n_classes=n_classes, model=model, device=device)
    key = cache_key(**parts)
    if cache is not None:
        manifest = cache.load(key, model)
        if manifest is not None:
            log.info("%s: reusing cached model %s", description, key)
            return TrainedModel(model.to(device).eval(), float(manifest["wall_s"]), True, key, manifest)
    t0 = time.perf_counter()
    result = train_classifier(model, data, recipe, seed=seed, device=device, progress=progress,
                              description=description)
    wall = time.perf_counter() - t0
    manifest = {
        "key": key,
        "dataset": data.name,
        "data_fingerprint": data.fingerprint,
        "n_train": len(data),
        "model": parts["model"],
        "code": parts["code"],
        "runtime": parts["runtime"],
        "recipe": recipe.to_dict(),
        "seed": seed,
        "wall_s": wall,
        "steps": result.steps,
        "final_loss": result.final_loss,
        "torch": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if cache is not None:
        cache.store(key, model, manifest)
    return TrainedModel(model.eval(), wall, False, key, manifest)
