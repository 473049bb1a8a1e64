"""TOML config files parse on every supported Python: ``tomllib`` from 3.11, ``tomli`` on 3.10.

(`obliviate bench --config FILE` reads its file through this loader.)
"""

from __future__ import annotations

import sys
import types

import pytest

from obliviate import config
from obliviate.errors import ConfigError

TOML = 'task = "persons"\nseeds = 2\n\n[recipe]\nepochs = 3\nlr = 1e-3\nmethods = ["graddiff", "npo"]\n'
EXPECTED = {"task": "persons", "seeds": 2, "recipe": {"epochs": 3, "lr": 1e-3, "methods": ["graddiff", "npo"]}}


def test_toml_config_file_parses(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(TOML)
    assert config.load_config_file(path) == EXPECTED
    (tmp_path / "bad.toml").write_text("task = \n")
    with pytest.raises(ConfigError, match="Could not parse config file"):
        config.load_config_file(tmp_path / "bad.toml")


def test_python_310_falls_back_to_tomli(tmp_path, monkeypatch):
    real = config._toml()  # the stand-in for the backport (tomli has tomllib's API)
    fake = types.ModuleType("tomli")
    calls = []
    fake.loads = lambda text: calls.append(text) or real.loads(text)
    monkeypatch.setitem(sys.modules, "tomli", fake)
    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    path = tmp_path / "run.toml"
    path.write_text(TOML)
    assert config.load_config_file(path) == EXPECTED
    assert calls == [TOML]


def test_python_310_without_tomli_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tomli", None)  # import tomli raises ImportError
    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    path = tmp_path / "run.toml"
    path.write_text(TOML)
    with pytest.raises(ConfigError, match="pip install tomli"):
        config.load_config_file(path)


def test_pyproject_declares_tomli_for_python_310():
    from pathlib import Path

    meta = config._toml().loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert meta["requires-python"] == ">=3.10"
    deps = [d.replace(" ", "").replace('"', "'") for d in meta["dependencies"]]
    assert any(d.startswith("tomli") and "python_version<'3.11'" in d for d in deps), deps
