"""Property tests for the parsers of outside input: tables, image folders and config files.

Whatever the input, a parser either returns a well-formed result or raises an
:class:`~obliviate.errors.ObliviateError` (whose message says what to fix);
never another exception type, never NaN features, never a label outside the
classes.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from obliviate.config import load_config_file, validate  # noqa: E402
from obliviate.data import (ImageFolderConfig, TabularConfig, TabularSchema, load_image_folder,  # noqa: E402
                            load_tabular)
from obliviate.data.tabular import read_table  # noqa: E402
from obliviate.errors import ConfigError, ObliviateError  # noqa: E402

FAST = settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
MARKERS = ["?", " ?", "NA", "n/a", "", "-"]

# --- tables --------------------------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)  # surrogates cannot be written as UTF-8
cell = st.one_of(st.integers(-10**20, 10**20), st.floats(width=64), text, st.none(), st.sampled_from(MARKERS),
                 st.booleans())
COLUMN_KINDS = {
    "int": st.integers(-2**63, 2**63 - 1),
    "small_int": st.integers(-3, 3),
    "float": st.floats(width=64),
    "finite": st.floats(-1e6, 1e6),
    "text": text,
    "category": st.sampled_from(["a", "b", "c"]),
    "bool": st.booleans(),
    "mixed": cell,
}


# repeated kinds are drawn more often: most tables should be loadable, so the success path is checked too
FEATURE_KINDS = ["finite", "finite", "finite", "category", "category", "small_int", "text", "float", "int",
                 "bool", "mixed"]
LABEL_KINDS = ["small_int", "small_int", "category", "category", "category", "int", "finite", "bool", "mixed"]


@st.composite
def tables(draw: st.DrawFn) -> tuple[pd.DataFrame, dict]:
    n = draw(st.integers(1, 16))
    n_features = draw(st.integers(0, 4))
    names = [f"c{j}" for j in range(n_features)]
    frame = {}
    for name in names:
        kind = draw(st.sampled_from(FEATURE_KINDS))
        frame[name] = draw(st.lists(COLUMN_KINDS[kind], min_size=n, max_size=n))
        if kind == "finite" and draw(st.booleans()):  # a few markers or typos in a numeric column
            for i in draw(st.lists(st.integers(0, n - 1), max_size=2)):
                frame[name][i] = draw(st.sampled_from([*MARKERS, "5O", None]))
    label_kind = draw(st.sampled_from(LABEL_KINDS))
    frame["label"] = draw(st.lists(COLUMN_KINDS[label_kind], min_size=n, max_size=n))
    if draw(st.booleans()):
        frame["key"] = draw(st.lists(st.one_of(text, st.integers(0, 5)), min_size=n, max_size=n))
    options = draw(st.fixed_dictionaries({}, optional={
        "na_values": st.lists(st.sampled_from(MARKERS), max_size=2),
        "missing": st.sampled_from(["error", "impute"]),
        "encoding": st.sampled_from(["onehot", "ordinal"]),
        "categorical_columns": st.lists(st.sampled_from(names), unique=True) if names else st.just([]),
        "test_fraction": st.floats(0.05, 0.95),
        "seed": st.integers(0, 2**31),
        "id_column": st.sampled_from(["key", "key", "label", "nope"]),
        "subject_column": st.sampled_from(["key", "c0"]),
    }))
    return pd.DataFrame(frame), options


def check_loaded(d, n_rows: int) -> None:
    b = d.bundle
    assert len(b.train) + len(b.test) == n_rows
    for split in (b.train, b.test):
        assert split.x.dtype == np.float32 and np.isfinite(split.x).all()
        assert len(split.y) == 0 or (split.y.min() >= 0 and split.y.max() < len(d.schema.classes))
        assert len(set(split.ids)) == len(split.ids)
    assert len(d.schema.classes) >= 2 and len(np.unique(b.train.y)) >= 2
    assert b.n_classes == len(d.schema.classes)
    json.dumps(d.to_dict(), default=str)


def load_or_typed_error(path: Path, options: dict):
    try:
        return load_tabular(path, **options)
    except ObliviateError:
        return None


def round_trip(d, path: Path, options: dict) -> None:
    """The saved schema re-encodes the file's rows exactly as the loader did."""
    with tempfile.TemporaryDirectory() as tmp:
        schema = TabularSchema.load(d.schema.save(Path(tmp) / "schema.json"))
    frame = read_table(path, config=d.config)
    x = schema.encoder.transform(frame)
    ids = frame[d.config.id_column].astype(str).to_numpy() if d.config.id_column else np.arange(len(frame)).astype(str)
    row = {k: i for i, k in enumerate(ids)}
    for split in (d.bundle.train, d.bundle.test):
        np.testing.assert_array_equal(x[[row[i] for i in split.ids]], split.x)


@FAST
@given(tables())
# a label of 2e9 was a MemoryError (a range of 2e9 class names)
@example((pd.DataFrame({"c0": [1.0, 2.0, 3.0, 4.0], "label": [0, 2_000_000_000] * 2}), {}))
# one row per class: the seeded fallback split held out every row, leaving no training rows
@example((pd.DataFrame({"c0": [0.0, 0.0], "label": [0, 1]}), {"test_fraction": 0.75}))
def test_csv_tables_load_or_raise_a_typed_error(table):
    frame, options = table
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        frame.to_csv(path, index=False)
        d = load_or_typed_error(path, options)
        if d is not None:
            check_loaded(d, len(frame))
            round_trip(d, path, options)


@FAST
@given(st.binary(max_size=200) | st.text(st.sampled_from('ab1,.\n"? -e\t'), max_size=80))
def test_arbitrary_csv_bytes_load_or_raise_a_typed_error(content):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "raw.csv"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        d = load_or_typed_error(path, {"label_column": "a"})
        if d is not None:
            check_loaded(d, len(read_table(path)))


@FAST
@given(tables())
def test_parquet_tables_load_or_raise_a_typed_error(table):
    frame, options = table
    # Parquet columns have one type: make mixed columns text, as a user's writer would have to
    frame = frame.apply(lambda c: c.map(lambda v: None if v is None else str(v)) if c.dtype == object else c)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.parquet"
        frame.to_parquet(path)
        d = load_or_typed_error(path, options)
        if d is not None:
            check_loaded(d, len(frame))
            round_trip(d, path, options)


npz_dtypes = st.sampled_from([np.float32, np.float64, np.int64, np.int8, np.uint64, np.bool_, np.complex64,
                              np.float16, np.dtype("<U3"), np.dtype("S2")])
numeric_dtypes = st.sampled_from([np.float32, np.float64, np.int64, np.int8, np.float16])


@st.composite
def npz_arrays(draw: st.DrawFn) -> dict[str, np.ndarray]:
    n, d = draw(st.integers(0, 10)), draw(st.integers(0, 4))
    if draw(st.integers(0, 3)):  # mostly well-shaped: (n, d) numbers and (n,) labels
        x = draw(hnp.arrays(numeric_dtypes, (n, d)))
        labels = draw(st.lists(st.sampled_from([0, 1, 2]) | st.sampled_from([-1, 2e9, 0.5, np.nan]),
                               min_size=n, max_size=n))
        y = np.array(labels).astype(draw(st.sampled_from([np.float64, np.dtype("<U6")])))
        if y.dtype.kind == "f" and np.isfinite(y).all() and draw(st.booleans()):
            y = y.astype(np.int64)
    else:
        x = draw(hnp.arrays(npz_dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)))
        y = draw(hnp.arrays(npz_dtypes, hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=8)))
    arrays = {"x": x, "y": y}
    if draw(st.booleans()):
        arrays["ids"] = draw(hnp.arrays(npz_dtypes, st.sampled_from([(n,), (n + 1,), (n, 1)])))
    if draw(st.booleans()):
        arrays["subjects"] = np.array(draw(st.lists(text, min_size=n, max_size=n)), dtype=str)
    return arrays


@FAST
@given(npz_arrays())
# non-UTF-8 bytes ids were a UnicodeDecodeError
@example({"x": np.zeros((4, 1)), "y": np.arange(4) % 2, "ids": np.array([b"\x80"] * 4, dtype="S2")})
@example({"x": np.zeros((4, 1)), "y": np.arange(4) % 2 + 0j})  # complex labels lost their imaginary part
def test_npz_files_load_or_raise_a_typed_error(arrays):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.npz"
        np.savez(path, **arrays)
        d = load_or_typed_error(path, {})
        if d is not None:
            check_loaded(d, len(arrays["x"]))


# --- image folders -------------------------------------------------------------------------

@st.composite
def image_files(draw: st.DrawFn) -> tuple[str, bytes]:
    ext = draw(st.sampled_from([".png", ".jpg", ".gif", ".bmp", ".txt", ".PNG"]))
    kind = draw(st.sampled_from(["image", "image", "junk", "truncated"]))
    if kind == "junk":
        return ext, draw(st.binary(max_size=40))
    from PIL import Image

    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "P", "1", "I;16", "F"]))
    w, h = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    im = Image.new(mode, (w, h), color=draw(st.integers(0, 255)))
    buf = io.BytesIO()
    fmt = {".jpg": "JPEG", ".gif": "GIF", ".bmp": "BMP"}.get(ext.lower(), "PNG")
    try:
        im.save(buf, format=fmt)
    except (OSError, ValueError, KeyError):  # not every mode can be written in every format
        im.convert("RGB").save(buf, format=fmt)
    data = buf.getvalue()
    return ext, data[: len(data) // 2] if kind == "truncated" else data


@FAST
@given(st.dictionaries(st.sampled_from(["cat", "dog", ".hidden", "bird"]),
                       st.lists(image_files(), max_size=3), max_size=3),
       st.integers(1, 8), st.sampled_from(["grayscale", "rgb"]))
def test_image_folders_load_or_raise_a_typed_error(classes, size, mode):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "imgs"
        root.mkdir()
        for c, files in classes.items():
            (root / c).mkdir()
            for i, (ext, data) in enumerate(files):
                (root / c / f"{i}{ext}").write_bytes(data)
        try:
            d = load_image_folder(root, size=size, mode=mode)
        except ObliviateError:
            return
        x = np.concatenate([d.bundle.train.x, d.bundle.test.x])
        assert x.shape[1:] == ((1 if mode == "grayscale" else 3), size, size)
        assert np.isfinite(x).all() and x.min() >= 0 and x.max() <= 1


# --- config files ----------------------------------------------------------------------------

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                           max_leaves=8)
KEYS = sorted({*TabularConfig.model_fields, *ImageFolderConfig.model_fields, "dataset", "recipe", "data",
               "methods", "seeds", "forget", "threads", "pathh"})
config_dicts = st.dictionaries(st.sampled_from(KEYS) | text, json_values, max_size=5)


def toml_text(data: dict) -> str:
    # TOML basic strings and JSON strings escape alike; JSON's numbers, booleans and arrays are TOML's too
    lines = []
    for k, v in data.items():
        if isinstance(v, dict | type(None)) or (isinstance(v, list) and any(isinstance(e, dict | type(None) | list)
                                                                             for e in v)):
            continue
        lines.append(f"{json.dumps(k)} = {json.dumps(v)}")
    return "\n".join(lines) + "\n"


def check_config(path: Path) -> None:
    from obliviate.tasks.classification import BenchConfig

    try:
        data = load_config_file(path)
    except ConfigError:
        return
    assert isinstance(data, dict)
    for model in (TabularConfig, ImageFolderConfig, BenchConfig):
        try:
            validate(model, data, source=str(path))
        except ConfigError as exc:
            assert str(path) in str(exc)


@FAST
@example(".yaml", b"\x80")  # was UnicodeDecodeError
@given(st.sampled_from([".yaml", ".yml", ".json", ".toml", ".ini"]),
       st.binary(max_size=120) | st.text(max_size=120)
       | st.text(st.sampled_from('a:-[]{}="\n 1.#,?&*!|>'), max_size=60))
def test_arbitrary_config_files_give_a_dict_or_config_error(suffix, content):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"run{suffix}"
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
        check_config(path)


@FAST
@given(st.sampled_from(["yaml", "json", "toml"]), config_dicts)
def test_structured_config_files_validate_or_list_problems(fmt, data):
    import yaml

    dump = {"yaml": lambda d: yaml.safe_dump(d, allow_unicode=True), "json": json.dumps, "toml": toml_text}[fmt]
    content = dump(data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"run.{fmt}"
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
        check_config(path)
