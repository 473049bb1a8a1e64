import json

import pytest
from typer.testing import CliRunner

from obliviate.cli.main import app

runner = CliRunner()
TINY_FORGING = ["--set", "forging.candidates=10", "--set", "forging.n_train=96", "--set", "forging.epochs=1"]


def test_list_names_every_experiment():
    from obliviate.lab import EXPERIMENTS

    res = runner.invoke(app, ["mismatches", "list"])
    assert res.exit_code == 0, res.output
    assert len(res.output.strip().splitlines()) == len(EXPERIMENTS)
    for name in EXPERIMENTS.names():
        assert name in res.output


def test_one_experiment_writes_json_and_figure(tmp_path):
    res = runner.invoke(app, ["mismatches", "forging", "--out", str(tmp_path), "--quick", *TINY_FORGING])
    assert res.exit_code == 0, res.output
    rec = json.loads((tmp_path / "forging.json").read_text())
    assert rec["figure"] == "forging.png" and (tmp_path / "forging.png").read_bytes()[:4] == b"\x89PNG"
    assert rec["config"]["candidates"] == 10 and rec["claim"] in res.output
    assert rec["measured"]["least_squares"]["on_line_coef_change"] < 1e-9


@pytest.mark.parametrize("args,message", [
    (["mismatches", "forgign"], "Did you mean 'forging'"),
    (["mismatches", "run", "m6"], "Unknown experiment 'm6'"),
    (["mismatches", "forging", "--set", "forging.sedes=2"], "did you mean 'seeds'"),
    (["mismatches", "forging", "--set", "m2.shots=2"], "does not run"),
    (["mismatches", "all", "--set", "forgin.seeds=2"], "Did you mean 'forging'"),
])
def test_mistakes_exit_2_with_the_nearest_name(args, message, tmp_path):
    res = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not any(tmp_path.iterdir())  # nothing ran


@pytest.mark.slow
def test_all_writes_one_page_and_one_json(tmp_path):
    from obliviate.lab import EXPERIMENTS

    res = runner.invoke(app, ["mismatches", "all", "--out", str(tmp_path), "--quick", *TINY_FORGING])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "mismatches.json").read_text())
    assert set(summary) == set(EXPERIMENTS.names())
    page = (tmp_path / "index.html").read_text()
    for name, entry in summary.items():
        assert {"claim", "measured", "figure", "seconds"} <= set(entry)
        assert (tmp_path / entry["figure"]).is_file() and (tmp_path / f"{name}.json").is_file()
        assert f'src="{entry["figure"]}"' in page
    assert page.count("max-width:100%") >= len(summary)
