"""A SISA ensemble backed by a store and a request ledger.

``Sisa(config, store=DIR).fit(data)`` trains S shard models (R slice checkpoints each)
and publishes model version 1. ``Sisa.open(DIR)`` opens it again. ``forget`` records a
request durably in the ledger, retrains only the affected shards from their last
unaffected slice, publishes the next version with one atomic pointer switch, and returns
a :class:`ForgetReceipt`. Requests that a crash interrupted are applied, exactly once,
by the next writer (``forget``, ``forget_many`` or ``recover``).

This module is the model: shards, slices, aggregation, prediction, the store's files.
Request handling (ledger, forgetting, recovery) is :mod:`obliviate.engine.sisa.requests`;
receipts are :mod:`.receipts`, residue is :mod:`.recovery`, ledger checks :mod:`.verify`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from obliviate.data.dataset import ArrayDataset
from obliviate.data.source import DataSource
from obliviate.engine.executor import Executor, make_executor
from obliviate.engine.keys import SigningKey, VerifyKey, default_key_path
from obliviate.engine.ledger import Ledger, utc_now
from obliviate.engine.sisa.aggregate import AGGREGATORS
from obliviate.engine.sisa.config import SisaConfig
from obliviate.engine.sisa.receipts import ForgetReceipt, ErasureRequest
from obliviate.engine.sisa.recovery import remove_unused
from obliviate.engine.sisa.requests import RequestsMixin
from obliviate.engine.sisa.training import (
    ShardJob,
    ShardResult,
    derive_seed,
    key_base,
    live_rows,
    place,
    run_shard_job,
    slice_keys,
)
from obliviate.engine.sisa.verify import check_ledger, sign_version
from obliviate.engine.store import ModelStore, durable_write_json
from obliviate.errors import CheckpointError, ConfigError, DataError, LedgerError
from obliviate.models.zoo import build_model, check_factory_allowed
from obliviate.progress import NullProgress, Progress
from obliviate.training.checkpoint import load_into

log = logging.getLogger(__name__)

STORE_FORMAT = "obliviate-sisa-store-v1"


@dataclass
class _ShardPlan:
    shard: int
    rows: np.ndarray
    prefix: list[int]
    keys: list[str]
    start: int
    start_sha256: str | None

    @property
    def changed(self) -> bool:
        return self.start < len(self.keys)


class Sisa(RequestsMixin):
    """A SISA ensemble stored in ``store``.

    Args:
        config: the SISA configuration (only for ``fit``; ``open`` reads it from the store).
        store: the store folder.
        executor: ``serial``, ``process``, ``ray`` or an :class:`Executor`; shard jobs run on it.
        executor_options: keyword options of the executor (e.g. ``max_workers``).
        progress: progress callback.
        key_file: the ledger's signing key (a :class:`SigningKey` or its file); None: the
            default key file (:func:`obliviate.engine.keys.default_key_path`), created on first use.
        factories: ``package.module:callable`` model factories the caller trusts. A store names
            its architecture in ``store.json``; a factory named there is imported only if it is
            listed here (``config.model`` given to ``fit`` is trusted: the caller named it).
    """

    def __init__(self, config: SisaConfig | None = None, *, store: str | os.PathLike[str],
                 executor: str | Executor = "serial", executor_options: dict[str, Any] | None = None,
                 progress: Progress | None = None, key_file: SigningKey | str | os.PathLike[str] | None = None,
                 factories: Sequence[str] = ()) -> None:
        self.config = config
        self.store = store
        self.executor = executor
        self.executor_options = executor_options
        self.progress = progress
        self.key_file = key_file
        self.factories = factories

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        self.files_ = ModelStore(self.store)
        self.executor_ = make_executor(self.executor, **(self.executor_options or {}))
        self.progress_ = self.progress or NullProgress()
        self._models: tuple[int, list[torch.nn.Module], np.ndarray] | None = None
        self.factories_ = {str(f) for f in self.factories}

    def _check_model(self) -> None:
        """Refuse a model factory the store names but the caller did not allow (before any import)."""
        check_factory_allowed(self.config_.model.name, self.factories_, source=str(self.files_.config_path))

    def fit(self, data: ArrayDataset | DataSource, *, source: DataSource | dict[str, Any] | None = None,
            overwrite: bool = False) -> Sisa:
        """Train every shard and publish model version 1. Returns ``self``.

        ``data`` is an :class:`ArrayDataset`, or a :class:`DataSource` that is loaded here
        (its test split is kept as ``test_data_``). ``source`` records how to load an
        ``ArrayDataset`` again (a :class:`DataSource`, or ``{"dataset": "digits", "data_dir":
        None}``), so the store can be opened, and forgotten from, without passing the data.
        Re-running ``fit`` on a store whose training was interrupted resumes it (same config
        and data). A folder that is not empty and not a store is refused unless
        ``overwrite``; ``overwrite`` also replaces a trained store (only the store's own
        files are deleted).
        """
        config = self.config or SisaConfig()
        schema: dict[str, Any] | None = None
        classes: list[str] | None = None
        ModelStore(self.store).refuse_target(overwrite=overwrite)  # before loading any data; again under the lock
        if isinstance(data, DataSource):
            if source is not None:
                raise ConfigError("Give the data source once: Sisa.fit(DataSource(...)) loads and records it.")
            source = data
            loaded = data.open()
            data, schema, classes = loaded.bundle.train, loaded.schema, loaded.classes
            self.test_data_ = loaded.bundle.test
        if isinstance(source, dict):
            source = DataSource.from_dict(source)
        if source is not None and not isinstance(source, DataSource):
            raise ConfigError(f"The 'source' parameter of Sisa.fit must be a DataSource or a dict; got "
                              f"{type(source).__name__} instead.")
        if not isinstance(data, ArrayDataset):
            raise DataError(f"Sisa.fit needs an ArrayDataset or a DataSource; got {type(data).__name__}.")
        if len(data) < config.shards:
            raise ConfigError(f"The 'shards' parameter of SisaConfig must be at most the number of training "
                              f"examples ({len(data)}); got {config.shards} instead.")
        self._setup()
        self.factories_.add(config.model.name)
        files = self.files_
        doc = {"format": STORE_FORMAT, "config": config.to_dict(),
               "source": None if source is None else source.to_dict(),
               "source_fingerprint": None if source is None else source.fingerprint(), "schema": schema,
               "classes": classes,
               "data": {"name": data.name, "fingerprint": data.fingerprint, "n": len(data),
                        "input_shape": list(data.input_shape), "n_classes": data.n_classes},
               "torch": torch.__version__}
        with files.lock():
            if overwrite:
                files.clear()
            files.refuse_target(overwrite=overwrite)
            if files.exists():
                old = files.read_config()
                if old.get("config") != doc["config"] or old.get("data") != doc["data"]:
                    raise ConfigError(f"{files.root} holds an interrupted training with a different configuration "
                                      "or data; train into a new folder, or replace it with --overwrite.")
                log.info("resuming the interrupted training in %s", files.root)
            self.config_ = config
            self.data_ = data
            self.source_ = doc["source"]
            self.base_ = key_base(config, fingerprint=data.fingerprint, input_shape=data.input_shape,
                                  n_classes=data.n_classes)
            assignment = place(data, config)
            self.assignment_ = assignment
            self._index_shards()
            self.ledger_ = Ledger(files.ledger_path, key=self.key_file)
            self.ledger_.signing_key()  # a writer needs the key: fail (or create it) before training
            if not files.exists():
                durable_write_json(files.root / "assignment.json",
                                   {"shards": [[data.ids[s].tolist() for s in shard] for shard in assignment]})
                files.write_config({**doc, "ledger_id": self.ledger_.ledger_id})
            self._check_ledger_id()
            t0 = time.perf_counter()
            forgotten = np.zeros(len(data), dtype=bool)
            plans = [self._shard_plan(k, forgotten, None) for k in range(config.shards)]
            results = self.executor_.map(run_shard_job, [self._job(p) for p in plans], progress=self.progress_,
                                         description="train shards")
            shards = [self._shard_doc(p, res, None) for p, res in zip(plans, results)]
            seconds = time.perf_counter() - t0
            version = {"version": 1, "parent": None, "created_at": utc_now(), "requests": [], "forgotten": [],
                       "shards": shards, "ledger_head": list(self.ledger_.head()), "batch": None}
            files.publish(sign_version(version, self.ledger_))
            self.ledger_.record("trained", {"version": 1, "config": config.to_dict(),
                                            "data_fingerprint": data.fingerprint, "seconds": seconds,
                                            "checkpoints": [[s["key"] for s in sh["slices"]] for sh in shards]})
            self._gc(version)
        return self

    def _check_ledger_id(self) -> None:
        recorded = self.files_.read_config().get("ledger_id")
        if recorded != self.ledger_.ledger_id:
            raise LedgerError(f"The ledger {self.files_.ledger_path} is {self.ledger_.ledger_id}, but the store "
                              f"{self.files_.root} was created with {recorded}: the ledger was replaced (e.g. by "
                              "another store's). Restore the store's own ledger from a backup.")

    @classmethod
    def open(cls, store: str | os.PathLike[str], *, data: ArrayDataset | None = None,
             executor: str | Executor = "serial", executor_options: dict[str, Any] | None = None,
             progress: Progress | None = None, key_file: SigningKey | str | os.PathLike[str] | None = None,
             factories: Sequence[str] = ()) -> Sisa:
        """Open a trained store. ``data`` is needed only if the store does not record its source.

        ``factories``: model factories (``package.module:callable``) you trust; a factory
        named in the store's files and not listed here is refused before it is imported.
        """
        self = cls(None, store=store, executor=executor, executor_options=executor_options, progress=progress,
                   key_file=key_file, factories=factories)
        self._setup()
        files = self.files_
        doc = files.read_config()
        if doc.get("format") != STORE_FORMAT:
            raise ConfigError(f"{files.config_path} is not a SISA store (format {doc.get('format')!r}).")
        if files.current_version() is None:
            raise ConfigError(f"{files.root} has no trained model yet (its training was interrupted). "
                              "Run the same `sisa train` again to resume it.")
        self.config_ = SisaConfig.from_dict(doc["config"])
        self.source_ = doc.get("source")
        self._data_doc = doc["data"]
        self._data = data
        self.ledger_ = Ledger(files.ledger_path, key=key_file, create=False)
        self._check_ledger_id()
        return self

    @property
    def data_(self) -> ArrayDataset:
        """The training data (loaded from the recorded source on first use, then checked)."""
        data = self.__dict__.get("_data")
        if data is None:
            src = self.__dict__.get("source_")
            if not src:
                raise ConfigError(
                    f"The store {self.files_.root} does not record where its training data comes from (it was "
                    "trained through the API without a source). From Python, open it with the data: "
                    "Sisa.open(store, data=...); to use it from the command line, retrain it with "
                    "`obliviate sisa train --data FILE ...` or Sisa(...).fit(DataSource(...)), which record it.")
            data = DataSource.from_dict(src).load().train
        if data.fingerprint != self._data_doc["fingerprint"]:
            raise DataError(f"The training data given for {self.files_.root} is not the data it was trained on "
                            f"(fingerprint {data.fingerprint[:12]}... != {self._data_doc['fingerprint'][:12]}...).")
        self._data = data
        return data

    @data_.setter
    def data_(self, value: ArrayDataset) -> None:
        self._data = value
        self._data_doc = {"fingerprint": value.fingerprint}

    def _ensure_state(self) -> None:
        """Load what forgetting needs: data, assignment, key base."""
        if "assignment_" in self.__dict__:
            return
        self._check_model()
        data = self.data_
        raw = self.files_.read_json(self.files_.root / "assignment.json", "shard assignment")["shards"]
        self.assignment_ = [[data.positions(ids) if ids else np.zeros(0, dtype=np.int64) for ids in shard]
                            for shard in raw]
        self.base_ = key_base(self.config_, fingerprint=data.fingerprint, input_shape=data.input_shape,
                              n_classes=data.n_classes)
        self._index_shards()

    def _index_shards(self) -> None:
        self._shard_of_row = np.full(len(self.data_), -1, dtype=np.int64)
        for k, shard in enumerate(self.assignment_):
            for rows in shard:
                self._shard_of_row[rows] = k

    def assignment(self) -> list[list[list[str]]]:
        """The example ids of every shard's slices, as placed at training (forgotten ones included)."""
        self._ensure_state()
        return [[self.data_.ids[s].tolist() for s in shard] for shard in self.assignment_]

    def close(self) -> None:
        """Close the ledger and the executor."""
        if "ledger_" in self.__dict__:
            self.ledger_.close()
        if "executor_" in self.__dict__ and not isinstance(self.executor, Executor):
            self.executor_.close()

    def __enter__(self) -> Sisa:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ versions
    def current(self) -> dict[str, Any]:
        """The served model version's document."""
        version = self.files_.current_version()
        if version is None:
            raise ConfigError(f"{self.files_.root} has no trained model.")
        return self.files_.read_version(version)

    @property
    def version_(self) -> int:
        return int(self.current()["version"])

    # ------------------------------------------------------------------ jobs
    def _shard_plan(self, shard: int, forgotten: np.ndarray, previous: dict[str, Any] | None) -> _ShardPlan:
        """Live rows, slice keys and the first slice whose key changed (= where retraining starts)."""
        rows, prefix = live_rows(self.assignment_[shard], forgotten)
        keys = slice_keys(self.base_, shard, self.data_.ids[rows].tolist(), prefix)
        old = [] if previous is None else previous["slices"]
        start = 0
        while start < len(keys) and start < len(old) and keys[start] == old[start]["key"]:
            start += 1
        return _ShardPlan(shard, rows, prefix, keys, start, old[start - 1]["sha256"] if start > 0 else None)

    def _job(self, plan: _ShardPlan) -> ShardJob:
        data, cfg = self.data_, self.config_
        return ShardJob(shard=plan.shard, root=str(self.files_.root), model=cfg.model.to_dict(),
                        input_shape=tuple(data.input_shape), n_classes=data.n_classes, recipe=cfg.recipe.to_dict(),
                        epochs=cfg.epochs_per_slice, seed=cfg.seed, threads=cfg.threads,
                        x=data.x[plan.rows], y=data.y[plan.rows], ids=data.ids[plan.rows], prefix=plan.prefix,
                        keys=plan.keys, start=plan.start, start_sha256=plan.start_sha256)

    @staticmethod
    def _shard_doc(plan: _ShardPlan, res: ShardResult, previous: dict[str, Any] | None) -> dict[str, Any]:
        slices = [] if previous is None else [dict(s) for s in previous["slices"][: plan.start]]
        slices += [{"key": s["key"], "sha256": s["sha256"], "n": s["n"], "epochs": s["epochs"]} for s in res.slices]
        return {"n": plan.prefix[-1] if plan.prefix else 0, "slices": slices}

    def _gc(self, version: dict[str, Any]) -> None:
        """Delete checkpoints the served version does not use: they may hold forgotten data."""
        remove_unused(self.files_, version)

    # ------------------------------------------------------------------ prediction
    def _load_models(self) -> tuple[int, list[torch.nn.Module], np.ndarray]:
        for _ in range(3):  # a writer may switch versions and collect old checkpoints meanwhile
            cur = self.current()
            if self._models is not None and self._models[0] == cur["version"]:
                return self._models
            self._check_model()
            doc = self.files_.read_config()["data"]
            models, sizes = [], []
            try:
                for k, shard in enumerate(cur["shards"]):
                    if shard["n"] == 0 or not shard["slices"]:
                        continue  # every example of this shard was forgotten: no model
                    last = shard["slices"][-1]
                    model = build_model(self.config_.model, doc["input_shape"], doc["n_classes"],
                                        seed=derive_seed(self.config_.seed, k))
                    load_into(model, self.files_.load_checkpoint(last["key"], last["sha256"]),
                              source=f"shard {k} checkpoint")
                    models.append(model.eval())
                    sizes.append(shard["n"])
            except CheckpointError:
                if self.files_.current_version() != cur["version"]:
                    continue
                raise
            self._models = (cur["version"], models, np.asarray(sizes, dtype=np.float64))
            return self._models
        raise CheckpointError(f"The model in {self.files_.root} kept changing while it was being loaded; retry.")

    def shard_probabilities(self, x: np.ndarray | torch.Tensor, *,
                            batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Softmax outputs of every shard model that holds data, ``(K, n, C)``, and their sizes ``(K,)``."""
        _, models, sizes = self._load_models()
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
        probs = np.zeros((len(models), len(xt), int(self.files_.read_config()["data"]["n_classes"])))
        with torch.no_grad():
            for i, m in enumerate(models):
                for s in range(0, len(xt), batch_size):
                    probs[i, s : s + batch_size] = torch.softmax(m(xt[s : s + batch_size]).double(), dim=1).numpy()
        return probs, sizes

    def predict_proba(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Aggregated class scores (rows sum to 1) from the served model version."""
        probs, sizes = self.shard_probabilities(x)
        return AGGREGATORS.get(self.config_.aggregation)(probs, sizes)

    def predict(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)

    def score(self, data: ArrayDataset) -> float:
        """Accuracy on ``data``."""
        return float((self.predict(data.x) == data.y).mean()) if len(data) else float("nan")

    def shard_weights(self, shard: int) -> dict[str, torch.Tensor]:
        """Final (slice R) weights of one shard in the served version."""
        last = self.current()["shards"][shard]["slices"][-1]
        return self.files_.load_checkpoint(last["key"], last["sha256"])

    # ------------------------------------------------------------------ status
    def _known_key(self) -> VerifyKey | None:
        """The public key of the signing key file, if there is one (a reader never creates a key)."""
        if isinstance(self.key_file, SigningKey):
            return self.key_file.public
        path = Path(self.key_file).expanduser() if self.key_file is not None else default_key_path()
        return SigningKey.load(path).public if path.is_file() else None

    def _source_matches(self) -> bool | None:
        """Whether the recorded data source's files still hash to the recorded fingerprint (None: unknown)."""
        recorded = self.files_.read_config().get("source_fingerprint")
        if not self.source_ or not recorded:
            return None
        return DataSource.from_dict(self.source_).fingerprint() == recorded

    def status(self) -> dict[str, Any]:
        """The served version, shard sizes, requests by status, and any residue (checks the ledger first)."""
        cur = self.current()
        report = check_ledger(self.ledger_, cur, expected_key=self._known_key())
        counts: dict[str, int] = {}
        for r in self.ledger_.requests():
            counts[r.status] = counts.get(r.status, 0) + 1
        return {"store": str(self.files_.root), "model_version": cur["version"], "created_at": cur["created_at"],
                "config": self.config_.to_dict(), "source": self.source_, "source_matches": self._source_matches(),
                "shard_sizes": [s["n"] for s in cur["shards"]], "forgotten": len(cur["forgotten"]),
                "requests": counts, "pending": [r.request_id for r in self.ledger_.pending()],
                "residue": self.residue(), "ledger": {"ok": True, "events": report.n_events,
                                                      "key_fingerprint": report.key_fingerprint},
                "ideal_speedup": self.config_.ideal_speedup()}


__all__ = ["ForgetReceipt", "ErasureRequest", "STORE_FORMAT", "Sisa"]
