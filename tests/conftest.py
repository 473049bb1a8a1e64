"""Shared fixtures: small data and models trained once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Test models are tiny: one thread is fastest, and robust to a busy machine.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the user's model cache from tests."""
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path_factory.getbasetemp() / "model-cache"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "fashion-mnist").is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (it sits beside the repo in CI)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def digits():
    from obliviate.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_class_setup(digits):
    """Original and retrained MLPs on digits with class 3 forgotten: a large, clear gap to close."""
    from obliviate.tasks.classification import RecipeConfig
    from obliviate.data import split_forget
    from obliviate.models import ModelSpec
    from obliviate.training import train_cached

    recipe = RecipeConfig().resolve("digits")
    spec = ModelSpec("mlp", {"hidden": [128]})
    split = split_forget(digits.train, "class:3", seed=0)
    original = train_cached(spec, digits.train, recipe, seed=0, n_classes=10)
    retrained = train_cached(spec, split.retain, recipe, seed=0, n_classes=10)
    return {"bundle": digits, "split": split, "recipe": recipe, "spec": spec,
            "original": original, "retrained": retrained}


# --- headless Chromium for the report and dashboard tests

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str | None:
    for candidate in (os.environ.get("OBLIVIATE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright; skipped (never passed) where either is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set OBLIVIATE_CHROMIUM)")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=exe, args=ARGS)
        except Exception as e:  # a browser that cannot start is an environment problem
            pytest.skip(f"Chromium at {exe} did not start: {e}")
        yield b
        b.close()
