"""Property tests for the parsers of forget requests: specs, ids files and request JSON.

Whatever a user types or a file holds, the outcome is a valid selection or a typed
ForgetSetError; never another exception, never a silent wrong selection.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from obliviate.data import ArrayDataset, split_forget  # noqa: E402
from obliviate.data.request import ForgetRequest  # noqa: E402
from obliviate.errors import ForgetSetError  # noqa: E402

N = 40
IDS = [f"r{i}" for i in range(N - 3)] + ["a b", "c,d", " e"]  # ids with a space, a comma, a leading space
TRAIN = ArrayDataset(x=np.zeros((N, 2), dtype=np.float32), y=np.arange(N) % 4, ids=IDS,
                     subjects=[f"p{i // 5}" for i in range(N)], name="toy", classes=("a", "b", "c", "d"))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@SETTINGS
@given(kind=st.sampled_from(["random", "class", "subjects", "memorized", "rand", "", "ids-", "concept"]), arg=text)
def test_any_spec_selects_validly_or_raises_a_typed_error(kind, arg):
    spec = f"{kind}:{arg}"
    if kind in ("memorized",):  # training memorisation models is too slow for a property test
        return
    try:
        split = split_forget(TRAIN, spec, seed=0)
    except ForgetSetError:
        return
    assert 0 < len(split.forget) < N
    assert len(split.forget) + len(split.retain) == N
    assert not set(split.forget.ids) & set(split.retain.ids)


@SETTINGS
@given(chosen=st.lists(st.sampled_from(IDS), min_size=1, max_size=N - 1, unique=True),
       noise=st.lists(text, max_size=3), blank_lines=st.integers(0, 3))
def test_ids_file_lines_are_exact(tmp_path_factory, chosen, noise, blank_lines):
    path = tmp_path_factory.mktemp("ids") / "ids.txt"
    lines = chosen + [""] * blank_lines + [n for n in noise if "\n" not in n and "\r" not in n]
    path.write_text("\n".join(lines) + "\n")
    wanted = {line for line in lines if line.strip()}
    try:
        split = split_forget(TRAIN, f"ids:{path}")
    except ForgetSetError as exc:
        unknown = wanted - set(IDS)
        assert unknown or len(wanted) >= N, f"refused a file of known ids: {exc}"
        return
    assert set(split.forget.ids) == wanted  # exactly the lines, whitespace included


@SETTINGS
@given(payload=st.recursive(st.none() | st.booleans() | st.integers() | text,
                            lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3), max_leaves=8))
def test_request_json_parses_or_raises_a_typed_error(payload):
    try:
        req = ForgetRequest.coerce(json.loads(json.dumps(payload)))
    except ForgetSetError:
        return
    assert req.selects_rows or req.concept
    assert ForgetRequest.from_dict({k: v for k, v in req.to_dict().items() if k != "source"}) == req


@SETTINGS
@given(fields=st.fixed_dictionaries({}, optional={
    "ids": st.lists(st.sampled_from(IDS), max_size=4), "subjects": st.lists(st.sampled_from(["p0", "p3", "zz"]), max_size=2),
    "classes": st.lists(st.sampled_from(["a", "d", "1", "9"]), max_size=2)}))
def test_request_selection_is_the_union_of_its_parts(fields):
    try:
        req = ForgetRequest.from_dict(fields)
        split = split_forget(TRAIN, req)
    except ForgetSetError:
        return
    expect = set(req.ids) | {i for i, s in zip(IDS, TRAIN.subjects, strict=True) if s in req.subjects}
    for label in req.classes:
        k = TRAIN.classes.index(label) if label in TRAIN.classes else int(label)
        expect |= {i for i, y in zip(IDS, TRAIN.y, strict=True) if y == k}
    assert set(split.forget.ids) == expect
