"""Every kind of report in headless Chromium at 1280 px: no sideways scroll, no console errors,
every image loaded. Skipped (not passed) where playwright or Chromium is missing.

``OBLIVIATE_SCREENSHOTS=docs/screenshots`` also saves a screenshot of each page there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

WIDTH = 1280


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["classifier", "lm", "audit", "api"])
def test_report_fits_1280_and_loads_cleanly(browser, report_pages, kind):
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report_pages[kind].as_uri(), wait_until="load")
    sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    images = page.evaluate("() => Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth,"
                           " i.getBoundingClientRect().right])")
    pres_with_tables = page.evaluate("() => document.querySelectorAll('pre table, pre + table').length")
    # tables fit too: none needs its own sideways scroll bar
    cut_tables = page.evaluate("() => Array.from(document.querySelectorAll('.table-wrap'))"
                               ".filter(d => d.scrollWidth > d.clientWidth + 1).map(d => d.innerText.slice(0, 40))")
    shots = os.environ.get("OBLIVIATE_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / f"{kind}-{WIDTH}.png"), full_page=True)
    page.close()
    assert not errors, errors
    assert sizes[0] <= sizes[1], f"{kind}: page is {sizes[0]} px wide in a {sizes[1]} px window"
    assert pres_with_tables == 0
    assert not cut_tables, cut_tables
    if kind != "api":
        assert images, "a report without plots"
    for alt, complete, natural, right in images:
        assert complete and natural > 0, f"image {alt!r} did not load"
        assert right <= WIDTH, f"image {alt!r} runs past the window ({right} px)"
    if kind == "audit":
        assert len(images) >= 5  # the bench's three plots and two ROC curves


@pytest.mark.slow
@pytest.mark.parametrize("width", [1400, 1920])
def test_wider_windows_do_not_scroll_sideways_either(browser, report_pages, width):
    for kind, path in report_pages.items():
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(path.as_uri(), wait_until="load")
        scroll, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        page.close()
        assert scroll <= inner, f"{kind} at {width} px: {scroll} px wide"
