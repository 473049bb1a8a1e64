import json
import math

import pytest

from obliviate.errors import ConfigError, UnknownNameError
from obliviate.lab import EXPERIMENTS, ExperimentResult
from obliviate.lab.render import write_all, write_result


def _result(**kw):
    base = {"name": "toy", "claim": "The toy measured 0.25.", "measured": {"x": 0.25, "group": {"y": 1.0}},
            "figure": b"\x89PNG fake", "kind": {"retrain": "exact", "graddiff": "approximate"}, "seconds": 0.1}
    return ExperimentResult(**{**base, **kw})


def test_the_built_in_experiments_are_registered():
    assert {"forging", "m2", "m5"} <= set(EXPERIMENTS.names())


@pytest.mark.parametrize("name", ["forging", "m2", "m5"])
def test_every_experiment_has_working_defaults_and_a_quick_size(name):
    exp = EXPERIMENTS.get(name)
    full, quick = exp.config(), exp.config(quick=True)
    assert full != quick and exp.title and exp.mismatch


def test_unknown_experiment_gets_the_nearest_name():
    with pytest.raises(UnknownNameError, match="Did you mean 'forging'"):
        EXPERIMENTS.get("forgign")


def test_config_typos_and_bad_values_are_typed_errors():
    with pytest.raises(ConfigError, match="did you mean 'seeds'"):
        EXPERIMENTS.get("forging").config({"sedes": 3})
    with pytest.raises(ConfigError, match="candidates must be >= 1") as err:
        EXPERIMENTS.get("forging").config({"candidates": 0, "seeds": 1})
    assert err.value.problems == ["candidates must be >= 1; got 0.", "seeds must be >= 2 to give a spread; got 1."]
    with pytest.raises(ConfigError, match="language models only"):
        EXPERIMENTS.get("m5").config({"methods": ["npo"]})
    with pytest.raises(ConfigError, match="did you mean 'graddiff'"):
        EXPERIMENTS.get("m5").config({"methods": ["retrain", "gradiff"]})


@pytest.mark.parametrize("bad,match", [
    ({"kind": {"retrain": "exactly"}}, "kind"),
    ({"measured": {"x": "high"}}, "not a number"),
    ({"measured": {"g": {"x": [1, 2]}}}, "non-numbers"),
    ({"claim": "  "}, "claim is empty"),
    ({"rows": [{"method": "kl"}]}, "rows"),
])
def test_results_say_what_kind_and_hold_numbers(bad, match):
    with pytest.raises(ConfigError, match=match):
        _result(**bad)


def test_non_finite_numbers_become_null_in_json():
    d = _result(measured={"x": math.nan, "g": {"y": math.inf}}).to_dict()
    assert d["measured"] == {"x": None, "g": {"y": None}}
    json.dumps(d, allow_nan=False)


def test_write_result_and_page(tmp_path):
    paths = write_result(_result(), tmp_path / "one")
    rec = json.loads(paths["json"].read_text())
    assert rec["figure"] == "toy.png" and (tmp_path / "one" / "toy.png").read_bytes() == b"\x89PNG fake"
    assert rec["claim"] == "The toy measured 0.25." and "load_average" in rec["machine"]
    out = write_all([_result(), _result(name="other", claim="Other <b>0.5</b>.")], tmp_path / "all",
                    titles={"toy": "A toy"})
    summary = json.loads(out["json"].read_text())
    assert set(summary) == {"toy", "other"}
    for name, entry in summary.items():
        assert {"claim", "measured", "figure", "seconds"} <= set(entry)
        assert (tmp_path / "all" / entry["figure"]).is_file()
    page = out["html"].read_text()
    assert page.count('style="max-width:100%"') == 2 and 'src="toy.png"' in page
    assert "Other &lt;b&gt;0.5&lt;/b&gt;." in page  # claims are escaped, not injected
    assert "exact" in page and "approximate" in page and "A toy" in page
