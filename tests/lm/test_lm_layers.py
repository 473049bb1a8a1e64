"""The language-model code keeps the package's layering: data -> models -> training -> removal/engine -> audit.

A lower layer importing a higher one (even lazily, inside a function) makes an import
cycle waiting to happen: ``training.lm`` once imported ``audit.lm_eval``, which imports
``training.lm``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "obliviate"
LOWER = ("data", "models", "training")
HIGHER = ("removal", "engine", "audit", "report", "bench", "api", "cli", "service", "suppression", "policy")


def _imported(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names if node.module == "obliviate"]
    return out


def _layer_violations(folder: Path) -> list[str]:
    bad = []
    for path in sorted(folder.rglob("*.py")):
        for line, name in _imported(path):
            parts = name.split(".")
            if parts[0] == "obliviate" and len(parts) > 1 and parts[1] in HIGHER:
                bad.append(f"{path.relative_to(folder)}:{line} imports {name}")
    return bad


@pytest.mark.parametrize("layer", LOWER)
def test_lower_layers_import_no_higher_layer(layer):
    assert _layer_violations(SRC / layer) == []


def test_the_checker_sees_lazy_imports(tmp_path):
    (tmp_path / "m.py").write_text("def f():\n    from obliviate.audit.lm_eval import greedy_answers\n")
    assert _layer_violations(tmp_path) == ["m.py:2 imports obliviate.audit.lm_eval"]


def test_training_lm_loads_without_audit():
    code = ("import sys, obliviate.training.lm; "
            "print(sorted(m for m in sys.modules if m.startswith('obliviate.audit')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(SRC.parent), "PATH": ""})
    assert out.stdout.strip() == "[]"
