import sys
import textwrap

import pytest
import torch

from obliviate.errors import ConfigError, UnknownNameError
from obliviate.models import ModelSpec, build_model


@pytest.mark.parametrize("name,shape", [("mlp", (1, 8, 8)), ("cnn", (1, 8, 8)), ("cnn", (1, 40)), ("mlp", (5,))])
def test_builtin_models_map_batches_to_logits(name, shape):
    m = build_model(ModelSpec(name), shape, 7, seed=0)
    assert m(torch.zeros(4, *shape)).shape == (4, 7)


def test_same_seed_same_init_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model(ModelSpec("mlp"), (4,), 3, seed=5)
    after = torch.rand(1)
    b = build_model(ModelSpec("mlp"), (4,), 3, seed=5)
    c = build_model(ModelSpec("mlp"), (4,), 3, seed=6)
    assert torch.equal(before, after)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
    assert not torch.equal(a.classifier.weight, c.classifier.weight)


def test_bad_model_option_names_nearest():
    with pytest.raises(ConfigError, match="hidden"):
        build_model(ModelSpec("mlp", {"hiden": [4]}), (4,), 3, seed=0)


def test_cnn_rejects_flat_inputs():
    with pytest.raises(ConfigError, match="mlp"):
        build_model(ModelSpec("cnn"), (10,), 3, seed=0)


def test_unknown_model():
    with pytest.raises(UnknownNameError, match="mlp"):
        build_model(ModelSpec("mpl"), (4,), 3, seed=0)


def test_user_factory_by_import_path(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(textwrap.dedent("""
        from torch import nn
        def tiny(input_shape, n_classes, width=3):
            return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], width), nn.ReLU(), nn.Linear(width, n_classes))
        not_callable = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    m = build_model(ModelSpec("my_models:tiny", {"width": 5}), (4,), 2, seed=0)
    assert m(torch.zeros(3, 4)).shape == (3, 2)
    with pytest.raises(ConfigError, match="not_callable"):
        build_model(ModelSpec("my_models:not_callable"), (4,), 2, seed=0)
    with pytest.raises(ConfigError, match="Cannot import"):
        build_model(ModelSpec("no_such_module_xyz:f"), (4,), 2, seed=0)
    sys.modules.pop("my_models", None)
