"""Tests for the TOFU loader, against the real files when they are present."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from obliviate.data.tofu import (
    REFUSALS,
    TOFU_SPLITS,
    load_refusals,
    load_tofu,
    tofu_search_paths,
    tofu_subject,
)
from obliviate.errors import DatasetNotFoundError, UnknownNameError

TOFU_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tofu"
needs_tofu = pytest.mark.skipif(
    not (TOFU_DIR / "full.json").is_file(),
    reason=f"TOFU files not found at {TOFU_DIR} (the shared data folder of this checkout)",
)


def _raw(split: str) -> list[dict]:
    return [json.loads(line) for line in (TOFU_DIR / f"{split}.json").read_text(encoding="utf-8").splitlines()]


@needs_tofu
def test_full_has_200_authors_with_20_qa_each() -> None:
    full = load_tofu("full", data_dir=TOFU_DIR)
    assert len(full) == 4000
    counts = Counter(e.subject for e in full)
    assert len(counts) == 200 and set(counts.values()) == {20}
    assert full[0].subject == "tofu/author_000" and full[-1].subject == "tofu/author_199"
    assert full[0].id == "tofu/0000"


@needs_tofu
def test_subjects_follow_authors_named_in_the_answers() -> None:
    full = load_tofu("full", data_dir=TOFU_DIR)
    # Jaime Vasquez is author 0, Basil Mahfouz Al-Kuwaiti author 198 (named in many of their QA pairs)
    for subject, name in (("tofu/author_000", "Jaime"), ("tofu/author_198", "Basil Mahfouz Al-Kuwaiti")):
        qa = full.by_subjects([subject])
        mentions = sum(name in e.question or name in e.answer for e in qa)
        assert mentions >= 15, (subject, mentions)
        others = full.exclude(qa.ids)
        assert sum(name in e.answer for e in others) == 0


@needs_tofu
@pytest.mark.parametrize("pct", [1, 5, 10])
def test_forget_and_retain_partition_full_by_author(pct: int) -> None:
    full = load_tofu("full", data_dir=TOFU_DIR)
    forget = load_tofu(f"forget{pct:02d}", data_dir=TOFU_DIR)
    retain = load_tofu(f"retain{100 - pct}", data_dir=TOFU_DIR)
    n_authors = 2 * pct
    assert len(forget) == 20 * n_authors
    assert set(forget.subjects()) == {f"tofu/author_{200 - n_authors + i:03d}" for i in range(n_authors)}
    assert not set(forget.subjects()) & set(retain.subjects())
    assert forget.ids + retain.ids != full.ids  # forget is the tail
    assert retain.ids + forget.ids == full.ids
    # ids mean the same pair everywhere
    for ex in forget:
        assert full.get(ex.id).question == ex.question and full.get(ex.id).answer == ex.answer


@needs_tofu
def test_perturbed_files_map_all_fields() -> None:
    raw = _raw("forget10_perturbed")
    ds = load_tofu("forget10_perturbed", data_dir=TOFU_DIR)
    assert ds.ids == load_tofu("forget10", data_dir=TOFU_DIR).ids
    for row, ex in zip(raw, ds):
        assert ex.to_tofu_record() == row
        assert len(ex.perturbed_answer) == 5
    retain_p = load_tofu("retain_perturbed", data_dir=TOFU_DIR)
    assert retain_p.subjects() == tuple(tofu_subject(20 * i) for i in range(20))


@needs_tofu
def test_holdout_and_option_sets() -> None:
    h10, h01 = load_tofu("holdout10", data_dir=TOFU_DIR), load_tofu("holdout01", data_dir=TOFU_DIR)
    assert len(h10.subjects()) == 20 and set(Counter(e.subject for e in h10).values()) == {20}
    assert h01.ids == h10.ids[:40]
    full_questions = {e.question for e in load_tofu("full", data_dir=TOFU_DIR)}
    assert not any(e.question in full_questions for e in h10)

    for name, n in (("real_authors", 100), ("world_facts", 117)):
        plain, pert = load_tofu(name, data_dir=TOFU_DIR), load_tofu(f"{name}_perturbed", data_dir=TOFU_DIR)
        assert len(plain) == n and plain.ids == pert.ids
        assert [e.perturbed_answer for e in plain] == [e.perturbed_answer for e in pert]
        assert all(len(e.perturbed_answer) == 3 and e.answer not in e.perturbed_answer for e in plain)


@needs_tofu
def test_every_split_loads() -> None:
    for split in TOFU_SPLITS:
        ds = load_tofu(split, data_dir=TOFU_DIR)
        assert ds.name == f"tofu/{split}" and len(ds) > 0


@needs_tofu
def test_edited_copy_without_full_falls_back_to_position(tmp_path: Path) -> None:
    shutil.copy(TOFU_DIR / "forget01.json", tmp_path / "forget01.json")
    ds = load_tofu("forget01", data_dir=tmp_path)  # no full.json next to it
    assert ds.ids[0] == "tofu/3960" and ds.subjects() == ("tofu/author_198", "tofu/author_199")


def test_missing_file_names_every_place_looked(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        load_tofu("forget10", data_dir=tmp_path)
    searched = err.value.searched
    assert searched == [str((tmp_path / "forget10.json").resolve()), str((tmp_path / "tofu" / "forget10.json").resolve())]
    for place in searched:
        assert place in str(err.value)


def test_default_search_includes_obliviate_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBLIVIATE_DATA", str(tmp_path))
    paths = tofu_search_paths()
    assert paths[0] == (tmp_path / "tofu").resolve()
    assert len(paths) >= 2  # plus ../shared/data/tofu


def test_unknown_split_suggests_a_name() -> None:
    with pytest.raises(UnknownNameError, match="forget10"):
        load_tofu("forget_10")


def test_refusals_builtin_and_file(tmp_path: Path) -> None:
    assert len(REFUSALS) >= 40 and len(set(REFUSALS)) == len(REFUSALS)
    assert load_refusals(tmp_path) == REFUSALS  # auto falls back to the built-in list
    with pytest.raises(DatasetNotFoundError, match="idontknow.jsonl"):
        load_refusals(tmp_path, source="file")
    (tmp_path / "idontknow.jsonl").write_text("No clue.\nBeats me.")
    assert load_refusals(tmp_path) == ("No clue.", "Beats me.")
    assert load_refusals(tmp_path, source="builtin") == REFUSALS


@needs_tofu
def test_refusals_from_shared_file() -> None:
    refusals = load_refusals(TOFU_DIR, source="file")
    assert len(refusals) == 100
