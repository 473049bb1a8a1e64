"""``obliviate audit``: strong attacks on a tiny digits bench run, its files, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from obliviate.cli.main import app

runner = CliRunner()
REPLICAS = 8


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A digits run (small MLP, finetune and graddiff) audited with 8 replicas per side."""
    root = tmp_path_factory.mktemp("strong")
    run = root / "run"
    cfg = root / "run.yaml"
    # module-scoped, so it runs before the per-test cache isolation: name a cache of its own
    cfg.write_text("dataset: digits\nmodel: mlp\nmodel_options: {hidden: [64]}\nmethods: [finetune, graddiff]\n"
                   f"seeds: 1\nthreads: 1\nprogress: false\nout: {run}\ncache_dir: {root / 'cache'}\n")
    res = runner.invoke(app, ["bench", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    md_before = (run / "report.md").read_text()
    html_before = (run / "report.html").read_text()
    res = runner.invoke(app, ["audit", "--run", str(run), "--attacks", "population,lira,ulira,challenge,relearn",
                              "--replicas", str(REPLICAS), "--threads", "1", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert (root / "cache" / "audit-replicas").is_dir()
    return {"run": run, "output": res.output, "audit": json.loads((run / "audit.json").read_text()),
            "md_before": md_before, "html_before": html_before}


@pytest.mark.slow
def test_audit_json_has_every_method_and_attack(audited):
    a = audited["audit"]
    assert a["replicas"] == REPLICAS and a["seed"] == 0
    assert a["attacks"] == ["population", "lira", "ulira", "challenge", "relearn"]
    assert list(a["methods"]) == ["original", "retrain", "finetune", "graddiff"]
    n_forget = a["data"]["n_forget"]
    assert n_forget == 144 and len(a["forget_ids"]) == n_forget
    results = json.loads((audited["run"] / "results.json").read_text())
    for name, m in a["methods"].items():
        run_row = next(r for r in results if r["method"] == name)
        assert m["population"]["mia_auc"] == pytest.approx(run_row["mia_auc"])  # the weak attack, from the run
        for kind in ("online", "offline"):
            lira = m["lira"][kind]
            assert 0.0 <= lira["auc"] <= 1.0 and 0.0 <= lira["tpr_at_0_1pct"] <= lira["tpr_at_1pct"] <= 1.0
            assert lira["n_members"] == lira["n_nonmembers"] == REPLICAS * n_forget
            assert lira["fpr"][0] == 0.0 and lira["fpr"][-1] == 1.0 and len(lira["fpr"]) == len(lira["tpr"])
        assert len(m["ulira"]["per_example_accuracy"]) == n_forget
        assert m["ulira"]["n_unlearned"] == m["ulira"]["n_retrained"] == REPLICAS
        ch = m["challenge"]
        assert 0.0 <= ch["F"] <= 1.0 and len(ch["epsilons"]) == n_forget
        assert ch["final_score"] == pytest.approx(ch["F"] * ch["ra"] / ch["ra_retrain"] * ch["ta"] / ch["ta_retrain"])
        assert set(m["relearn"]) >= {"gain", "control_gain", "excess_recovery", "after_gap", "after_gap_ci"}
        assert isinstance(m["verdict"]["weak_passes"], bool)
        assert m["verdict"]["flagged"] == (m["verdict"]["weak_passes"] and bool(m["verdict"]["caught_by"]))
    assert len(a["flags"]) == 4 and all(isinstance(s, str) and s for s in a["flags"])
    assert a["timing"]["train_trained"]["chunks"] == 1


@pytest.mark.slow
def test_retrain_oracle_looks_like_chance_and_no_worse_than_original(audited):
    m = audited["audit"]["methods"]
    retrain, original = m["retrain"], m["original"]
    assert abs(retrain["ulira"]["mean_accuracy"] - 0.5) < 0.08
    assert retrain["ulira"]["mean_accuracy"] <= original["ulira"]["mean_accuracy"]
    assert abs(retrain["lira"]["online"]["auc"] - 0.5) < 0.08
    assert original["lira"]["online"]["auc"] > retrain["lira"]["online"]["auc"]
    # the original memorised its forget set: the per-example attacks see it
    assert original["ulira"]["mean_accuracy"] > 0.55
    assert "ulira" in original["verdict"]["caught_by"]
    assert "retrain" not in [f.split(":")[0] for f in audited["audit"]["flags"] if "caught by" in f
                             and "passes it" in f]


@pytest.mark.slow
def test_reports_gain_the_section_once(audited):
    run = audited["run"]
    md = (run / "report.md").read_text()
    assert md.startswith(audited["md_before"].rstrip("\n"))  # the bench's report is kept as it was
    assert md.count("## Strong audit") == 1 and "| graddiff |" in md.split("## Strong audit")[1]
    assert "Thresholds:" in md and "within 0.05 of retrain's" in md
    page = (run / "report.html").read_text()
    assert page.count("<h2>Strong audit</h2>") == 1
    assert page.count("data:image/png;base64,") == audited["html_before"].count("data:image/png;base64,") + 2
    assert "Weak against strong attacks" in audited["output"] and "audit.json" in audited["output"]
    # a second audit reuses the cached replicas and replaces the section instead of adding one
    res = runner.invoke(app, ["audit", "--run", str(run), "--replicas", str(REPLICAS), "--threads", "1",
                              "--no-progress"])
    assert res.exit_code == 0, res.output
    again = json.loads((run / "audit.json").read_text())
    for group in ("trained", "retrained", "oracle"):
        t = again["timing"][f"train_{group}"]
        assert t["cached_chunks"] == t["chunks"] == 1
    assert again["methods"]["graddiff"]["ulira"] == audited["audit"]["methods"]["graddiff"]["ulira"]
    assert (run / "report.md").read_text().count("## Strong audit") == 1
    assert (run / "report.html").read_text().count("<h2>Strong audit</h2>") == 1


@pytest.mark.slow
def test_methods_filter_and_progress(audited):
    from obliviate.bench.audit import AuditSettings, run_audit
    from obliviate.progress import Progress

    class Recording(Progress):
        def __init__(self) -> None:
            self.tasks: list[str] = []

        def task(self, description, total=None):
            self.tasks.append(description)
            return super().task(description, total)

    rec = Recording()
    out = run_audit(audited["run"], AuditSettings(replicas=REPLICAS, methods=("graddiff",), threads=1), progress=rec)
    assert list(out["methods"]) == ["original", "retrain", "graddiff"]
    assert {"replicas: trained (8, cached)", "unlearn: graddiff (8, cached)", "attacks"} <= set(rec.tasks)
    assert not any("finetune" in t for t in rec.tasks)
    weak_only = run_audit(audited["run"], AuditSettings(attacks=("population",), replicas=0))
    assert weak_only["replicas"] == 0 and "lira" not in weak_only["methods"]["graddiff"]
    assert weak_only["methods"]["graddiff"]["verdict"]["caught_by"] == []


def _not_classifier(tmp_path: Path) -> Path:
    run = tmp_path / "lm-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"task": "persons", "methods": ["npo"]}))
    (run / "results.json").write_text(json.dumps([{"method": "npo", "seed": 0}]))
    return run


@pytest.mark.parametrize("args,message", [
    (["--run", "{missing}"], "no such directory"),
    (["--run", "{empty}"], "results.json missing"),
    (["--run", "{lm}"], "works on classifier runs"),
    (["--run", "{empty}", "--attacks", "lira,ulria"], "did you mean 'ulira'"),
    (["--run", "{empty}", "--attacks", "popluation"], "did you mean 'population'"),
    (["--run", "{empty}", "--replicas", "1"], "--replicas 1"),
])
def test_bad_input_gives_clean_error(args, message, tmp_path):
    (tmp_path / "empty").mkdir()
    paths = {"missing": str(tmp_path / "nope"), "empty": str(tmp_path / "empty"), "lm": str(_not_classifier(tmp_path))}
    res = runner.invoke(app, ["audit", "--no-progress", *[a.format(**paths) for a in args]])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


@pytest.mark.slow
def test_unknown_method_and_seed_name_the_valid_ones(audited):
    res = runner.invoke(app, ["audit", "--run", str(audited["run"]), "--methods", "gradiff", "--no-progress"])
    assert res.exit_code == 2 and "did you mean 'graddiff'" in res.output
    res = runner.invoke(app, ["audit", "--run", str(audited["run"]), "--seed", "3", "--no-progress"])
    assert res.exit_code == 2 and "seeds [0]" in res.output


def test_typed_errors_from_the_api(tmp_path):
    from obliviate.bench.audit import AuditSettings, load_run, parse_attacks, run_audit
    from obliviate.errors import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'challenge'"):
        parse_attacks("chalenge")
    with pytest.raises(ConfigError, match="no such directory"):
        load_run(tmp_path / "missing")
    with pytest.raises(ConfigError, match="need at least 4 models"):
        run_audit(tmp_path, AuditSettings(attacks=("ulira",), replicas=2))


def test_a_bench_rerun_retires_the_audit_of_earlier_results(tmp_path):
    """An audit.json is kept only while it describes the results.json beside it."""
    import hashlib

    from obliviate.report.classifier import _retire_stale_audit

    results = b'[{"method": "original"}]'
    sha = hashlib.sha256(results).hexdigest()
    (tmp_path / "audit.json").write_text(json.dumps({"results_sha256": sha}))
    _retire_stale_audit(tmp_path, sha)
    assert (tmp_path / "audit.json").is_file() and not (tmp_path / "audit.superseded.json").exists()
    _retire_stale_audit(tmp_path, hashlib.sha256(b"[]").hexdigest())
    assert not (tmp_path / "audit.json").exists()
    assert json.loads((tmp_path / "audit.superseded.json").read_text())["results_sha256"] == sha
    (tmp_path / "audit.json").write_text("{not json")
    _retire_stale_audit(tmp_path, sha)
    assert not (tmp_path / "audit.json").exists()
    assert (tmp_path / "audit.superseded.json").read_text() == "{not json"


def _with_fingerprint(run: Path, value: str | None = None) -> None:
    """What the bench runner records (meta["data_fingerprint"]); older runs lack it."""
    from obliviate.data import load_dataset

    meta = json.loads((run / "meta.json").read_text())
    meta["data_fingerprint"] = value or load_dataset("digits").train.fingerprint
    (run / "meta.json").write_text(json.dumps(meta))


@pytest.mark.slow
def test_a_moved_run_audits_from_any_folder_and_refuses_changed_data(audited, tmp_path, monkeypatch):
    import shutil

    moved = tmp_path / "moved" / "run"
    shutil.copytree(audited["run"], moved)
    _with_fingerprint(moved)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    args = ["audit", "--run", str(moved), "--attacks", "lira", "--replicas", str(REPLICAS), "--threads", "1",
            "--no-progress"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    again = json.loads((moved / "audit.json").read_text())
    assert again["methods"]["graddiff"]["lira"] == audited["audit"]["methods"]["graddiff"]["lira"]
    _with_fingerprint(moved, "0" * 64)  # the data changed since the run
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "data changed since the run" in res.output, res.output
    assert "Traceback" not in res.output
    # an older run records no fingerprint: the forget-set size is still checked
    meta = json.loads((moved / "meta.json").read_text())
    del meta["data_fingerprint"]
    meta["seeds"]["0"]["n_forget"] = 7
    (moved / "meta.json").write_text(json.dumps(meta))
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "had 7 forget examples" in res.output, res.output


def test_relative_data_paths_resolve_against_where_the_run_was_made(tmp_path, monkeypatch):
    from obliviate.bench.audit import load_bundle, load_run
    from obliviate.errors import DatasetNotFoundError

    made = tmp_path / "project"
    run = made / "runs" / "bench"
    run.mkdir(parents=True)
    (made / "table.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    (run / "config.json").write_text(json.dumps({"data": {"kind": "tabular", "path": "table.csv"},
                                                 "forget": "random:0.1", "cache_dir": "cache"}))
    (run / "results.json").write_text(json.dumps([{"method": "original", "seed": 0}]))
    (run / "meta.json").write_text(json.dumps({"cwd": str(made)}))
    monkeypatch.chdir(tmp_path)
    loaded = load_run(run)
    assert loaded.config.data.path == str(made / "table.csv") and loaded.config.cache_dir == str(made / "cache")
    assert len(load_bundle(loaded).train) > 0
    # not recorded: the run folder's parent, then the current folder
    (run / "meta.json").write_text("{}")
    (run.parent / "table.csv").write_text((made / "table.csv").read_text())
    assert load_run(run).config.data.path == str(run.parent / "table.csv")
    (run.parent / "table.csv").unlink()
    with pytest.raises(DatasetNotFoundError) as err:
        load_bundle(load_run(run))
    assert "data.path 'table.csv'" in str(err.value) and len(err.value.searched) == 2
    assert str(run.parent / "table.csv") in err.value.searched and str(tmp_path / "table.csv") in err.value.searched
