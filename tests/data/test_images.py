import numpy as np
import pytest
from PIL import Image

from obliviate.data import ImageFolderConfig, load_image_folder
from obliviate.errors import ConfigError, DataError, DatasetNotFoundError


def write_folder(root, classes=("circle", "square"), per_class=5, size=(10, 12), seed=0):
    """Tiny PNGs: class k is bright in its own quadrant, so there is something to learn."""
    rng = np.random.default_rng(seed)
    for k, c in enumerate(classes):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 60, (*size, 3), dtype=np.uint8)
            img[: size[0] // 2, k * 3: k * 3 + 4] = 250
            Image.fromarray(img).save(root / c / f"{i:02d}.png")
    return root


def test_folder_loads_as_chw_in_unit_range_with_path_ids(tmp_path):
    root = write_folder(tmp_path / "shapes")
    (root / "circle" / "notes.txt").write_text("not an image, skipped")
    d = load_image_folder(root, size=8)
    b = d.bundle
    assert d.classes == ("circle", "square") and b.n_classes == 2
    assert b.train.input_shape == (1, 8, 8) and len(b.train) + len(b.test) == 10
    assert 0.0 <= b.train.x.min() and b.train.x.max() <= 1.0
    assert set(b.train.ids) | set(b.test.ids) == {f"{c}/{i:02d}.png" for c in d.classes for i in range(5)}
    assert sorted(b.test.y.tolist()) == [0, 1]  # stratified: one of each class held out
    rgb = load_image_folder(root, size=[6, 9], mode="rgb").bundle
    assert rgb.train.input_shape == (3, 6, 9)
    again = load_image_folder(root, size=8).bundle
    assert np.array_equal(again.test.ids, b.test.ids) and np.array_equal(again.train.x, b.train.x)


def test_separate_test_folder_prefixes_ids(tmp_path):
    write_folder(tmp_path / "train")
    write_folder(tmp_path / "test", per_class=2, seed=1)
    b = load_image_folder(ImageFolderConfig(path=str(tmp_path / "train"), test_path=str(tmp_path / "test"),
                                            size=8)).bundle
    assert len(b.train) == 10 and len(b.test) == 4
    assert all(i.startswith("test/") for i in b.test.ids)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="nowhere"):
        load_image_folder(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match="no class subfolders"):
        load_image_folder(tmp_path / "flat")
    root = write_folder(tmp_path / "some")
    (root / "triangle").mkdir()
    with pytest.raises(DataError, match="triangle"):
        load_image_folder(root)


def test_unreadable_image_names_the_file(tmp_path):
    root = write_folder(tmp_path / "broken")
    (root / "square" / "03.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(DataError, match=r"square/03\.png"):
        load_image_folder(root, size=8)


def test_test_folder_with_unknown_class(tmp_path):
    write_folder(tmp_path / "train")
    write_folder(tmp_path / "test", classes=("circle", "star"), per_class=1)
    with pytest.raises(DataError, match="star"):
        load_image_folder(tmp_path / "train", test_path=str(tmp_path / "test"))


def test_bad_options_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'size'"):
        load_image_folder(tmp_path, sise=8)
    with pytest.raises(ConfigError, match="mode"):
        load_image_folder(tmp_path, mode="cmyk")


def test_a_single_class_folder_is_refused(tmp_path):
    root = write_folder(tmp_path / "one", classes=("cat",))
    with pytest.raises(DataError, match=r"same label \('cat'\).*at least two classes"):
        load_image_folder(root, size=8)
