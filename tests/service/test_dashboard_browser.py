"""The dashboard in headless Chromium: requests, states, deadline flags, certificates with their plots.

Skipped (never passed) where Playwright or Chromium is missing.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.service.conftest import KEYS, Server, make_settings, request_doc

@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    from obliviate.service import Worker, create_app

    settings = make_settings(tmp_path_factory.mktemp("dash"))
    today = dt.date.today()
    with Server(create_app(settings)) as srv, srv.client("requester") as alice, srv.client("reviewer") as rita, \
            srv.client("operator") as otto:
        alice.post("/requests", json=request_doc("dash-done", ["train-3"]))
        rita.post("/requests/dash-done/approve", json={"why": "ok"})
        otto.post("/requests/dash-done/run", json={"why": "go"})
        w = Worker(settings)
        assert w.run(until_empty=True, max_batches=2) == 1
        w.store.close()
        alice.post("/requests", json=request_doc("dash-late", ["train-4"],
                                                 received=(today - dt.timedelta(days=45)).isoformat()))
        alice.post("/requests", json=request_doc("dash-soon", ["train-5"],
                                                 received=(today - dt.timedelta(days=28)).isoformat()))
        yield srv


def _page(browser, role: str):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, extra_http_headers={"X-API-Key": KEYS[role]})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return ctx, page, errors


@pytest.mark.slow
def test_dashboard_shows_states_deadlines_and_certificates(browser, populated):
    ctx, page, errors = _page(browser, "auditor")
    try:
        resp = page.goto(f"{populated.url}/dashboard", wait_until="load")
        assert resp.status == 200
        rows = page.evaluate("() => Array.from(document.querySelectorAll('#requests tbody tr')).map(r => "
                             "[r.dataset.request, r.dataset.state, r.dataset.flag])")
        by_id = {r[0]: (r[1], r[2]) for r in rows}
        assert by_id["dash-done"] == ("completed", "answered")
        assert by_id["dash-late"] == ("awaiting review", "overdue")
        assert by_id["dash-soon"] == ("awaiting review", "due soon")
        assert page.locator("tr[data-request='dash-late'] .flag.bad").count() == 1
        assert page.locator("tr[data-request='dash-soon'] .flag.warn").count() == 1
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
        page.click("tr[data-request='dash-done'] a.cert")
        page.wait_for_load_state("load")
        assert page.url.endswith("/requests/dash-done/certificate.html")
        assert page.locator("#kinds").inner_text() == "exact"
        bars = page.locator("svg#plot rect")
        assert bars.count() == 1
        box = page.locator("svg#plot").bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 10
        assert "honoured" in page.content()
        assert errors == []
    finally:
        ctx.close()


@pytest.mark.slow
def test_dashboard_is_403_for_a_requester(browser, populated):
    ctx, page, _ = _page(browser, "requester")
    try:
        resp = page.goto(f"{populated.url}/dashboard", wait_until="load")
        assert resp.status == 403 and "requests:read_all" in page.content()
    finally:
        ctx.close()
