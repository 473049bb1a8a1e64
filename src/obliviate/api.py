"""The one-call Python API: ``obliviate.forget(model, train=..., forget=..., method=...)``.

It wraps the user's own ``nn.Module`` and data, runs one removal method, and
(with ``audit=True``) measures the result against a model retrained without the
forget set, returning a :class:`ForgetResult` that renders to Markdown, HTML
and JSON. The user's model is never modified.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from obliviate.data.dataset import ArrayDataset
from obliviate.data.forget import ForgetSplit, make_split, split_forget
from obliviate.data.request import ForgetRequest
from obliviate.errors import ConfigError, DataError
from obliviate.progress import NullProgress, Progress, get_progress
from obliviate.removal.base import METHODS, Budget, RemovalMethod, RemovalRecord, UnlearningTask
from obliviate.removal.objective import ClassificationObjective
from obliviate.training.recipe import Recipe
from obliviate.training.trainer import train_classifier


def _as_dataset(data: Any, name: str) -> ArrayDataset:
    if isinstance(data, ArrayDataset):
        return data
    if isinstance(data, tuple | list) and len(data) in (2, 3, 4):
        x, y = np.asarray(data[0]), np.asarray(data[1])
        ids = np.asarray(data[2]) if len(data) > 2 else np.arange(len(y))
        subjects = np.asarray(data[3]) if len(data) > 3 else None
        return ArrayDataset(x=x, y=y, ids=ids, subjects=subjects, name=name)
    raise DataError(
        f"{name} must be an ArrayDataset or a tuple (x, y[, ids[, subjects]]) of arrays; got {type(data).__name__}."
    )


def _resolve_forget(train: ArrayDataset, forget: Any, seed: int) -> ForgetSplit:
    if isinstance(forget, str | ForgetRequest | Mapping):
        return split_forget(train, ForgetRequest.coerce(forget), seed=seed)
    arr = np.asarray(forget)
    if arr.dtype == bool:
        if arr.shape != (len(train),):
            raise DataError(f"A boolean forget mask must have shape ({len(train)},); got {arr.shape}.")
        return make_split(train, np.flatnonzero(arr), spec="mask")
    return make_split(train, train.positions(list(arr.ravel())), spec="ids")


def fresh_copy(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` with every ``reset_parameters`` layer re-initialised under ``seed``."""
    new = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in new.modules():
            if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
                m.reset_parameters()
    return new


@dataclass
class ForgetResult:
    """The unlearned model, what was done, and (with ``audit=True``) how it compares to retraining."""

    model: nn.Module
    record: RemovalRecord
    n_forget: int
    n_retain: int
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    retrain_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.record.method, "n_forget": self.n_forget, "n_retain": self.n_retain,
                "record": self.record.to_dict(), "retrain_s": self.retrain_s, "metrics": self.metrics}

    def to_json(self) -> str:
        def clean(o: Any) -> Any:
            if isinstance(o, float) and not np.isfinite(o):
                return None
            if isinstance(o, dict):
                return {k: clean(v) for k, v in o.items()}
            if isinstance(o, list):
                return [clean(v) for v in o]
            return o

        return json.dumps(clean(self.to_dict()), indent=2, default=str)

    def _rows(self) -> list[tuple[str, dict[str, float]]]:
        return list(self.metrics.items())

    def to_markdown(self) -> str:
        r = self.record
        lines = [f"# obliviate.forget: {r.method} ({r.kind})", "",
                 f"ran {r.method} ({r.kind} removal) for a forget set of {self.n_forget} examples and a retain set "
                 f"of {self.n_retain}; {r.steps} steps in {r.wall_s:.2f} s (stopped: {r.stopped_by})", ""]
        if r.kind != "exact":
            lines += ["An approximate method gives no guarantee: read the audit below (and run a strong audit) "
                      "before relying on it.", ""]
        if self.metrics:
            cols = ["forget_acc", "retain_acc", "test_acc", "tow", "tow_gap_closed", "js_to_retrain",
                    "mia_auc", "mia_efficacy"]
            lines.append("| model | kind | " + " | ".join(cols) + " |")
            lines.append("|---" * (len(cols) + 2) + "|")
            kinds = {"original": "baseline (untouched)", "retrain": "exact (reference)"}
            for name, m in self._rows():
                kind = kinds.get(name, self.record.kind)
                lines.append(f"| {name} | {kind} | " + " | ".join(
                    "n/a" if c not in m or not np.isfinite(m[c]) else f"{m[c]:.4f}" for c in cols) + " |")
            if self.retrain_s:
                lines += ["", f"time ratio to retraining: {r.wall_s / self.retrain_s:.4f} "
                              f"({r.wall_s:.2f} s vs {self.retrain_s:.2f} s)"]
        else:
            lines.append("No audit was run (pass audit=True and test data to compare with retraining).")
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        from obliviate.report.layout import markdown_to_html

        return markdown_to_html(self.to_markdown(), title=f"obliviate.forget: {self.record.method}")

    def save(self, directory: str | Path) -> dict[str, Path]:
        from obliviate.training.checkpoint import atomic_write_bytes, save_checkpoint

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(d / "result.json", self.to_json().encode())
        atomic_write_bytes(d / "report.md", self.to_markdown().encode())
        atomic_write_bytes(d / "report.html", self.to_html().encode())
        save_checkpoint(self.model, d / "model", {"method": self.record.method, "config": self.record.config})
        return {"json": d / "result.json", "markdown": d / "report.md", "html": d / "report.html",
                "model": d / "model"}


def forget(
    model: nn.Module,
    *,
    train: Any,
    forget: Any,
    method: str | RemovalMethod = "graddiff",
    test: Any = None,
    audit: bool = False,
    retrained: nn.Module | None = None,
    recipe: Recipe | None = None,
    method_config: dict[str, Any] | None = None,
    budget: Budget | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool | Progress = False,
) -> ForgetResult:
    """Unlearn ``forget`` from ``model`` (trained on ``train``) with ``method``.

    ``train``/``test``: an :class:`ArrayDataset` or ``(x, y[, ids[, subjects]])`` arrays.
    ``forget``: a :class:`~obliviate.data.request.ForgetRequest` (or its dict), a spec
    (``"random:0.1"``, ``"class:3"``, ``"subjects:alice"``, ``"ids:FILE"``), a list of
    example ids, or a boolean mask over ``train``.
    ``audit=True`` compares with a model retrained without the forget set: pass
    ``retrained`` if you have one, otherwise one is trained from a fresh
    initialisation of ``model``'s architecture with ``recipe`` (which should be
    the recipe the original was trained with).
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch nn.Module; got {type(model).__name__}.")
    train_ds = _as_dataset(train, "train")
    test_ds = _as_dataset(test, "test") if test is not None else None
    split = _resolve_forget(train_ds, forget, seed)
    recipe = recipe or Recipe()
    bar = progress if isinstance(progress, Progress) else (get_progress(True) if progress else NullProgress())
    n_classes = train_ds.n_classes
    if test_ds is not None:
        n_classes = max(n_classes, test_ds.n_classes)
    with torch.no_grad():
        probe = model.eval()(torch.from_numpy(train_ds.x[:2]).to(device))
    if probe.ndim != 2:
        raise ConfigError(f"model must map a batch to logits of shape (batch, classes); got {tuple(probe.shape)}.")
    n_classes = max(n_classes, probe.shape[1])

    retrain_info: dict[str, float] = {}

    def fit_from_scratch(data: ArrayDataset) -> tuple[nn.Module, float, dict[str, Any]]:
        fresh = fresh_copy(model, seed)
        t0 = time.perf_counter()
        res = train_classifier(fresh, data, recipe, seed=seed, device=device, progress=bar, description="retrain")
        retrain_info["s"] = time.perf_counter() - t0
        return fresh, retrain_info["s"], {"steps": res.steps}

    task = UnlearningTask(forget=split.forget, retain=split.retain,
                          objective=ClassificationObjective(n_classes, device), recipe=recipe, seed=seed,
                          device=device, fit_from_scratch=fit_from_scratch,
                          extras={"train": train_ds, "test": test_ds})
    if isinstance(method, RemovalMethod):
        if method_config:
            raise ConfigError("Pass method_config only with a method name, not with a method instance.")
        impl = method
    else:
        impl = METHODS.get(method)(**(method_config or {}))
    # methods that draw from torch's global generator start from the seed; the caller's generator is left as it was
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unlearned, record = impl.unlearn(model, task, budget=budget, progress=bar)
    result = ForgetResult(model=unlearned, record=record, n_forget=len(split.forget), n_retain=len(split.retain))
    if audit:
        if test_ds is None:
            raise ConfigError("audit=True needs test data (test=...) for test accuracy and membership attacks.")
        from obliviate.audit.evaluate import SplitOutputs, classifier_metrics
        from obliviate.audit.metrics import tug_of_war
        from obliviate.audit.outputs import outputs_of

        if retrained is None:
            if record.method == "retrain":
                retrained = unlearned
                result.retrain_s = record.wall_s
            else:
                retrained, result.retrain_s, _ = fit_from_scratch(split.retain)

        def outs(m: nn.Module) -> SplitOutputs:
            return SplitOutputs(outputs_of(m, split.forget, device=device), outputs_of(m, split.retain, device=device),
                                outputs_of(m, test_ds, device=device))

        ref, orig = outs(retrained), outs(model)
        otow = tug_of_war(orig.accuracies, ref.accuracies)
        result.metrics = {
            "original": classifier_metrics(orig, ref, original_tow=otow, seed=seed),
            "retrain": classifier_metrics(ref, ref, original_tow=otow, seed=seed),
            record.method if record.method != "retrain" else "retrain (method)":
                classifier_metrics(outs(unlearned), ref, original_tow=otow, seed=seed),
        }
    return result
