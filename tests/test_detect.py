"""Finding faces in photos built from real FER2013 test faces pasted at known positions."""

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import PROJECT_ROOT
from eslp import FACE_SIZE
from eslp.detect import Box, FaceDetector, annotate, crop_face, read_photo
from eslp.errors import ESLPError

# The benchmark builds the same photos from real faces, so the tests share its code.
sys.path.insert(0, str(PROJECT_ROOT / "bench"))
from detect_recall import iou, paste, sample_faces  # noqa: E402

FACES_PER_CLASS = 60
FACES_PER_PHOTO = 6
FACE_SIDE = 160
"""Pasted faces are scaled from 48 to this many pixels, an estimate of a face's size in a group photo."""
RECALL_FLOORS = {"haar": 0.7, "mtcnn": 0.8}
"""NOTE: the goal is 90%, which neither detector reaches. On 600 real test faces, with the
default turns, the bundled cascade found 79.3% and MTCNN 87.3% (bench/detect_recall.py);
on this test's 120 faces, 74% and 82.5%. Both mostly miss faces in profile, tilted past 30
degrees or partly covered."""


def real_faces(shared_data: Path, per_class: int) -> list[Path]:
    root = shared_data / "fer2013"
    return sample_faces(root, "happy", per_class) + sample_faces(root, "angry", per_class)


def make_photo(faces: list[Path], background: str, seed: int) -> tuple[np.ndarray, list[tuple]]:
    """Paste faces, scaled to FACE_SIDE pixels, in a 3x2 grid on a plain or noisy background; return the truth boxes."""
    return paste(faces, background == "noise", FACE_SIDE, np.random.default_rng(seed))


@pytest.fixture(scope="module")
def one_face_photo(shared_data):
    """A plain photo with one real happy face that the default detector finds."""
    face = real_faces(shared_data, FACES_PER_CLASS)[0]
    photo, truths = make_photo([face], "plain", seed=7)
    assert any(iou(box.as_tuple(), truths[0]) >= 0.5 for box in FaceDetector().detect(photo))
    return photo, truths[0]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["haar", "mtcnn"])
def test_detector_finds_pasted_real_faces(shared_data, name):
    faces = real_faces(shared_data, FACES_PER_CLASS)
    detector = FaceDetector(name)
    found = 0
    for start in range(0, len(faces), FACES_PER_PHOTO):
        background = "plain" if start // FACES_PER_PHOTO % 2 == 0 else "noise"
        photo, truths = make_photo(faces[start : start + FACES_PER_PHOTO], background, seed=start)
        boxes = [box.as_tuple() for box in detector.detect(photo)]
        found += sum(any(iou(box, truth) >= 0.5 for box in boxes) for truth in truths)
    assert found / len(faces) >= RECALL_FLOORS[name], f"found {found} of {len(faces)} faces"


def test_turned_search_finds_tilted_face(shared_data, one_face_photo):
    """A face tilted by 30 degrees is missed upright but found when the search turns the photo."""
    photo, _ = one_face_photo
    tilted = np.asarray(Image.fromarray(photo).rotate(30, resample=Image.Resampling.BILINEAR, fillcolor=170))
    assert FaceDetector(angles=(0.0,)).detect(tilted) == []
    assert len(FaceDetector().detect(tilted)) == 1


@pytest.mark.slow
def test_faces_come_in_reading_order(shared_data):
    faces = real_faces(shared_data, FACES_PER_CLASS)
    photo, truths = make_photo(faces[:3] + faces[FACES_PER_CLASS : FACES_PER_CLASS + 3], "plain", seed=3)
    boxes = [box.as_tuple() for box in FaceDetector().detect(photo)]
    # The truth boxes are in reading order: the top row left to right, then the bottom row.
    order = [next(index for index, truth in enumerate(truths) if iou(box, truth) >= 0.5) for box in boxes]
    assert len(order) >= 5
    assert order == sorted(order)


def test_no_face_in_smooth_image():
    gradient = np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))
    assert FaceDetector().detect(gradient) == []


def test_tiny_image_has_no_face():
    assert FaceDetector().detect(np.full((8, 8), 128, dtype=np.uint8)) == []


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "I;16"])
def test_photo_modes_give_same_face(tmp_path, one_face_photo, mode):
    photo, truth = one_face_photo
    image = Image.fromarray(photo)
    if mode == "RGBA":
        # A transparent border: the flattening onto white must keep the face intact.
        image = image.convert("RGBA")
        alpha = np.full(photo.shape, 255, dtype=np.uint8)
        alpha[:20, :] = 0
        image.putalpha(Image.fromarray(alpha))
    elif mode == "CMYK":
        image = image.convert("CMYK")
    elif mode == "I;16":
        # A 16-bit grey PNG, as scanners and some cameras write.
        image = Image.fromarray(photo.astype(np.uint16) * 257)
    path = tmp_path / ("photo.jpg" if mode == "CMYK" else "photo.png")
    image.save(path)
    with Image.open(path) as saved:
        assert saved.mode == mode

    grey = read_photo(path)
    assert grey.shape == photo.shape
    boxes = FaceDetector().detect(grey)
    assert any(iou(box.as_tuple(), truth) >= 0.5 for box in boxes)


def test_exif_rotated_jpeg_is_searched_upright(tmp_path, one_face_photo):
    photo, truth = one_face_photo
    # Orientation 6 means: turn the stored pixels 90 degrees clockwise to show them, as
    # phones store portrait photos. So the stored pixels are the upright photo turned anticlockwise.
    sideways = Image.fromarray(photo).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "portrait.jpg"
    sideways.save(path, exif=exif, quality=95)

    # Stored sideways, the face is not found where it lies.
    x, y, side, _ = truth
    lying = (y, photo.shape[1] - x - side, side, side)
    assert all(iou(box.as_tuple(), lying) < 0.5 for box in FaceDetector().detect(np.asarray(sideways)))
    grey = read_photo(path)
    assert grey.shape == photo.shape
    assert any(iou(box.as_tuple(), truth) >= 0.5 for box in FaceDetector().detect(grey))


@pytest.mark.slow
def test_huge_photo_is_searched_at_reduced_size(tmp_path, shared_data):
    face = real_faces(shared_data, FACES_PER_CLASS)[0]
    small, [(x, y, side, _)] = make_photo([face], "plain", seed=7)
    scale = 10
    photo = np.full((6000, 8000), 170, dtype=np.uint8)
    face_pixels = np.asarray(Image.fromarray(small[y : y + side, x : x + side]).resize((side * scale // 2,) * 2))
    top, left = 2500, 5000
    photo[top : top + face_pixels.shape[0], left : left + face_pixels.shape[1]] = face_pixels
    path = tmp_path / "huge.jpg"
    Image.fromarray(photo).save(path, quality=90)

    grey = read_photo(path)
    assert grey.shape == (6000, 8000)
    boxes = FaceDetector().detect(grey)
    truth = (left, top, face_pixels.shape[1], face_pixels.shape[0])
    assert any(iou(box.as_tuple(), truth) >= 0.5 for box in boxes)


def test_crop_of_found_face_is_the_pasted_face(shared_data, one_face_photo):
    """The crop of a found face looks more like the pasted 48x48 face than like any other real face."""
    photo, truth = one_face_photo
    faces = real_faces(shared_data, FACES_PER_CLASS)
    box = next(box for box in FaceDetector().detect(photo) if iou(box.as_tuple(), truth) >= 0.5)
    crop = crop_face(photo, box).astype(np.float64)
    assert crop.shape == (FACE_SIZE, FACE_SIZE)

    def likeness(path: Path) -> float:
        with Image.open(path) as image:
            face = np.asarray(image.convert("L"), dtype=np.float64)
        return np.corrcoef(crop.ravel(), face.ravel())[0, 1]

    assert likeness(faces[0]) > max(likeness(other) for other in faces[1:])


def test_crop_past_the_edge_repeats_edge_pixels():
    photo = np.zeros((100, 100), dtype=np.uint8)
    photo[:, :50] = 200
    crop = crop_face(photo, Box(-20, 10, 60, 60), margin=0.0)
    assert crop.shape == (FACE_SIZE, FACE_SIZE)
    assert crop[:, :5].min() == 200


def test_unknown_detector_names_choices():
    with pytest.raises(ESLPError, match=r"--detector 'yolo': not a known detector .* haar, haar-alt, haar-alt2"):
        FaceDetector("yolo")


def test_cascade_file_that_opencv_rejects(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text("<opencv_storage></opencv_storage>\n", encoding="utf-8")
    with pytest.raises(ESLPError, match="OpenCV cannot load this cascade"):
        FaceDetector(str(path))


def test_annotate_unknown_suffix_writes_nothing(tmp_path, one_face_photo):
    photo, _ = one_face_photo
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    out = tmp_path / "out.xyz"
    with pytest.raises(ESLPError, match=r"unknown image suffix '.xyz'"):
        annotate(path, [Box(10, 10, 50, 50)], ["1: happy 0.90"], ["green"], out)
    assert not out.exists()
