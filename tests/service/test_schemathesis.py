"""Schemathesis against the service's OpenAPI, over real HTTP, under each role: no check fails.

Every operation gets generated inputs (valid and invalid); all of Schemathesis's default checks
run on every response (no server error, documented status codes, content types, response
schemas, rejection of invalid input, ...).
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from tests.service.conftest import KEYS  # noqa: E402




def _spec() -> dict:
    # the schema does not depend on the store: build it once from an app on a scratch folder
    import tempfile
    from pathlib import Path

    from obliviate.service import create_app
    from tests.service.conftest import make_settings

    with tempfile.TemporaryDirectory() as d:
        app = create_app(make_settings(Path(d)))
        spec = app.openapi()
        app.state.store.close()
    return spec


schema = schemathesis.openapi.from_dict(_spec())
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


@schema.parametrize()
@SETTINGS
def test_api_as_operator(case, service):
    case.call_and_validate(base_url=service.url, headers={"X-API-Key": KEYS["operator"]})


@schema.parametrize()
@SETTINGS
def test_api_as_requester(case, service):
    case.call_and_validate(base_url=service.url, headers={"X-API-Key": KEYS["requester"]})


@schema.parametrize()
@SETTINGS
def test_api_as_reviewer(case, service):
    case.call_and_validate(base_url=service.url, headers={"X-API-Key": KEYS["reviewer"]})
