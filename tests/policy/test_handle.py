"""Handling requests end to end on the built-in data, and checking certificates alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from obliviate.cli.main import app
from obliviate.engine.keys import SigningKey
from obliviate.errors import LedgerError
from obliviate.policy import handle, load_request, make_plan, verify_certificate
from obliviate.policy.certificate import certificate_schema, sign_certificate
from obliviate.policy.plan import ULIRA_PASS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "requests"
runner = CliRunner()


@pytest.fixture(scope="module")
def handled(tmp_path_factory):
    """The data subject's erasure handled through the CLI: a SISA store on digits, trained small."""
    root = tmp_path_factory.mktemp("handle")
    key_file = root / "keys" / "operator.pem"
    res = runner.invoke(app, ["handle", str(EXAMPLES / "data_subject_erasure.json"), "--workdir", str(root / "work"),
                              "--out", str(root / "cert"), "--key-file", str(key_file)])
    assert res.exit_code == 0, res.output
    return root, key_file, json.loads(res.stdout)


def test_the_data_subjects_erasure_is_handled_exactly_with_the_receipt_in_the_lineage(handled):
    root, key_file, summary = handled
    assert summary["outcome"] == "honoured"
    cert = json.loads((root / "cert" / "certificate.json").read_text())
    assert cert["kinds"] == ["exact"]
    (step,) = cert["steps"]
    assert step["kind"] == "exact" and step["label"].startswith("exact removal (SISA)")
    assert step["lineage"]["receipt"]["status"] == "applied"
    assert sorted(step["measurements"]["example_ids"]) == ["train-0", "train-1", "train-3", "train-4"]
    lin = cert["lineage"]
    assert lin["model_before_sha256"] != lin["model_after_sha256"]
    assert lin["ledger_entries"][0]["request"]["seq"] >= 1 and lin["data_fingerprint"]
    assert cert["deadline"]["due"] == "2027-01-01" and cert["decision"]["removal_necessary"] == "yes"
    assert any(r.startswith("M3") for r in cert["residual_risks"])
    assert set(certificate_schema()["required"]) <= set(cert)
    jsonschema = pytest.importorskip("jsonschema")
    published = json.loads(runner.invoke(app, ["certificate", "schema"]).stdout)
    jsonschema.validate(cert, published)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**cert, "outcome": "forgotten"}, published)
    html = (root / "cert" / "certificate.html").read_text()
    assert "img { max-width: 100%" in html and cert["certificate_id"] in html
    # the receipt also checks against the store's own ledger
    res = runner.invoke(app, ["ledger", "verify", "--store", str(root / "work" / "digits-sisa"), "--key-file",
                              str(key_file)])
    assert res.exit_code == 0, res.output


def test_a_clean_certificate_verifies(handled):
    root, key_file, summary = handled
    res = runner.invoke(app, ["certificate", "verify", str(root / "cert" / "certificate.json"), "--expect-key",
                              summary["key_fingerprint"]])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["receipts_verified"] == 1
    res = runner.invoke(app, ["certificate", "verify", str(root / "cert" / "certificate.json"), "--key-file",
                              str(key_file)])
    assert res.exit_code == 0, res.output


def _edit_one_char(text: str, pattern: str) -> str:
    m = re.search(pattern, text)
    assert m, pattern
    i = m.end() - 1
    new = "0" if text[i] != "0" else "1"
    return text[:i] + new + text[i + 1:]


@pytest.mark.parametrize("what, pattern", [
    ("label", r'"label": "exact r'),                         # exact removal -> exact 0emoval
    ("model hash", r'"model_after_sha256": "sha256:[0-9a-f]{5}'),
    ("deadline", r'"due": "2027-01-0'),                       # 2027-01-01 -> 2027-01-00 / -02
    ("outcome", r'"outcome": "h'),                         # honoured -> 0onoured (fails the schema)
    ("receipt", r'"example_ids": \[\s*"train-'),
])
def test_an_edited_certificate_fails_with_a_non_zero_exit(handled, tmp_path, what, pattern):
    root, _, summary = handled
    text = (root / "cert" / "certificate.json").read_text()
    edited = _edit_one_char(text, pattern)
    assert edited != text and len(edited) == len(text)
    f = tmp_path / "certificate.json"
    f.write_text(edited)
    res = runner.invoke(app, ["certificate", "verify", str(f), "--expect-key", summary["key_fingerprint"]])
    assert res.exit_code != 0, f"an edit of the {what} was not detected"
    assert "error:" in res.output


def test_a_certificate_signed_with_another_key_fails(handled, tmp_path):
    root, _, summary = handled
    doc = json.loads((root / "cert" / "certificate.json").read_text())
    body = {k: v for k, v in doc.items() if k not in ("public_key", "key_fingerprint", "signature")}
    other = SigningKey.generate()
    resigned = sign_certificate(body, other)
    verify_certificate(resigned)  # consistent by itself ...
    f = tmp_path / "resigned.json"
    f.write_text(json.dumps(resigned))
    res = runner.invoke(app, ["certificate", "verify", str(f), "--expect-key", summary["key_fingerprint"]])
    assert res.exit_code != 0 and "not by the expected" in res.output  # ... but not the operator's
    # the operator's key named, another key's signature: fails without --expect-key too
    forged = {**doc, "signature": resigned["signature"]}
    with pytest.raises(LedgerError, match="signature does not verify"):
        verify_certificate(forged)
    f.write_text("not json")
    assert runner.invoke(app, ["certificate", "verify", str(f)]).exit_code != 0


def test_a_failed_audit_without_an_exact_path_is_certified_as_not_honoured(tmp_path):
    plan = make_plan(load_request(EXAMPLES / "copyright_holder.json"))
    key = SigningKey.generate()

    def auditor(verdict):
        return lambda plan, step, workdir: {"method": "finetune", "replicas": 4, "lira_auc": 0.71, **verdict}

    bad = handle(plan, workdir=tmp_path, key=key, auditor=auditor({"ulira_accuracy": 0.74,
                                                                     "caught_by": ["U-LiRA (accuracy 0.740)"]}))
    c = bad.certificate
    assert c["outcome"] == "not honoured" and "not honoured" in c["statement"]
    assert "failed its audit" in c["steps"][0]["label"] and "U-LiRA accuracy 0.74" in c["steps"][0]["label"]
    assert not c["steps"][0]["honoured"]
    good = handle(plan, workdir=tmp_path, key=key, auditor=auditor({"ulira_accuracy": ULIRA_PASS - 0.03,
                                                                      "caught_by": []}))
    label = good.certificate["steps"][0]["label"]
    assert good.certificate["outcome"] == "honoured" and label.startswith("approximate removal")
    assert "forgot" not in json.dumps(good.certificate) and "U-LiRA accuracy" in label
    none = handle(plan, workdir=tmp_path, key=key)  # no auditor: no evidence, so not honoured
    assert none.certificate["outcome"] == "not honoured"
    for h in (bad, good, none):
        verify_certificate(h.certificate, expected_key=key.public)


def test_the_safety_teams_request_is_guarded_with_measured_coverage(tmp_path):
    plan = make_plan(load_request(EXAMPLES / "safety_team.json"))
    c = handle(plan, workdir=tmp_path, key=SigningKey.generate(), out=tmp_path / "cert").certificate
    (step,) = c["steps"]
    m = step["measurements"]
    assert step["kind"] == "suppression" and step["label"].startswith("suppression (guards")
    assert 0 <= m["coverage"] <= 1 and 0 <= m["over_refusal"] <= 1 and "over-refusal" in step["label"]
    assert step["lineage"]["protected_facts"] > 0
    assert any(r.startswith("M1") for r in c["residual_risks"])


def test_a_fuzzy_concept_is_certified_as_not_honoured(tmp_path):
    raw = json.loads((EXAMPLES / "safety_team.json").read_text())
    raw["what"] = {"kind": "capability", "examples": ["anything bad"]}
    f = tmp_path / "fuzzy.json"
    f.write_text(json.dumps(raw))
    c = handle(make_plan(load_request(f)), workdir=tmp_path, key=SigningKey.generate()).certificate
    assert c["outcome"] == "not honoured" and c["steps"] == []
    assert any("too fuzzy to scope" in p for p in c["problems"]) and "too fuzzy" in c["statement"]


def test_plan_explain_through_the_cli():
    res = runner.invoke(app, ["plan", str(EXAMPLES / "data_subject_erasure.json"), "--explain"])
    assert res.exit_code == 0, res.output
    assert "removal: necessary=yes, sufficient=maybe" in res.stdout
    assert "strictly forbidden observed data" in res.stdout and "[exact] via sisa-forget" in res.stdout
    res = runner.invoke(app, ["plan", str(EXAMPLES / "copyright_holder.json")])
    assert res.exit_code == 0 and json.loads(res.stdout)["steps"][0]["kind"] == "approximate"
    assert json.loads(runner.invoke(app, ["plan", "--schema"]).stdout)["title"] == "obliviate forget request"


def test_plan_errors_are_clean(tmp_path):
    raw = json.loads((EXAMPLES / "data_subject_erasure.json").read_text())
    f = tmp_path / "r.json"
    f.write_text(json.dumps({**raw, "deployment": "nowhere"}))
    res = runner.invoke(app, ["plan", str(f)])
    assert res.exit_code == 2 and "Unknown deployment 'nowhere'" in res.output
    f.write_text(json.dumps({**raw, "received": "2026-02-30"}))
    res = runner.invoke(app, ["plan", str(f)])
    assert res.exit_code == 2 and "received" in res.output


def test_the_certificate_records_each_state_change_and_its_html_is_escaped(tmp_path):
    raw = json.loads((EXAMPLES / "safety_team.json").read_text())
    raw["requester_name"] = "<script>alert(1)</script>"
    f = tmp_path / "r.json"
    f.write_text(json.dumps(raw))
    done = handle(make_plan(load_request(f)), workdir=tmp_path, key=SigningKey.generate(), out=tmp_path / "c")
    assert [e["status"] for e in done.certificate["events"]] == ["pending", "in progress", "completed"]
    assert done.certificate["events"][0]["at"] == "2026-12-02"
    html = done.html_path.read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.slow
def test_the_copyright_request_runs_an_approximate_method_and_a_strong_audit(tmp_path):
    """The bench's classifier on digits, finetune, then U-LiRA and LiRA with 4 replicas (about a minute)."""
    res = runner.invoke(app, ["handle", str(EXAMPLES / "copyright_holder.json"), "--workdir", str(tmp_path / "w"),
                              "--out", str(tmp_path / "c"), "--key-file", str(tmp_path / "k" / "key.pem")])
    assert res.exit_code == 0, res.output
    cert = json.loads((tmp_path / "c" / "certificate.json").read_text())
    (step,) = cert["steps"]
    m = step["measurements"]
    assert step["kind"] == "approximate" and m["replicas"] == 4 and 0 <= m["ulira_accuracy"] <= 1
    assert f"U-LiRA accuracy {m['ulira_accuracy']:.2f}" in step["label"]
    # the label and the outcome follow the measured audit, whichever way it went
    assert step["honoured"] == (m["ulira_accuracy"] <= ULIRA_PASS and not m["caught_by"])
    assert cert["outcome"] == ("honoured" if step["honoured"] else "not honoured")
    assert step["lineage"]["audit_sha256"].startswith("sha256:") and step["lineage"]["data_fingerprint"]
    assert runner.invoke(app, ["certificate", "verify", str(tmp_path / "c" / "certificate.json")]).exit_code == 0


def test_an_erasure_on_the_persons_lm_is_partly_honoured_by_guards_and_says_what_is_missing(tmp_path):
    raw = json.loads((EXAMPLES / "data_subject_erasure.json").read_text())
    raw.update(deployment="persons-lm", what={"kind": "data_subject", "subjects": ["person-0011", "person-0017"]})
    f = tmp_path / "r.json"
    f.write_text(json.dumps(raw))
    res = runner.invoke(app, ["handle", str(f), "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "c"),
                              "--key-file", str(tmp_path / "k.pem")])
    assert res.exit_code == 0, res.output
    cert = json.loads((tmp_path / "c" / "certificate.json").read_text())
    assert [s["kind"] for s in cert["steps"]] == ["approximate", "suppression"]
    assert cert["outcome"] == "partly honoured"
    assert any("not wired into handle" in p for p in cert["problems"])
    assert cert["steps"][1]["measurements"]["measured_on_request_subjects"] is True


def test_a_late_answer_is_recorded_as_late(tmp_path):
    import datetime as dt

    plan = make_plan(load_request(EXAMPLES / "copyright_holder.json"))  # due 2026-12-20
    key = SigningKey.generate()
    late = handle(plan, workdir=tmp_path, key=key, today=dt.date(2026, 12, 21)).certificate
    on_time = handle(plan, workdir=tmp_path, key=key, today=dt.date(2026, 12, 20)).certificate
    assert late["answered_on_time"] is False and on_time["answered_on_time"] is True


def test_plan_prints_the_decision_table_and_writes_the_plan(tmp_path):
    res = runner.invoke(app, ["plan", "--table"])
    assert res.exit_code == 0 and res.stdout.startswith("| reason | target | access |")
    out = tmp_path / "plan.json"
    res = runner.invoke(app, ["plan", str(EXAMPLES / "safety_team.json"), "--out", str(out)])
    assert res.exit_code == 0 and json.loads(out.read_text())["steps"][0]["kind"] == "suppression"
    assert runner.invoke(app, ["plan"]).exit_code == 2
