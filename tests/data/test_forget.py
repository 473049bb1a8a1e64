import numpy as np
import pytest

from obliviate.data import ArrayDataset, split_forget
from obliviate.errors import ForgetSetError


@pytest.fixture
def train():
    n = 100
    return ArrayDataset(x=np.arange(n * 2, dtype=np.float32).reshape(n, 2), y=np.arange(n) % 4,
                        ids=[f"r{i}" for i in range(n)], subjects=[f"p{i // 10}" for i in range(n)],
                        name="toy", classes=("a", "b", "c", "d"))


def test_random_fraction_is_seeded(train):
    a = split_forget(train, "random:0.1", seed=1)
    b = split_forget(train, "random:0.1", seed=1)
    c = split_forget(train, "random:0.1", seed=2)
    assert len(a.forget) == 10 and len(a.retain) == 90
    assert np.array_equal(a.forget_index, b.forget_index)
    assert not np.array_equal(a.forget_index, c.forget_index)
    assert not set(a.forget.ids) & set(a.retain.ids)


def test_class_by_index_and_name(train):
    assert np.all(split_forget(train, "class:2").forget.y == 2)
    assert np.all(split_forget(train, "class:c").forget.y == 2)
    with pytest.raises(ForgetSetError, match="out of range"):
        split_forget(train, "class:7")
    with pytest.raises(ForgetSetError, match="class index or name"):
        split_forget(train, "class:zebra")


def test_ids_file(train, tmp_path):
    # one id per line, exactly as written (issue 13: commas and spaces belong to the id)
    f = tmp_path / "ids.txt"
    f.write_text("r3\nr5\n\nr9\n")
    assert list(split_forget(train, f"ids:{f}").forget.ids) == ["r3", "r5", "r9"]
    f.write_text("r3 nope")
    with pytest.raises(ForgetSetError, match="nope"):
        split_forget(train, f"ids:{f}")
    f.write_text("  \n")
    with pytest.raises(ForgetSetError, match="empty"):
        split_forget(train, f"ids:{f}")
    with pytest.raises(ForgetSetError, match="no such file"):
        split_forget(train, f"ids:{tmp_path / 'missing.txt'}")


def test_subjects(train):
    s = split_forget(train, "subjects:p1,p3")
    assert len(s.forget) == 20 and set(s.forget.subjects) == {"p1", "p3"}
    with pytest.raises(ForgetSetError, match="unknown subject"):
        split_forget(train, "subjects:p1,zz")


def test_subjects_without_subject_column():
    d = ArrayDataset(x=np.zeros((4, 1)), y=[0, 1, 0, 1], ids=range(4))
    with pytest.raises(ForgetSetError, match="no subject column"):
        split_forget(d, "subjects:a")


@pytest.mark.parametrize("spec,match", [
    ("random", "KIND:ARGUMENT"),
    ("rnd:0.1", "random"),
    ("random:", "empty"),
    ("random:abc", "number"),
    ("random:1.5", r"\(0, 1\)"),
    ("random:0.001", "no example"),
])
def test_malformed_specs(train, spec, match):
    with pytest.raises(ForgetSetError, match=match):
        split_forget(train, spec)


def test_whole_training_set_rejected(train, tmp_path):
    f = tmp_path / "all.txt"
    f.write_text("\n".join(train.ids))
    with pytest.raises(ForgetSetError, match="whole training set"):
        split_forget(train, f"ids:{f}")


def test_ids_file_whitespace_is_not_stripped(train, tmp_path):
    f = tmp_path / "ids.txt"
    f.write_text(" r7\nr8\n")
    with pytest.raises(ForgetSetError, match=r"' r7'.*'r7'"):
        split_forget(train, f"ids:{f}")


def test_ids_with_spaces_and_commas(tmp_path):
    ids = ["a b", "c,d", "e"]
    d = ArrayDataset(x=np.zeros((3, 1)), y=[0, 1, 0], ids=ids, name="odd")
    f = tmp_path / "ids.txt"
    f.write_text("a b\nc,d\n")
    assert list(split_forget(d, f"ids:{f}").forget.ids) == ["a b", "c,d"]


def test_ids_csv_and_json(train, tmp_path):
    c = tmp_path / "ids.csv"
    c.write_text("user,note\nr1,x\nr2,y\n")
    assert list(split_forget(train, f"ids:{c}#user").forget.ids) == ["r1", "r2"]
    with pytest.raises(ForgetSetError, match="no column 'id'"):
        split_forget(train, f"ids:{c}")
    j = tmp_path / "ids.json"
    j.write_text('{"ids": ["r4", 5]}')
    with pytest.raises(ForgetSetError, match="'5'"):
        split_forget(train, f"ids:{j}")
    j.write_text('["r4", "r6"]')
    assert list(split_forget(train, f"ids:{j}").forget.ids) == ["r4", "r6"]


def test_forget_request_unites_selections(train):
    from obliviate.data.request import ForgetRequest

    req = ForgetRequest(ids=["r0"], subjects=["p1"], classes=["d"])
    s = split_forget(train, req)
    expected = {"r0"} | {f"r{i}" for i in range(10, 20)} | {f"r{i}" for i in range(100) if i % 4 == 3}
    assert set(s.forget.ids) == expected
    assert s.request == req
    with pytest.raises(ForgetSetError, match="empty"):
        ForgetRequest()
    with pytest.raises(ForgetSetError, match="concept-only"):
        split_forget(train, ForgetRequest(concept=["a text"]))
    with pytest.raises(ForgetSetError, match="did you mean 'subjects'"):
        ForgetRequest.from_dict({"subject": ["p1"]})
    assert ForgetRequest.parse("subjects:p1,p3") == ForgetRequest(subjects=("p1", "p3"))


def test_memorized_spec_needs_no_prior_import():
    # the memorized:* rules live above the data layer and are imported on first use
    import subprocess
    import sys

    code = ("from obliviate.data.forget import FORGET_SPECS, parse_spec; "
            "assert 'memorized' in FORGET_SPECS; parse_spec('memorized-stratum:high'); "
            "import sys; assert 'obliviate.audit.memorization' not in sys.modules; "
            "FORGET_SPECS.get('memorized'); assert 'obliviate.audit.memorization' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
