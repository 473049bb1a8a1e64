"""Requests: the published schema, the examples, typed errors for bad requests, GDPR deadlines."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from obliviate.errors import ConfigError, UnknownNameError
from obliviate.policy import Deployments, load_request, make_plan, parse_request, request_schema
from obliviate.policy.request import Extension, add_months, deadline

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "requests"
GOOD = {"format": "obliviate-request-v1", "request_id": "r-1", "who": "data_subject",
        "what": {"kind": "examples", "ids": ["train-0"]}, "why": "erasure", "received": "2026-12-01",
        "deployment": "digits-sisa"}


def test_the_schema_is_published_and_every_example_validates_against_it():
    jsonschema = pytest.importorskip("jsonschema")
    schema = request_schema()
    assert schema["title"] == "obliviate forget request"
    assert {"who", "what", "why", "received", "deployment"} <= set(schema["required"])
    files = sorted(EXAMPLES.glob("*.json"))
    stems = {f.stem for f in files}
    assert {"data_subject_erasure", "copyright_holder", "safety_team"} <= stems
    for f in files:
        jsonschema.validate(json.loads(f.read_text()), schema)
        make_plan(load_request(f))  # accepted on the built-in deployments
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**GOOD, "who": "a journalist"}, schema)


@pytest.mark.parametrize("change, says", [
    ({"what": {"kind": "examples", "ids": []}}, "is empty"),
    ({"what": {"kind": "capability", "description": "hacking"}}, "is empty"),
    ({"received": "2026-13-45"}, "received"),
    ({"received": "yesterday"}, "received"),
    ({"why": "boredom"}, "why"),
    ({"whom": "x"}, "unknown key 'whom'"),
    ({"extension": {"months": 3, "reason": "busy"}}, "extension.months"),
    ({"extension": {"months": 1, "reason": "  "}}, "reason"),
])
def test_bad_requests_give_one_typed_error_saying_what_is_wrong(change, says):
    with pytest.raises(ConfigError, match=says):
        parse_request({**GOOD, **change})


def test_all_problems_are_listed_at_once():
    with pytest.raises(ConfigError) as info:
        parse_request({**GOOD, "why": "boredom", "received": "nope"})
    assert len(info.value.problems) == 2


def test_an_unknown_deployment_is_a_typed_error_with_a_hint():
    req = parse_request({**GOOD, "deployment": "digits-sisaa"})
    with pytest.raises(UnknownNameError, match="did you mean 'digits-sisa'"):
        make_plan(req)


def test_request_files_that_are_missing_or_not_json_are_typed_errors(tmp_path):
    with pytest.raises(ConfigError, match="No request file"):
        load_request(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        load_request(bad)


def test_gdpr_gives_one_month_extendable_by_two_with_a_reason():
    d = deadline(dt.date(2026, 12, 1), "EU")
    assert d.due == dt.date(2027, 1, 1) and d.law == "GDPR" and d.extended_by is None
    # the end of a month clamps: 31 January + 1 month is the last day of February
    assert deadline(dt.date(2027, 1, 31), "EU").due == dt.date(2027, 2, 28)
    assert add_months(dt.date(2028, 1, 31), 1) == dt.date(2028, 2, 29)
    ext = deadline(dt.date(2026, 12, 1), "UK", Extension(months=2, reason="complex: 40 stores"))
    assert ext.due == dt.date(2027, 3, 1) and ext.base_due == dt.date(2027, 1, 1)
    assert "complex: 40 stores" in ext.text
    assert deadline(dt.date(2026, 12, 1), "EU", Extension(months=1, reason="r")).due == dt.date(2027, 2, 1)
    with pytest.raises(ConfigError):
        parse_request({**GOOD, "extension": {"months": 1}})  # an extension without its reason


def test_other_jurisdictions():
    assert deadline(dt.date(2026, 1, 1), "US-CA").due == dt.date(2026, 2, 15)  # CCPA: 45 days
    assumed = deadline(dt.date(2026, 1, 1), "Narnia")
    assert assumed.due == dt.date(2026, 2, 1) and "GDPR rule is applied" in assumed.text


def test_a_deployments_file_replaces_the_built_ins(tmp_path):
    f = tmp_path / "deployments.yaml"
    f.write_text("deployments:\n  - {name: mine, model: summation, dataset: digits, access: outputs}\n")
    deps = Deployments.load(f)
    assert deps.names() == ["mine"]
    plan = make_plan(parse_request({**GOOD, "deployment": "mine"}), deps)
    assert [s.kind for s in plan.steps] == ["exact"] and plan.steps[0].intervention == "summation-forget"
    f.write_text("deployments:\n  - {name: mine, model: quantum, dataset: digits, access: outputs}\n")
    with pytest.raises(ConfigError, match="model"):
        Deployments.load(f)
