"""Screenshots of reports in headless Chromium at 1280 px, saved as small palette PNGs.

    python docs/screenshots/make.py NAME=path/to/report.html [NAME=...]

Needs playwright (``pip install playwright``) and a Chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUT = Path(__file__).parent


def main(pairs: list[str]) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for pair in pairs:
            name, path = pair.split("=", 1)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            width = page.evaluate("() => document.documentElement.scrollWidth")
            png = page.screenshot(full_page=True)
            page.close()
            im = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
            target = OUT / f"{name}-1280.png"
            im.save(target, optimize=True)
            print(f"{target}: {im.size[0]}x{im.size[1]}, page width {width} px, {target.stat().st_size // 1024} KiB")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1:])
