import json

from typer.testing import CliRunner

from obliviate.cli.main import app

runner = CliRunner()


def test_guards_lists_every_guard():
    from obliviate.suppression import GUARDS

    res = runner.invoke(app, ["guards", "-v"])
    assert res.exit_code == 0, res.output
    for name in GUARDS.names():
        assert name in res.output
    assert "defaults:" in res.output


def test_guard_eval_tiny(tmp_path):
    out = tmp_path / "g"
    res = runner.invoke(app, ["guard", "eval", "--task", "persons", "--people", "8", "--no-model", "--no-encoder",
                              "--families", "direct,base64,split", "--pipelines", "exact_raw,exact,fuzzy",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "guard_results.json").read_text())
    assert data["kind"] == "suppression"
    rows = data["rows"]
    need = {"guard", "family", "n", "leak_off", "leak_on", "over_refusal", "p50_ms", "p95_ms",
            "p95_ms_per_1k_chars", "kind"}
    assert all(need <= set(r) and r["kind"] == "suppression" for r in rows)
    cell = {(r["guard"], r["family"]): r for r in rows}
    assert cell[("exact", "base64")]["leak_on"] == 0.0 and cell[("exact_raw", "base64")]["leak_on"] == 1.0
    assert cell[("exact", "split")]["leak_on"] == 1.0  # decomposition gets through, and is reported
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "max-width:100%" in html
    assert "suppression" in (out / "report.md").read_text()


def test_guard_eval_reports_bad_names():
    res = runner.invoke(app, ["guard", "eval", "--families", "direkt", "--pipelines", "exakt", "--no-model"])
    assert res.exit_code == 2
    assert "did you mean 'direct'" in res.output and "did you mean 'exact'" in res.output


def test_guard_eval_tofu_tiny(tmp_path):
    import pytest

    from obliviate.data.tofu import tofu_search_paths

    if not any((p / "forget01_perturbed.json").is_file() for p in tofu_search_paths()):
        pytest.skip("TOFU files not found")
    out = tmp_path / "t"
    res = runner.invoke(app, ["guard", "eval", "--task", "tofu", "--no-encoder", "--families", "direct,reversed",
                              "--pipelines", "exact_raw,exact", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads((out / "guard_results.json").read_text())["rows"]
    cell = {(r["guard"], r["family"]): r for r in rows}
    assert {r["generator"] for r in rows} == {"adversarial"}  # no model is trained on TOFU here
    assert cell[("exact", "reversed")]["leak_on"] < cell[("exact_raw", "reversed")]["leak_on"]
