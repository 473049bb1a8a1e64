"""The architecture as a test: no upward import between layers, no import cycle anywhere.

The layers, top to bottom, are listed in ARCHITECTURE.md and in ``LAYERS`` below; a
module may import from its own package and from any layer below it, never from a layer
above or from a sibling in the same row. Every import counts, including imports inside
functions (grimp reads them all); only ``if TYPE_CHECKING:`` blocks are left out.
"""

from __future__ import annotations

import numpy as np
import pytest

grimp = pytest.importorskip("grimp")

LAYERS: list[tuple[str, ...]] = [
    ("cli", "service"),
    ("bench", "api"),
    ("report",),
    ("lab",),
    ("policy",),
    ("suppression",),
    ("tasks",),
    ("audit",),
    ("engine",),
    ("removal",),
    ("training",),
    ("models",),
    ("data",),
    ("config", "progress", "machine", "fileio"),
    ("registry",),
    ("errors",),
]
RANK = {name: depth for depth, row in enumerate(LAYERS) for name in row}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(graph) -> list[str]:
    found = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            a, b = _package(module), _package(imported)
            if a == b or "" in (a, b):
                continue
            if a not in RANK or b not in RANK:
                found.append(f"{module} -> {imported}: package {a if a not in RANK else b!r} has no layer; add it to "
                             "LAYERS and ARCHITECTURE.md")
            elif RANK[b] <= RANK[a]:
                way = "a sibling" if RANK[b] == RANK[a] else "an upper layer"
                found.append(f"{module} -> {imported} imports {way}")
    return found


def cycles(graph) -> list[list[str]]:
    """Strongly connected groups of more than one module (each is an import cycle)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    modules = sorted(graph.modules)
    index = {m: i for i, m in enumerate(modules)}
    rows, cols = [], []
    for m in modules:
        for imported in graph.find_modules_directly_imported_by(m):
            rows.append(index[m])
            cols.append(index[imported])
    adjacency = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(modules), len(modules)))
    n, labels = connected_components(adjacency, directed=True, connection="strong")
    groups = [[modules[i] for i in np.flatnonzero(labels == k)] for k in range(n)]
    return [g for g in groups if len(g) > 1]


def build():
    return grimp.build_graph("obliviate", include_external_packages=False, exclude_type_checking_imports=True,
                             cache_dir=None)


@pytest.fixture(scope="module")
def graph():
    return build()


def test_no_upward_import(graph):
    assert violations(graph) == []


def test_no_cycle_between_packages(graph):
    assert cycles(graph) == []


def test_the_checks_catch_what_they_look_for():
    """Add an upward import and a cycle to a fresh copy of the real graph: both checks must fail."""
    graph = build()
    graph.add_import(importer="obliviate.data.forget", imported="obliviate.bench.runner")
    assert any("obliviate.data.forget -> obliviate.bench.runner" in v for v in violations(graph))
    graph.add_import(importer="obliviate.training.trainer", imported="obliviate.tasks.base")
    assert cycles(graph), "an import from training back up to tasks closes a cycle"
