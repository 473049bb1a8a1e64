"""The README's examples are the output of the commands they show (tools/readme_examples.py)."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("readme_examples", ROOT / "tools" / "readme_examples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    # run each cheap command once (a fresh process each, as a user runs it) and reuse its output
    for name, example in list(module.EXAMPLES.items()):
        if example.cheap:
            output = example.make()
            module.EXAMPLES[name] = dataclasses.replace(example, make=lambda output=output: output)
    return module


def test_every_example_in_the_readme_has_its_command_and_the_cheap_ones_are_current(tool):
    text = (ROOT / "README.md").read_text()
    assert set(tool.blocks(text)) == set(tool.EXAMPLES), "README markers and tools/readme_examples.py disagree"
    _, changed = tool.render(text, cheap_only=True)
    assert changed == [], f"README examples out of date: {changed}; run python tools/readme_examples.py --write"


def test_the_check_sees_a_drifted_example(tool):
    text = (ROOT / "README.md").read_text()
    body = tool.blocks(text)["methods"]
    drifted = text.replace(body, body.replace("approximate", "exact", 1))
    _, changed = tool.render(drifted, cheap_only=True)
    assert changed == ["methods"]
