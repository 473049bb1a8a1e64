"""Executors: serial, process pool and Ray give the same results (and the same SISA bits)."""

import operator
import sys

import pytest

from obliviate.engine.executor import EXECUTORS, ProcessExecutor, SerialExecutor, make_executor
from obliviate.engine.sisa import Sisa, SisaConfig
from obliviate.errors import ConfigError, UnknownNameError
from obliviate.models import ModelSpec
from obliviate.progress import Progress, ProgressTask
from obliviate.training import Recipe

CONFIG = SisaConfig(shards=2, slices=2, model=ModelSpec("mlp", {"hidden": [16]}),
                    recipe=Recipe(epochs=3, batch_size=64, lr=1e-2), seed=3)


class CountingProgress(Progress):
    def __init__(self):
        self.ticks = 0

    def task(self, description, total=None):
        import contextlib

        outer = self

        class T(ProgressTask):
            def advance(self, n=1, **info):
                outer.ticks += n

        return contextlib.nullcontext(T())


@pytest.fixture(scope="module")
def serial_store(digits, tmp_path_factory):
    root = tmp_path_factory.mktemp("serial") / "store"
    with Sisa(CONFIG, store=root).fit(digits.train, source={"dataset": "digits"}) as s:
        s.forget(["train-3", "train-17", "train-40"])
        return root, s.current()


def _same_bits(doc_a, doc_b):
    return [[(s["key"], s["sha256"]) for s in sh["slices"]] for sh in doc_a["shards"]] == \
           [[(s["key"], s["sha256"]) for s in sh["slices"]] for sh in doc_b["shards"]]


def test_registry_and_errors():
    assert EXECUTORS.names() == ["process", "ray", "serial"]
    with pytest.raises(UnknownNameError, match="Did you mean 'serial'"):
        make_executor("serail")
    with pytest.raises(ConfigError, match="max_workers"):
        make_executor("process", max_workers=0)
    with pytest.raises(ConfigError, match="Bad options"):
        make_executor("serial", workers=2)
    ex = SerialExecutor()
    assert make_executor(ex) is ex


def test_serial_map_keeps_order_and_reports_progress():
    progress = CountingProgress()
    assert SerialExecutor().map(operator.neg, [3, 1, 2], progress=progress) == [-3, -1, -2]
    assert progress.ticks == 3


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"pip install obliviate\[ray\]"):
        make_executor("ray")


@pytest.mark.slow
def test_process_pool_trains_the_same_bits(serial_store, digits, tmp_path):
    _, expected = serial_store
    with ProcessExecutor(max_workers=2) as ex:
        assert ex.map(operator.neg, range(5)) == [0, -1, -2, -3, -4]
        with Sisa(CONFIG, store=tmp_path / "p", executor=ex).fit(digits.train) as s:
            s.forget(["train-3", "train-17", "train-40"])
            assert _same_bits(s.current(), expected)


# ---------------------------------------------------------------- Ray: the session's local instance (conftest)
@pytest.mark.slow
def test_ray_map_keeps_order(ray_cluster):
    with make_executor("ray") as ex:
        assert ex.map(operator.neg, [5, 6, 7]) == [-5, -6, -7]
    assert ray_cluster.is_initialized()  # an executor never shuts down a Ray it did not start


@pytest.mark.slow
def test_ray_retrains_the_same_bits(ray_cluster, serial_store, tmp_path, digits):
    _, expected = serial_store
    with Sisa(CONFIG, store=tmp_path / "ray", executor="ray").fit(digits.train) as s:
        s.forget(["train-3", "train-17", "train-40"])
        assert _same_bits(s.current(), expected)
