"""A store names its model factory in store.json: a name taken from a file must not choose code to import."""

import json
import shutil
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from obliviate.cli.main import app
from obliviate.engine.sisa import Sisa, SisaConfig
from obliviate.models import ModelSpec
from obliviate.models.zoo import UntrustedFactoryError, check_factory_allowed
from obliviate.training import Recipe

CONFIG = SisaConfig(shards=2, slices=1, model=ModelSpec("mlp", {"hidden": [16]}),
                    recipe=Recipe(epochs=1, batch_size=128, lr=1e-2), seed=0)


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    root = tmp_path_factory.mktemp("factory") / "store"
    Sisa(CONFIG, store=root).fit(digits.train, source={"dataset": "digits"}).close()
    return root


@pytest.fixture
def marker_module(tmp_path, monkeypatch):
    """A module that writes a marker file when it is imported, and a factory that builds an MLP."""
    pkg = tmp_path / "mods"
    pkg.mkdir()
    marker = tmp_path / "imported.marker"
    (pkg / "evil_factory.py").write_text(textwrap.dedent(f"""
        import pathlib
        pathlib.Path({str(marker)!r}).write_text("imported")
        from obliviate.models.zoo import MLP

        def build(input_shape, n_classes, **options):
            return MLP(input_shape, n_classes, **options)
    """))
    monkeypatch.syspath_prepend(str(pkg))
    yield "evil_factory:build", marker
    sys.modules.pop("evil_factory", None)


def _point_store_at(root, name):
    doc = json.loads((root / "store.json").read_text())
    doc["config"]["model"]["name"] = name
    (root / "store.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("name", ["os:system", "marker"])
def test_a_factory_named_in_store_json_is_refused_before_import(trained, tmp_path, marker_module, digits, name):
    factory, marker = marker_module
    name = factory if name == "marker" else name
    root = tmp_path / "store"
    shutil.copytree(trained, root)
    _point_store_at(root, name)
    with Sisa.open(root) as s:
        with pytest.raises(UntrustedFactoryError, match="not on the allow-list; nothing was imported"):
            s.predict(digits.test.x[:3])
        with pytest.raises(UntrustedFactoryError, match="--model-factory"):
            s.forget(["train-3"])
        assert s.ledger_.requests() == []  # refused before anything was recorded
    res = CliRunner().invoke(app, ["sisa", "predict", "--store", str(root)])
    assert res.exit_code == 2 and "not on the allow-list" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["sisa", "forget", "--store", str(root), "--ids", "3", "--no-progress"])
    assert res.exit_code == 2 and "not on the allow-list" in res.output
    assert not marker.exists() and "evil_factory" not in sys.modules


def test_a_factory_the_caller_names_is_used(trained, tmp_path, marker_module, digits):
    factory, marker = marker_module
    root = tmp_path / "store"
    shutil.copytree(trained, root)
    _point_store_at(root, factory)
    with Sisa.open(root, factories=[factory]) as s:
        assert s.predict(digits.test.x[:3]).shape == (3,)
    assert marker.exists()  # the allow-list, and nothing else, stood between the file and the import


def test_check_factory_allowed():
    check_factory_allowed("mlp")
    check_factory_allowed("pkg.mod:f", ["pkg.mod:f"])
    with pytest.raises(UntrustedFactoryError, match="not a registered model"):
        check_factory_allowed("resnet9000")
    with pytest.raises(UntrustedFactoryError, match="non-empty string"):
        check_factory_allowed(None)  # type: ignore[arg-type]
