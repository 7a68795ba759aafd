"""Specifications of eslp.fer: the Kaggle CSV and folder layouts, splits, balancing and PNG folders."""

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import copy_real_faces, images_prepare_params, write_face
from eslp import fer
from eslp.errors import ESLPError

ANGRY_CODE = 0
HAPPY_CODE = 3


def face_pixels(value: int) -> np.ndarray:
    """Return a 48x48 uint8 face whose pattern depends on ``value``."""
    return np.random.default_rng(value).integers(0, 256, size=(48, 48), dtype=np.uint8)


def pixels_field(pixels: np.ndarray) -> str:
    return " ".join(str(value) for value in pixels.ravel())


def write_fer_csv(path: Path, rows: list[tuple[object, str, str]]) -> Path:
    """Write a Kaggle ``fer2013.csv``: header ``emotion,pixels,Usage`` and LF line ends."""
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["emotion", "pixels", "Usage"])
        writer.writerows(rows)
    return path


def decode(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def make_face(label: str, usage: str, value: int) -> fer.Face:
    return fer.Face(face_pixels(value), label, usage, f"face{value}")


def make_faces(label: str, count: int, usage: str = "Training", start: int = 0) -> list[fer.Face]:
    return [make_face(label, usage, start + index) for index in range(count)]


def sources(faces: list[fer.Face]) -> list[str]:
    return [face.source for face in faces]


# --- fer2013.csv -----------------------------------------------------------------------


def test_csv_valid_rows_become_faces(tmp_path):
    path = write_fer_csv(
        tmp_path / "fer2013.csv",
        [
            (ANGRY_CODE, pixels_field(face_pixels(1)), "Training"),
            (HAPPY_CODE, pixels_field(face_pixels(2)), "PublicTest"),
            (HAPPY_CODE, pixels_field(face_pixels(3)), "PrivateTest"),
        ],
    )

    faces, report = fer.read_csv(path, strict=False)

    assert [face.label for face in faces] == ["angry", "happy", "happy"]
    assert [face.usage for face in faces] == ["Training", "PublicTest", "PrivateTest"]
    assert sources(faces) == [f"{path}:2", f"{path}:3", f"{path}:4"]
    for face, value in zip(faces, (1, 2, 3)):
        assert face.pixels.dtype == np.uint8
        assert np.array_equal(face.pixels, face_pixels(value))
    assert report.skipped == []
    assert report.ignored == []


def test_csv_bad_rows_skipped_with_lines(tmp_path):
    good = pixels_field(face_pixels(1))
    path = write_fer_csv(
        tmp_path / "fer2013.csv",
        [
            (ANGRY_CODE, good, "Training"),
            (ANGRY_CODE, " ".join(["7"] * 2303), "Training"),
            (HAPPY_CODE, "", "Training"),
            (HAPPY_CODE, " ".join(["256"] + ["7"] * 2303), "Training"),
            ("x", good, "Training"),
            (HAPPY_CODE, good, "PublicTest"),
        ],
    )

    faces, report = fer.read_csv(path, strict=False)

    assert sources(faces) == [f"{path}:2", f"{path}:7"]
    assert [where for where, _ in report.skipped] == [f"{path}:3", f"{path}:4", f"{path}:5", f"{path}:6"]


@pytest.mark.parametrize(
    "emotion, pixels, usage, reason",
    [
        (ANGRY_CODE, " ".join(["7"] * 2303), "Training", "pixels has 2303 values, expected 2304"),
        (HAPPY_CODE, "", "Training", "pixels has 0 values, expected 2304"),
        (HAPPY_CODE, " ".join(["256"] + ["7"] * 2303), "Training", "pixel value 256 is outside 0-255"),
        (HAPPY_CODE, " ".join(["7.5"] * 2304), "Training", "pixels contains a value that is not a whole number: '7.5 7.5 "),
        ("x", " ".join(["7"] * 2304), "Training", "emotion 'x' is not a whole number 0-6"),
        (9, " ".join(["7"] * 2304), "Training", "emotion 9 is not a FER2013 label 0-6"),
        (HAPPY_CODE, " ".join(["7"] * 2304), "Validation", "Usage 'Validation' is not one of Training, PublicTest, PrivateTest"),
    ],
)
def test_csv_bad_row_reason(tmp_path, emotion, pixels, usage, reason):
    path = write_fer_csv(tmp_path / "fer2013.csv", [(emotion, pixels, usage)])

    _, report = fer.read_csv(path, strict=False)

    assert [where for where, _ in report.skipped] == [f"{path}:2"]
    assert report.skipped[0][1].startswith(reason)


def test_csv_strict_raises_naming_line(tmp_path):
    path = write_fer_csv(
        tmp_path / "fer2013.csv",
        [
            (ANGRY_CODE, pixels_field(face_pixels(1)), "Training"),
            (HAPPY_CODE, " ".join(["7"] * 2303), "Training"),
        ],
    )

    with pytest.raises(ESLPError, match=f"^{re.escape(str(path))}:3: pixels has 2303 values"):
        fer.read_csv(path, strict=True)


def test_csv_other_emotions_ignored(tmp_path):
    good = pixels_field(face_pixels(1))
    path = write_fer_csv(
        tmp_path / "fer2013.csv",
        [(1, good, "Training"), (2, good, "PublicTest"), (6, good, "PrivateTest"), (ANGRY_CODE, good, "Training")],
    )

    faces, report = fer.read_csv(path, strict=False)

    assert sources(faces) == [f"{path}:5"]
    assert report.ignored == [
        (f"{path}:2", "emotion 1 (disgust) is not angry or happy"),
        (f"{path}:3", "emotion 2 (fear) is not angry or happy"),
        (f"{path}:4", "emotion 6 (neutral) is not angry or happy"),
    ]
    assert report.skipped == []


def test_csv_other_emotion_pixels_not_checked(tmp_path):
    path = write_fer_csv(tmp_path / "fer2013.csv", [(6, "1 2 3", "Training")])

    _, report = fer.read_csv(path, strict=True)

    assert len(report.ignored) == 1
    assert report.skipped == []


def test_csv_header_with_bom_is_read(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_bytes(b"\xef\xbb\xbfemotion,pixels,Usage\n" + f"3,{pixels_field(face_pixels(1))},Training\n".encode())

    faces, _ = fer.read_csv(path, strict=False)

    assert [face.label for face in faces] == ["happy"]


def test_csv_wrong_header_raises(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text(f"label,pixels\n3,{pixels_field(face_pixels(1))}\n", encoding="utf-8")

    with pytest.raises(ESLPError, match=f"^{re.escape(str(path))}:1: header .* lacks the columns emotion, pixels, Usage"):
        fer.read_csv(path, strict=False)


def test_count_by_usage_exact_counts(tmp_path):
    rows = []
    for usage, per_class in (("Training", 5), ("PublicTest", 2), ("PrivateTest", 2)):
        for code in (ANGRY_CODE, HAPPY_CODE):
            rows += [(code, pixels_field(face_pixels(len(rows))), usage) for _ in range(per_class)]
    path = write_fer_csv(tmp_path / "fer2013.csv", rows)
    faces, _ = fer.read_csv(path, strict=False)

    counts = fer.count_by_usage(faces)

    assert counts == {
        "Training": {"angry": 5, "happy": 5},
        "PublicTest": {"angry": 2, "happy": 2},
        "PrivateTest": {"angry": 2, "happy": 2},
    }
    assert list(counts) == ["Training", "PublicTest", "PrivateTest"]


def test_count_by_usage_absent_class_zero():
    counts = fer.count_by_usage(make_faces("happy", 3, usage="PublicTest"))

    assert counts == {"PublicTest": {"angry": 0, "happy": 3}}


def real_faces_csv(shared: Path, tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    """Copy three real JPEGs per folder to ``tmp_path/folders`` and write their pixels as a fer2013.csv.

    Return the CSV and the decoded JPEG pixels, in the order of read_folders.
    """
    copy_real_faces(shared, tmp_path / "folders", per_folder=3)
    jpegs = [
        path
        for split in ("train", "test")
        for label in ("angry", "happy")
        for path in sorted((tmp_path / "folders" / split / label).iterdir())
    ]
    expected = [decode(path) for path in jpegs]
    rows = []
    for path, pixels in zip(jpegs, expected):
        code = ANGRY_CODE if path.parent.name == "angry" else HAPPY_CODE
        usage = "Training" if path.parent.parent.name == "train" else path.name.split("_")[0]
        rows.append((code, pixels_field(pixels), usage))
    return write_fer_csv(tmp_path / "fer2013.csv", rows), expected


def test_csv_of_real_faces_keeps_pixels(tmp_path, shared_data):
    path, expected = real_faces_csv(shared_data, tmp_path)

    faces, _ = fer.read_csv(path, strict=False)

    assert len(faces) == 12
    for face, pixels in zip(faces, expected):
        assert np.array_equal(face.pixels, pixels)


def test_csv_and_folders_same_faces(tmp_path, shared_data):
    path, _ = real_faces_csv(shared_data, tmp_path)

    from_csv, _ = fer.read_csv(path, strict=False)
    from_folders, _ = fer.read_folders(tmp_path / "folders", strict=False)

    assert len(from_csv) == len(from_folders)
    for csv_face, folder_face in zip(from_csv, from_folders):
        assert np.array_equal(csv_face.pixels, folder_face.pixels)
        assert (csv_face.label, csv_face.usage) == (folder_face.label, folder_face.usage)


# --- Kaggle folder layout --------------------------------------------------------------


def write_layout(root: Path, counts: dict[str, dict[str, list[str]]]) -> Path:
    """Write ``root/{split}/{class}/{name}`` JPEG faces, with ``counts[split][class]`` listing the names."""
    value = 0
    for split, by_label in counts.items():
        for label, names in by_label.items():
            for name in names:
                write_face(root / split / label / name, value)
                value += 1
    return root


SMALL_LAYOUT = {
    "train": {
        "angry": ["Training_1.jpg", "Training_2.jpg"],
        "happy": ["Training_3.jpg", "Training_4.jpg", "Training_5.jpg"],
    },
    "test": {
        "angry": ["PublicTest_123.jpg", "PrivateTest_124.jpg"],
        "happy": ["PublicTest_125.jpg"],
    },
}


def test_folders_read_usage_from_names(tmp_path):
    root = write_layout(tmp_path / "fer2013", SMALL_LAYOUT)

    faces, report = fer.read_folders(root, strict=False)

    assert fer.count_by_usage(faces) == {
        "Training": {"angry": 2, "happy": 3},
        "PublicTest": {"angry": 1, "happy": 1},
        "PrivateTest": {"angry": 1, "happy": 0},
    }
    assert report.resized == 0
    assert report.skipped == []


def test_folders_faces_keep_jpeg_pixels(tmp_path):
    root = write_layout(tmp_path / "fer2013", SMALL_LAYOUT)
    path = root / "test" / "angry" / "PublicTest_123.jpg"

    faces, _ = fer.read_folders(root, strict=False)

    face = next(face for face in faces if face.source == str(path))
    assert face.label == "angry"
    assert face.usage == "PublicTest"
    assert np.array_equal(face.pixels, decode(path))


def test_folders_unprefixed_test_file_public(tmp_path):
    layout = {"train": {"angry": ["a.jpg"], "happy": ["b.jpg"]}, "test": {"angry": ["c.jpg"], "happy": ["d.jpg"]}}
    root = write_layout(tmp_path / "fer2013", layout)

    faces, _ = fer.read_folders(root, strict=False)

    assert [face.usage for face in faces] == ["Training", "Training", "PublicTest", "PublicTest"]


def test_folders_ignore_other_entries(tmp_path):
    root = write_layout(tmp_path / "fer2013", SMALL_LAYOUT)
    write_face(root / "train" / "sad" / "Training_9.jpg", 9)
    (root / "train" / "angry" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "train" / "happy" / "notes.txt").write_text("labels checked\n", encoding="utf-8")
    (root / "test" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "README.md").write_text("FER2013\n", encoding="utf-8")

    faces, report = fer.read_folders(root, strict=False)

    assert len(faces) == 8
    assert report.ignored == [
        (str(root / "README.md"), "not a train/ or test/ folder"),
        (str(root / "train" / "sad"), "folder of another emotion"),
        (str(root / "train" / "angry" / ".DS_Store"), "not an image file"),
        (str(root / "train" / "happy" / "notes.txt"), "not an image file"),
        (str(root / "test" / ".DS_Store"), "not a class folder"),
    ]
    assert report.skipped == []


def test_folders_missing_angry_raises(tmp_path):
    root = write_layout(tmp_path / "fer2013", {"train": {"happy": ["Training_1.jpg"]}})

    with pytest.raises(ESLPError, match=f"^{re.escape(str(root / 'train' / 'angry'))}: folder not found"):
        fer.read_folders(root, strict=False)


def test_folders_missing_root_raises(tmp_path):
    with pytest.raises(ESLPError, match="FER2013 folder not found"):
        fer.read_folders(tmp_path / "absent", strict=False)


def test_folders_without_splits_raise(tmp_path):
    (tmp_path / "fer2013" / "validation").mkdir(parents=True)

    with pytest.raises(ESLPError, match="no train/ or test/ folder found"):
        fer.read_folders(tmp_path / "fer2013", strict=False)


def truncate_jpeg(path: Path) -> None:
    """Keep only the first 100 bytes of a JPEG, as an interrupted download does."""
    path.write_bytes(path.read_bytes()[:100])


def test_folders_truncated_jpeg_skipped(tmp_path):
    root = write_layout(tmp_path / "fer2013", SMALL_LAYOUT)
    broken = root / "train" / "happy" / "Training_4.jpg"
    truncate_jpeg(broken)

    faces, report = fer.read_folders(root, strict=False)

    assert str(broken) not in sources(faces)
    assert len(faces) == 7
    assert [where for where, _ in report.skipped] == [str(broken)]
    assert report.skipped[0][1].startswith("cannot decode image: ")


def test_folders_truncated_jpeg_strict_raises(tmp_path):
    root = write_layout(tmp_path / "fer2013", SMALL_LAYOUT)
    broken = root / "train" / "happy" / "Training_4.jpg"
    truncate_jpeg(broken)

    with pytest.raises(ESLPError, match=f"^{re.escape(str(broken))}: cannot decode image"):
        fer.read_folders(root, strict=True)


def test_folders_rgb_png_becomes_grey_48(tmp_path):
    root = write_layout(tmp_path / "fer2013", SMALL_LAYOUT)
    path = root / "train" / "happy" / "Training_6.png"
    # A uniform colour keeps the expected grey exact: L = (299 R + 587 G + 114 B) / 1000 = 124.2.
    Image.new("RGB", (64, 64), (200, 100, 50)).save(path)

    faces, report = fer.read_folders(root, strict=False)

    face = next(face for face in faces if face.source == str(path))
    assert face.pixels.shape == (48, 48)
    assert face.pixels.dtype == np.uint8
    assert np.all(face.pixels == 124)
    assert report.resized == 1


def test_load_face_rgba_flattened_on_white(tmp_path):
    path = tmp_path / "face.png"
    Image.new("RGBA", (48, 48), (0, 0, 0, 0)).save(path)

    pixels, converted = fer.load_face(path)

    assert np.all(pixels == 255)
    assert converted


def test_folders_read_real_faces(tmp_path, shared_data):
    copy_real_faces(shared_data, tmp_path / "fer2013", per_folder=4)

    faces, report = fer.read_folders(tmp_path / "fer2013", strict=False)

    # The first four test files by name are PrivateTest ones, since "PrivateTest_" sorts before "PublicTest_".
    assert fer.count_by_usage(faces) == {
        "Training": {"angry": 4, "happy": 4},
        "PrivateTest": {"angry": 4, "happy": 4},
    }
    assert report.resized == 0
    assert report.skipped == []


# --- splits and balancing --------------------------------------------------------------


def test_assign_splits_by_usage():
    faces = [make_face("angry", "Training", 1), make_face("happy", "PublicTest", 2), make_face("happy", "PrivateTest", 3)]

    splits = fer.assign_splits(faces, "usage", test_fraction=0.5, seed=0)

    assert sources(splits["train"]) == ["face1"]
    assert sources(splits["test"]) == ["face2", "face3"]


def test_assign_splits_random_fraction_per_class():
    faces = make_faces("angry", 10) + make_faces("happy", 20, start=10)

    splits = fer.assign_splits(faces, "random", test_fraction=0.2, seed=7)

    assert fer.count_by_usage(splits["test"]) == {"Training": {"angry": 2, "happy": 4}}
    assert fer.count_by_usage(splits["train"]) == {"Training": {"angry": 8, "happy": 16}}


def test_assign_splits_random_ignores_usage():
    faces = make_faces("angry", 5, usage="PublicTest") + make_faces("happy", 5, usage="Training", start=5)

    splits = fer.assign_splits(faces, "random", test_fraction=0.4, seed=7)

    assert len(splits["test"]) == 4
    assert len(splits["train"]) == 6


def test_assign_splits_random_same_seed_same_split():
    faces = make_faces("angry", 10) + make_faces("happy", 20, start=10)

    first = fer.assign_splits(faces, "random", test_fraction=0.2, seed=7)
    second = fer.assign_splits(faces, "random", test_fraction=0.2, seed=7)

    assert sources(first["test"]) == sources(second["test"])


def test_assign_splits_random_seed_changes_split():
    faces = make_faces("angry", 10) + make_faces("happy", 20, start=10)

    first = fer.assign_splits(faces, "random", test_fraction=0.2, seed=7)
    second = fer.assign_splits(faces, "random", test_fraction=0.2, seed=8)

    assert sources(first["test"]) != sources(second["test"])


def test_select_balance_equal_counts():
    angry = make_faces("angry", 3)
    happy = make_faces("happy", 7, start=3)

    chosen = fer.select(angry + happy, balance=True, max_per_class=0, seed=1)

    assert len(chosen["angry"]) == 3
    assert len(chosen["happy"]) == 3
    assert sources(chosen["angry"]) == sources(angry)


def test_select_max_per_class_caps():
    chosen = fer.select(make_faces("angry", 3) + make_faces("happy", 7, start=3), balance=False, max_per_class=4, seed=1)

    assert len(chosen["angry"]) == 3
    assert len(chosen["happy"]) == 4


def test_select_balance_and_cap_take_smaller():
    chosen = fer.select(make_faces("angry", 5) + make_faces("happy", 7, start=5), balance=True, max_per_class=4, seed=1)

    assert len(chosen["angry"]) == 4
    assert len(chosen["happy"]) == 4


def test_select_no_limit_keeps_all():
    faces = make_faces("angry", 3) + make_faces("happy", 7, start=3)

    chosen = fer.select(faces, balance=False, max_per_class=0, seed=1)

    assert sources(chosen["angry"]) == sources(faces[:3])
    assert sources(chosen["happy"]) == sources(faces[3:])


def test_select_keeps_input_order():
    happy = make_faces("happy", 20, start=3)
    input_order = sources(happy)

    chosen = fer.select(make_faces("angry", 3) + happy, balance=True, max_per_class=0, seed=1)

    positions = [input_order.index(source) for source in sources(chosen["happy"])]
    assert positions == sorted(positions)


def test_select_same_seed_same_faces():
    faces = make_faces("angry", 3) + make_faces("happy", 20, start=3)

    first = fer.select(faces, balance=True, max_per_class=0, seed=1)
    second = fer.select(faces, balance=True, max_per_class=0, seed=1)

    assert sources(first["happy"]) == sources(second["happy"])


# --- PNG folders -----------------------------------------------------------------------


def small_selection() -> dict[str, dict[str, list[fer.Face]]]:
    return {
        "train": {"angry": make_faces("angry", 2), "happy": make_faces("happy", 11, start=2)},
        "test": {"angry": make_faces("angry", 1, "PublicTest", start=13), "happy": make_faces("happy", 1, "PublicTest", start=14)},
    }


def test_write_pngs_file_layout(tmp_path):
    fer.write_pngs(tmp_path / "png", small_selection())

    names = sorted(str(path.relative_to(tmp_path / "png")) for path in (tmp_path / "png").rglob("*.png"))
    expected = (
        ["test/angry/angry0.png", "test/happy/happy0.png"]
        + ["train/angry/angry0.png", "train/angry/angry1.png"]
        + sorted(f"train/happy/happy{index}.png" for index in range(11))
    )
    assert names == expected


def test_write_pngs_keeps_pixels(tmp_path):
    selection = small_selection()

    fer.write_pngs(tmp_path / "png", selection)

    with Image.open(tmp_path / "png" / "train" / "happy" / "happy10.png") as image:
        assert image.mode == "L"
        assert np.array_equal(np.asarray(image), selection["train"]["happy"][10].pixels)


def test_write_pngs_sources_csv(tmp_path):
    fer.write_pngs(tmp_path / "png", small_selection())

    with open(tmp_path / "png" / "sources.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["path", "source"]
    assert rows[1:4] == [["train/angry/angry0.png", "face0"], ["train/angry/angry1.png", "face1"], ["train/happy/happy0.png", "face2"]]
    assert rows[-1] == ["test/happy/happy0.png", "face14"]
    assert len(rows) == 1 + 15


def test_write_pngs_replaces_old_folder(tmp_path):
    stale = tmp_path / "png" / "train" / "happy" / "happy99.png"
    write_face(stale, 1)

    fer.write_pngs(tmp_path / "png", small_selection())

    assert not stale.exists()
    assert [path.name for path in tmp_path.iterdir()] == ["png"]


def test_list_pngs_index_order(tmp_path):
    fer.write_pngs(tmp_path / "png", small_selection())

    paths, labels = fer.list_pngs(tmp_path / "png", "train")

    names = [path.name for path in paths]
    assert names == ["angry0.png", "angry1.png"] + [f"happy{index}.png" for index in range(11)]
    assert names.index("happy10.png") == names.index("happy9.png") + 1
    assert labels.tolist() == [0, 0] + [1] * 11
    assert labels.dtype == np.int32


def test_list_pngs_missing_folder_raises(tmp_path):
    (tmp_path / "png" / "test" / "angry").mkdir(parents=True)

    with pytest.raises(ESLPError, match=f"^{re.escape(str(tmp_path / 'png' / 'test' / 'happy'))}: folder not found"):
        fer.list_pngs(tmp_path / "png", "test")


def test_load_pngs_stacks_in_order(tmp_path):
    selection = small_selection()
    fer.write_pngs(tmp_path / "png", selection)
    paths, _ = fer.list_pngs(tmp_path / "png", "test")

    images = fer.load_pngs(paths)

    assert images.shape == (2, 48, 48, 1)
    assert np.array_equal(images[1, :, :, 0], selection["test"]["happy"][0].pixels)


# --- fer.prepare -----------------------------------------------------------------------


def test_prepare_folders_returns_metrics(tmp_path):
    layout = {
        "train": {
            "angry": ["Training_1.jpg", "Training_2.jpg", "Training_3.jpg"],
            "happy": [f"Training_{index}.jpg" for index in range(10, 15)],
        },
        "test": {
            "angry": ["PublicTest_1.jpg", "PrivateTest_2.jpg"],
            "happy": ["PublicTest_3.jpg", "PublicTest_4.jpg", "PrivateTest_5.jpg"],
        },
    }
    root = write_layout(tmp_path / "fer2013", layout)
    truncate_jpeg(root / "train" / "happy" / "Training_14.jpg")
    (root / "train" / "happy" / "notes.txt").write_text("labels checked\n", encoding="utf-8")

    metrics = fer.prepare(images_prepare_params(root), 42, tmp_path / "png", tmp_path / "report.csv")

    assert metrics == {
        "read": {
            "Training": {"angry": 3, "happy": 4},
            "PublicTest": {"angry": 1, "happy": 2},
            "PrivateTest": {"angry": 1, "happy": 1},
        },
        "written": {"train": {"angry": 3, "happy": 3}, "test": {"angry": 2, "happy": 2}},
        "skipped": 1,
        "ignored": 1,
        "resized": 0,
    }


def test_prepare_writes_pngs_and_report(tmp_path):
    root = write_layout(tmp_path / "fer2013", SMALL_LAYOUT)
    broken = root / "train" / "happy" / "Training_5.jpg"
    truncate_jpeg(broken)
    (root / "train" / "happy" / "notes.txt").write_text("labels checked\n", encoding="utf-8")

    fer.prepare(images_prepare_params(root), 42, tmp_path / "png", tmp_path / "report.csv")

    with open(tmp_path / "report.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [(row["where"], row["action"]) for row in rows] == [
        (str(broken), "skipped"),
        (str(root / "train" / "happy" / "notes.txt"), "ignored"),
    ]
    assert len(list((tmp_path / "png" / "train" / "happy").iterdir())) == 2
    assert len(list((tmp_path / "png" / "test" / "angry").iterdir())) == 1


def test_prepare_csv_with_random_split(tmp_path):
    rows = [(code, pixels_field(face_pixels(index)), "Training") for code in (ANGRY_CODE, HAPPY_CODE) for index in range(10)]
    path = write_fer_csv(tmp_path / "fer2013.csv", rows)
    params = images_prepare_params(path, format="csv", split="random", test_fraction=0.2)

    metrics = fer.prepare(params, 42, tmp_path / "png", tmp_path / "report.csv")

    assert metrics["written"] == {"train": {"angry": 8, "happy": 8}, "test": {"angry": 2, "happy": 2}}


def test_prepare_usage_without_test_raises(tmp_path):
    rows = [(code, pixels_field(face_pixels(index)), "Training") for code in (ANGRY_CODE, HAPPY_CODE) for index in range(3)]
    path = write_fer_csv(tmp_path / "fer2013.csv", rows)

    with pytest.raises(ESLPError, match="no angry faces in the test split"):
        fer.prepare(images_prepare_params(path, format="csv"), 42, tmp_path / "png", tmp_path / "report.csv")


def test_prepare_missing_csv_raises(tmp_path):
    params = images_prepare_params(tmp_path / "fer2013.csv", format="csv")

    with pytest.raises(ESLPError, match="fer2013.csv not found"):
        fer.prepare(params, 42, tmp_path / "png", tmp_path / "report.csv")
