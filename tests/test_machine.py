"""obliviate.machine: machine info and load, the one copy the benchmarks use."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from obliviate import machine
from obliviate.errors import ConfigError

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_machine_info_describes_this_machine():
    import platform

    import torch

    info = machine.machine_info()
    assert set(info) == {"cpu", "cores", "torch_threads", "torch", "python", "platform", "load_average", "loaded"}
    assert isinstance(info["cpu"], str) and info["cpu"]
    assert info["cores"] == os.cpu_count() and info["torch_threads"] == torch.get_num_threads()
    assert info["torch"] == torch.__version__ and info["python"] == platform.python_version()


def test_cpu_model_reads_proc_cpuinfo(monkeypatch, tmp_path):
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t: fpu\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda p, *a, **k: real_open(fake if p == "/proc/cpuinfo" else p, *a, **k))
    assert machine.cpu_model() == "Test CPU 9000"


def test_load_average_and_loaded(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (3.0, 2.0, 1.0))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert machine.load_average() == (3.0, 2.0, 1.0)
    assert machine.format_load(machine.load_average()) == "3.00 / 2.00 / 1.00"
    assert machine.loaded() is True            # 3.0 > 2 cores
    assert machine.loaded(cores=4) is False
    assert machine.loaded(cores=3) is False    # exceeds, not equals
    monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 2.0, 1.0))
    assert machine.loaded() is False and machine.loaded(cores=1) is True
    with pytest.raises(ConfigError, match="'cores'"):
        machine.loaded(cores=0)


def test_no_load_average_is_none_and_not_loaded(monkeypatch):
    def unavailable():
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", unavailable)
    assert machine.load_average() is None and machine.loaded() is False
    assert machine.format_load(None) == "n/a"
    monkeypatch.delattr(os, "getloadavg")     # Windows has no os.getloadavg at all
    assert machine.load_average() is None and machine.loaded(cores=1) is False


@pytest.mark.parametrize("path", sorted(BENCHMARKS.glob("*.py")), ids=lambda p: p.name)
def test_benchmarks_use_the_shared_readers(path):
    text = path.read_text()
    own = [pat for pat in (r"gzip\.open", r"struct\.unpack", r"/proc/cpuinfo", r"/proc/loadavg", r"os\.getloadavg",
                           r"platform\.processor") if re.search(pat, text)]
    assert own == [], f"{path.name} re-implements {own}: use obliviate.data.idx / obliviate.machine"
    if "idx3-ubyte" in text:
        assert "from obliviate.data.idx import read_idx" in text
    if re.search(r"load average|machine", text):
        assert "from obliviate.machine import" in text or "result.meta['machine']" in text
