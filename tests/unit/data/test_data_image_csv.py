"""data.source csv (greenpipe.data.image_csv), the mixed sizes and modes rule
(greenpipe.data.images) and class names from every source to the report."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from greenpipe.config import DataConfig
from greenpipe.data.image_csv import load_image_csv, read_table
from greenpipe.data.images import read_image
from greenpipe.data.sources import check_source, load_image_folder, load_source
from greenpipe.errors import DataError


def _png(path, value: int = 100, size=(8, 8), mode: str = "L") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)
    return path.name


def _csv(tmp_path, text: str, name: str = "labels.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def pets(tmp_path):
    """inputs/pets/labels.csv listing images/ beside it: 3 cats, 3 dogs, extra columns."""
    root = tmp_path / "inputs" / "pets"
    for i in range(3):
        _png(root / "images" / f"cat{i}.png", 40 + i)
        _png(root / "images" / f"dog{i}.png", 200 + i)
    rows = [f"images/cat{i}.png,cat,ann" for i in range(3)]
    rows += [f"images/dog{i}.png,dog,bob" for i in range(3)]
    return _csv(root, "path,label,annotator\n" + "\n".join(rows) + "\n")


# --- the CSV reader ------------------------------------------------------------------------


def test_csv_paths_are_relative_to_the_csv_and_labels_become_sorted_names(pets):
    x, y, classes = load_image_csv(pets, 4, 1, "stretch")
    assert classes == ["cat", "dog"]
    assert y.tolist() == [0, 0, 0, 1, 1, 1]
    assert x.shape == (6, 4, 4, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0, 0, 0], np.array([40, 41, 42, 200, 201, 202]) / 255)


def test_csv_columns_in_any_order_with_spaces_and_absolute_paths(tmp_path):
    a = tmp_path / "imgs" / "a.png"
    _png(a)
    _png(tmp_path / "imgs" / "b.png")
    csv = _csv(tmp_path, f"label, path\nzebra, {a}\nNA, imgs/b.png\nzebra, imgs/a.png\n")
    t = read_table(csv)
    # "NA" is a class name, not a missing value; the same file listed twice keeps one label
    assert t.classes == ["NA", "zebra"] and t.y.tolist() == [1, 0, 1]
    assert t.files[0] == a and t.lines == [2, 3, 4]


def test_integer_labels_are_ordered_by_value_and_named_by_their_decimal_form(tmp_path):
    for i in range(4):
        _png(tmp_path / f"{i}.png")
    csv = _csv(tmp_path, "path,label\n0.png,10\n1.png,2\n2.png,02\n3.png,-1\n")
    t = read_table(csv)
    assert t.classes == ["-1", "2", "10"] and t.y.tolist() == [2, 1, 1, 0]


def test_blank_lines_are_skipped_and_errors_name_the_file_line(tmp_path):
    _png(tmp_path / "a.png")
    csv = _csv(tmp_path, "path,label\na.png,x\n\nmissing.png,y\n")
    with pytest.raises(DataError) as e:
        read_table(csv)
    msg = str(e.value)
    assert f"'{csv}' line 4: image 'missing.png' does not exist" in msg
    assert "fix the path" in msg and "\n" not in msg


@pytest.mark.parametrize(
    "text, needle",
    [
        ("file,label\na.png,x\nb.png,y\n", "has no column 'path' (its header: file, label)"),
        ("path,class\na.png,x\nb.png,y\n", "has no column 'label'"),
        ("path,label\na.png,x\na.png,x\n", "names 1 class ('x'); at least 2 are needed"),
        ("path,label\na.png,x\nb.png,\n", "line 3: empty label"),
        ("path,label\na.png,x\n,y\n", "line 3: empty path"),
        ("path,label\na.png,x\na.png,y\n", "line 3: 'a.png' is labelled 'y' but line 2"),
        ("path,label\na.png,x\n../b.png,y\n", "line 3: path '../b.png' leads outside"),
        ("path,label\n", "lists no images"),
        ("", "is not a readable CSV"),
        ('path,label\n"a.png,x\n', "is not a readable CSV"),
    ],
)
def test_bad_csv_is_one_line_naming_the_problem(tmp_path, text, needle):
    _png(tmp_path / "sub" / "a.png")
    _png(tmp_path / "b.png")
    csv = _csv(tmp_path / "sub", text)
    with pytest.raises(DataError) as e:
        read_table(csv)
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_an_unreadable_image_names_its_line(tmp_path):
    _png(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"\x89PNG broken")
    csv = _csv(tmp_path, "path,label\na.png,x\nb.png,y\n")
    read_table(csv)  # the table itself is fine: the files exist
    with pytest.raises(DataError, match=r"line 3: 'b.png' is not a readable image"):
        load_image_csv(csv, 8, 1, "stretch")


def test_check_source_reads_the_csv_before_any_stage(tmp_path, pets):
    root = tmp_path
    check_source("csv", "inputs/pets/labels.csv", root)
    with pytest.raises(DataError, match="data.path 'inputs/nope.csv' does not exist"):
        check_source("csv", "inputs/nope.csv", root)
    (root / "inputs/pets/images/dog2.png").unlink()
    # the CSV named as data.path says, wherever the check runs from
    with pytest.raises(
        DataError, match="'inputs/pets/labels.csv' line 7: image 'images/dog2.png' does not exist"
    ):
        check_source("csv", "inputs/pets/labels.csv", root)


# --- mixed sizes and modes -----------------------------------------------------------------


def _mixed(folder):
    """One image per mode, each of another size: L, RGB, RGBA (half transparent), P, LA and
    16-bit grayscale; all grey 128 where opaque."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("L", (10, 20), 128).save(folder / "l.png")
    Image.new("RGB", (33, 7), (128, 128, 128)).save(folder / "rgb.jpg", quality=100)
    rgba = Image.new("RGBA", (16, 16), (128, 128, 128, 255))
    rgba.paste((255, 255, 255, 0), (0, 0, 8, 16))  # the left half: white, fully transparent
    rgba.save(folder / "rgba.png")
    Image.new("RGB", (5, 5), (128, 128, 128)).quantize().save(folder / "p.png")
    Image.new("LA", (12, 9), (128, 255)).save(folder / "la.png")
    Image.fromarray(np.full((6, 6), 128 * 257, np.uint16)).save(folder / "i16.png")
    return ["l.png", "rgb.jpg", "rgba.png", "p.png", "la.png", "i16.png"]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("fit", ["stretch", "pad", "crop"])
def test_mixed_sizes_and_modes_become_one_shape(tmp_path, channels, fit):
    names = _mixed(tmp_path / "mixed")
    for name in names:
        img = read_image(tmp_path / "mixed" / name, 8, channels, fit)
        assert img is not None and img.shape == (8, 8, channels) and img.dtype == np.float32
        assert img.min() >= 0.0 and img.max() <= 1.0
        # every mode's grey 128 reads as the same value (16-bit scaled to 8 bits)
        np.testing.assert_allclose(img[4, 5], 128 / 255, atol=0.01, err_msg=name)


def test_transparency_is_black_and_pad_and_crop_keep_the_aspect_ratio(tmp_path):
    _mixed(tmp_path)
    rgba = read_image(tmp_path / "rgba.png", 8, 1, "stretch")[..., 0]
    assert np.all(rgba[:, :3] == 0) and np.allclose(rgba[:, 5:], 128 / 255, atol=0.01)
    wide = Image.new("L", (20, 10), 255)  # white, twice as wide as tall
    wide.paste(0, (0, 0, 5, 10))  # its left quarter black
    wide.save(tmp_path / "wide.png")
    stretch = read_image(tmp_path / "wide.png", 8, 1, "stretch")[..., 0]
    pad = read_image(tmp_path / "wide.png", 8, 1, "pad")[..., 0]
    crop = read_image(tmp_path / "wide.png", 8, 1, "crop")[..., 0]
    assert np.all(stretch[:, 0] == 0) and np.all(stretch[:, 3:] == 1.0)  # squeezed
    assert np.all(pad[:2] == 0) and np.all(pad[6:] == 0) and np.all(pad[2:6, 3:] == 1.0)
    assert crop.min() > 0.9  # the centre half: the black quarter is cut away (bar blending)


def test_image_folder_and_csv_read_mixed_files_the_same_way(tmp_path):
    names = _mixed(tmp_path / "folder" / "a")
    _mixed(tmp_path / "folder" / "b")
    xf, yf, classes, skipped = load_image_folder(tmp_path / "folder", 8, 3, "pad")
    # the folder reads PNG and JPEG only, in name order; the CSV lists the same files
    listed = sorted(n for n in names if n.endswith((".png", ".jpg")))
    rows = [f"{c}/{n},{c}" for c in "ab" for n in listed]
    csv = _csv(tmp_path / "folder", "path,label\n" + "\n".join(rows) + "\n")
    xc, yc, names_c = load_image_csv(csv, 8, 3, "pad")
    assert classes == names_c == ["a", "b"] and skipped == []
    np.testing.assert_array_equal(xf, xc)
    np.testing.assert_array_equal(yf, yc)


# --- class names from every source ---------------------------------------------------------


def test_every_source_names_its_classes(tmp_path, pets):
    assert load_source(DataConfig()).classes == [str(d) for d in range(10)]
    csv = DataConfig(source="csv", path=str(pets), image_size=4)
    assert load_source(csv).classes == ["cat", "dog"]
    for cls in ("owl", "bat"):
        _png(tmp_path / "folder" / cls / "1.png")
    folder = DataConfig(source="image_folder", path=str(tmp_path / "folder"), image_size=4)
    assert load_source(folder).classes == ["bat", "owl"]
    x = np.zeros((6, 4, 4), np.uint8)
    np.savez(tmp_path / "named.npz", x=x, y=np.arange(6) % 3, classes=np.array(["a", "b", "c"]))
    npz = DataConfig(source="npz", path=str(tmp_path / "named.npz"))
    assert load_source(npz).classes == ["a", "b", "c"]
    np.savez(tmp_path / "plain.npz", x=x, y=np.arange(6) % 3)
    assert load_source(npz.model_copy(update={"path": str(tmp_path / "plain.npz")})).classes == [
        "0",
        "1",
        "2",
    ]


@pytest.mark.parametrize(
    "classes, needle",
    [
        (np.array(["a", "b"]), "names 2 class(es) but y goes up to 2"),
        (np.array(["a", "a", "b"]), "names a class twice"),
        (np.array([["a", "b", "c"]]), "1-D array of names"),
        (np.array(["a", None, "c"], dtype=object), "object array"),
    ],
)
def test_a_bad_npz_classes_array_is_a_one_line_error(tmp_path, classes, needle):
    from greenpipe.data.sources import load_npz_images

    np.savez(tmp_path / "c.npz", x=np.zeros((6, 4, 4)), y=np.arange(6) % 3, classes=classes)
    with pytest.raises(DataError) as e:
        load_npz_images(tmp_path / "c.npz")
    assert needle in str(e.value), str(e.value)


def test_a_class_too_small_to_split_is_named(tmp_path):
    from greenpipe.data.sources import stratified_split

    y = np.array([0] * 10 + [1] * 2)
    with pytest.raises(DataError, match=r"class 'dog' \(label 1\) has 2 sample"):
        stratified_split(np.zeros((12, 1, 1, 1)), y, 0.15, 0.2, 0, ["cat", "dog"])


def test_names_file_round_trip_and_checks(tmp_path):
    from greenpipe import artifacts
    from greenpipe.data.names import check_names, names_record, read_names

    path = tmp_path / "classes.json"
    artifacts.write_json(path, names_record(["cat", "dog, big"]))
    assert read_names(path) == ["cat", "dog, big"]
    check_names(["cat", "dog"], 2, "model 'teacher'", path)
    with pytest.raises(DataError, match="model 'teacher' has 3 classes but .* names 2"):
        check_names(["cat", "dog"], 3, "model 'teacher'", path)
    with pytest.raises(DataError, match="not found; run the stage"):
        read_names(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text('{"names": []}')
    with pytest.raises(DataError, match="not a class names file"):
        read_names(tmp_path / "bad.json")
