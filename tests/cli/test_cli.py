import json

import pytest
from typer.testing import CliRunner

from obliviate.cli.main import app

runner = CliRunner()


def test_methods_lists_every_registered_method():
    from obliviate.removal import METHODS

    res = runner.invoke(app, ["methods"])
    assert res.exit_code == 0
    for name in METHODS.names():
        assert name in res.output
    assert len(res.output.strip().splitlines()) == len(METHODS)


@pytest.mark.slow
def test_bench_writes_results_and_reports(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["bench", "--dataset", "digits", "--methods", "finetune,graddiff",
                              "--seeds", "2", "--out", str(out), "--no-progress", "--epochs", "5",
                              "--set", "graddiff.lr=1e-3"])
    assert res.exit_code == 0, res.output
    records = json.loads((out / "results.json").read_text())
    assert {(r["method"], r["seed"]) for r in records} == {
        (m, s) for m in ("original", "retrain", "finetune", "graddiff") for s in (0, 1)}
    required = {"method", "seed", "forget_acc", "retain_acc", "test_acc", "tow", "js_to_retrain",
                "mia_auc", "wall_s", "wall_ratio"}
    for r in records:
        assert required <= set(r)
        if r["method"] == "original":
            assert r["wall_s"] == 0
        if r["method"] == "retrain":
            assert r["tow"] == 1.0 and r["wall_ratio"] == 1.0 and r["js_to_retrain"] == 0.0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["recipe"]["epochs"] == 5 and cfg["method_config"]["graddiff"]["lr"] == 1e-3
    md = (out / "report.md").read_text()
    assert "| original |" in md and "±" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2
    assert "Report:" in res.output


def test_bench_from_config_file_with_flag_override(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("dataset: digits\nmethods: [finetune]\nseeds: 1\nrecipe:\n  epochs: 2\n"
                   f"out: {tmp_path / 'from_file'}\nprogress: false\n")
    res = runner.invoke(app, ["bench", "--config", str(cfg), "--out", str(tmp_path / "flag")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "flag" / "results.json").exists() and not (tmp_path / "from_file").exists()


@pytest.mark.parametrize("args,message", [
    (["--dataset", "digts"], "mean 'digits'"),
    (["--forget", "random:2"], "(0, 1)"),
    (["--forget", "class"], "KIND:ARGUMENT"),
    (["--methods", "gradiff"], "did you mean 'graddiff'"),
    (["--set", "kl.lrr=1"], "did you mean 'lr'"),
    (["--set", "nonsense"], "METHOD.PARAM=VALUE"),
    (["--dataset", "fashion-mnist", "--data-dir", "/nonexistent"], "Looked in"),
])
def test_bench_bad_input_gives_clean_error(args, message, tmp_path):
    res = runner.invoke(app, ["bench", "--no-progress", "--out", str(tmp_path), *args])
    assert res.exit_code == 2
    assert message in res.output
    assert "Traceback" not in res.output


def test_bad_config_key_names_nearest(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('dataset = "digits"\nmethod = ["kl"]\n[recipe]\nepoch = 3\n')
    res = runner.invoke(app, ["bench", "--config", str(cfg)])
    assert res.exit_code == 2
    assert "did you mean 'methods'" in res.output and "did you mean 'epochs'" in res.output


def test_forget_set_errors_surface_cleanly(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("train-0 nope-1\n")
    res = runner.invoke(app, ["bench", "--no-progress", "--forget", f"ids:{ids}", "--methods", "finetune",
                              "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "nope-1" in res.output


def test_method_for_another_task_says_where_it_works(tmp_path):
    res = runner.invoke(app, ["bench", "--dataset", "digits", "--methods", "npo,graddif", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "method 'npo' does not work on classification tasks" in res.output and "--task persons" in res.output
    assert "did you mean 'graddiff'" in res.output


def test_out_is_checked_before_any_work(tmp_path, monkeypatch):
    """--out that is a file, unwritable, or holds a run is refused at once (nothing is trained)."""
    import obliviate.bench.runner as runner_module

    def must_not_run(*args, **kwargs):
        raise AssertionError("the run started although --out was unusable")

    monkeypatch.setattr(runner_module, "run_bench", must_not_run)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    res = runner.invoke(app, ["bench", "--methods", "finetune", "--out", str(a_file), "--no-progress"])
    assert res.exit_code == 2 and "is a file, not a folder" in res.output
    done = tmp_path / "done"
    done.mkdir()
    (done / "results.json").write_text("[]")
    res = runner.invoke(app, ["bench", "--methods", "finetune", "--out", str(done), "--no-progress"])
    assert res.exit_code == 2 and "--overwrite" in res.output and (done / "results.json").read_text() == "[]"
    res = runner.invoke(app, ["bench", "--methods", "finetune", "--out", str(a_file / "run"), "--no-progress"])
    assert res.exit_code == 2 and "cannot be written" in res.output


def test_progress_outside_a_terminal_is_one_line_per_task(tmp_path):
    res = runner.invoke(app, ["bench", "--methods", "finetune", "--out", str(tmp_path / "run"), "--threads", "1"])
    assert res.exit_code == 0, res.output
    lines = res.stderr.splitlines()
    assert lines and all(line.strip() for line in lines), "no blank lines on a pipe"
    assert any(line.startswith("finetune") and "done in" in line for line in lines)


def test_help_has_no_bool_metavars():
    res = runner.invoke(app, ["bench", "--help"])
    assert res.exit_code == 0 and "<bool>" not in res.output and "--overwrite" in res.output
