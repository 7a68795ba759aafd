"""Find faces in ordinary photos and crop them as FER2013's faces are cropped.

The image model was trained on tight 48x48 crops, so a photo is first searched for
faces, with one of OpenCV's bundled Haar cascades or with MTCNN. Each face found is
cropped, turned grey and resized to 48x48 before it is scored.
"""

import dataclasses
import logging
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from eslp import FACE_SIZE
from eslp.errors import ESLPError
from eslp.fer import open_upright, to_grey, to_rgb
from eslp.io import atomic_path

logger = logging.getLogger(__name__)

CASCADES = {
    "haar": "haarcascade_frontalface_default.xml",
    "haar-alt": "haarcascade_frontalface_alt.xml",
    "haar-alt2": "haarcascade_frontalface_alt2.xml",
}
"""The frontal-face detectors that opencv-python-headless bundles, by the name ``--detector`` takes."""
DETECTORS = (*CASCADES, "mtcnn")
"""Every detector by name: the cascades and MTCNN."""
DEFAULT_DETECTOR = "haar"
DEFAULT_ANGLES = (0.0, -20.0, 20.0)
DEFAULT_MARGIN = 0.02
"""With the cascade's boxes, crops at margins 0, 0.02 and 0.05 correlate 0.654, 0.655 and
0.603 with the FER faces pasted there (bench/detect_recall.py --margin, 600 faces)."""
DEFAULT_MAX_SIDE = 1600
ANNOTATE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}
"""The file suffixes ``annotate`` writes, and the Pillow format of each."""
MIN_FACE = 24
"""The smallest face, in pixels of the searched image, that the cascades find (their window)."""
OVERLAP = 0.3
"""Boxes found at several angles that overlap more than this (intersection over union) are one face."""
CONTAINED = 0.6
"""A box with more than this share of its area inside a better box is part of that face."""


@dataclasses.dataclass(frozen=True)
class Box:
    """A face's box in pixels of the photo as it is shown (after its EXIF rotation)."""

    x: int
    y: int
    width: int
    height: int

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.width, self.height


def read_photo(path: Path) -> np.ndarray:
    """Decode a photo to a grey uint8 array, turned upright by its EXIF orientation.

    Raises ``OSError``, ``UnidentifiedImageError``, ``ValueError`` or
    ``Image.DecompressionBombError`` for files Pillow cannot decode.
    """
    return np.asarray(to_grey(open_upright(path)), dtype=np.uint8).copy()


def load_cascade(detector: str) -> cv2.CascadeClassifier:
    """Load a bundled cascade by name (see ``CASCADES``) or a cascade XML file by path."""
    if detector in CASCADES:
        path = Path(cv2.data.haarcascades) / CASCADES[detector]
    else:
        path = Path(detector)
        if path.suffix.lower() != ".xml" or not path.is_file():
            names = ", ".join(DETECTORS)
            raise ESLPError(
                f"--detector {detector!r}: not a known detector or a cascade XML file; "
                f"pass one of {names} or the path of an OpenCV cascade .xml file"
            )
    try:
        cascade = cv2.CascadeClassifier(str(path))
    except (cv2.error, SystemError):
        # OpenCV 4 raises instead of returning an empty classifier for some malformed files.
        cascade = None
    if cascade is None or cascade.empty():
        raise ESLPError(f"{path}: OpenCV cannot load this cascade; pass an OpenCV Haar or LBP cascade .xml file")
    return cascade


def _rotate(grey: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate ``grey`` by ``angle`` degrees on a canvas large enough for its corners.

    Return the rotated image and the 2x3 matrix that maps its pixels back to ``grey``'s.
    """
    height, width = grey.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_width = int(np.ceil(width * cos + height * sin))
    new_height = int(np.ceil(width * sin + height * cos))
    matrix[0, 2] += new_width / 2 - width / 2
    matrix[1, 2] += new_height / 2 - height / 2
    rotated = cv2.warpAffine(grey, matrix, (new_width, new_height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return rotated, cv2.invertAffineTransform(matrix)


class _Cascade:
    """An OpenCV cascade; a box's score is its number of neighbouring detections."""

    def __init__(self, detector: str, min_neighbors: int) -> None:
        self.cascade = load_cascade(detector)
        self.min_neighbors = min_neighbors

    def __call__(self, grey: np.ndarray) -> list[tuple[int, int, int, int, float]]:
        found, neighbours = self.cascade.detectMultiScale2(
            grey, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=(MIN_FACE, MIN_FACE)
        )
        return [(x, y, w, h, float(count)) for (x, y, w, h), count in zip(found, neighbours)]


class _MTCNN:
    """The MTCNN face detector: three small CNNs, with weights in its pip package. A box's score is its confidence.

    ``threshold`` is the confidence each of the three networks needs.
    """

    def __init__(self, threshold: float) -> None:
        # Imported here because it builds its TensorFlow models on import.
        from mtcnn import MTCNN

        self.model = MTCNN(device="CPU:0")
        self.threshold = threshold

    def __call__(self, grey: np.ndarray) -> list[tuple[int, int, int, int, float]]:
        thresholds = {"threshold_pnet": self.threshold, "threshold_rnet": self.threshold, "threshold_onet": self.threshold}
        faces = self.model.detect_faces(np.stack([grey] * 3, axis=-1), **thresholds)
        return [(*face["box"], float(face["confidence"])) for face in faces]


class FaceDetector:
    """A face detector run on a photo upright and turned by a few angles, so that tilted heads are found too.

    ``detector`` names a bundled cascade, ``mtcnn``, or a cascade .xml file.
    ``min_neighbors`` applies to the cascades and ``threshold`` to MTCNN.

    ``max_side`` bounds the longest side of the searched image: larger photos are searched
    at a reduced size, and the boxes are scaled back to the photo's pixels.
    """

    def __init__(
        self,
        detector: str = DEFAULT_DETECTOR,
        angles: tuple[float, ...] = DEFAULT_ANGLES,
        min_neighbors: int = 3,
        max_side: int = DEFAULT_MAX_SIDE,
        threshold: float = 0.4,
    ) -> None:
        self.name = detector
        self.find = _MTCNN(threshold) if detector == "mtcnn" else _Cascade(detector, min_neighbors)
        self.angles = angles
        self.max_side = max_side

    def detect(self, grey: np.ndarray) -> list[Box]:
        """Return the faces in a grey photo in reading order: by rows a face's height apart, then left to right.

        A box may reach past the photo's edges, for a face that the edge cuts; see ``clip``.
        """
        height, width = grey.shape
        scale = min(1.0, self.max_side / max(height, width))
        searched = grey
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            searched = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        if min(searched.shape) < MIN_FACE:
            return []

        boxes: list[list[int]] = []
        scores: list[float] = []
        for angle in self.angles:
            image, back = (searched, None) if angle == 0 else _rotate(searched, angle)
            for x, y, w, h, score in self.find(image):
                # A box found on the turned image keeps its size; its centre is mapped back.
                cx, cy = x + w / 2, y + h / 2
                if back is not None:
                    cx, cy = back @ np.array([cx, cy, 1.0])
                boxes.append([round((cx - w / 2) / scale), round((cy - h / 2) / scale), round(w / scale), round(h / scale)])
                # Upright boxes win ties, as the crop is taken upright.
                scores.append(score * (1.05 if angle == 0 else 1.0))
        if not boxes:
            return []
        best = np.asarray(cv2.dnn.NMSBoxes(boxes, scores, score_threshold=0.0, nms_threshold=OVERLAP)).reshape(-1)
        faces: list[Box] = []
        # NMSBoxes returns the boxes by score, highest first.
        for index in best:
            box = Box(*boxes[index])
            inside = clip(box, width, height)
            # A box found on a turned image can lie mostly outside the photo; it is no face.
            if inside.width * inside.height < box.width * box.height / 2:
                continue
            # A cascade also fires on part of a face (an eye and the nose) or on a face with
            # its surroundings. Such a box lies mostly inside a better one, so it is dropped.
            if all(_contained(box, face) < CONTAINED for face in faces):
                faces.append(box)
        return _reading_order(faces)


def _reading_order(faces: list[Box]) -> list[Box]:
    """Sort faces into rows, then each row left to right.

    A face joins a row when its centre is within half a face's height of the row's first face.
    """
    if not faces:
        return []
    half_height = float(np.median([face.height for face in faces])) / 2
    rows: list[list[Box]] = []
    for face in sorted(faces, key=lambda box: box.y + box.height / 2):
        centre = face.y + face.height / 2
        if rows and centre - (rows[-1][0].y + rows[-1][0].height / 2) <= half_height:
            rows[-1].append(face)
        else:
            rows.append([face])
    return [face for row in rows for face in sorted(row, key=lambda box: box.x)]


def _contained(a: Box, b: Box) -> float:
    """Return the share of the smaller of two boxes that lies inside the other."""
    across = max(0, min(a.x + a.width, b.x + b.width) - max(a.x, b.x))
    down = max(0, min(a.y + a.height, b.y + b.height) - max(a.y, b.y))
    return across * down / min(a.width * a.height, b.width * b.height)


def clip(box: Box, width: int, height: int) -> Box:
    """Return the part of ``box`` inside a ``width`` x ``height`` photo (empty when none is)."""
    x0, y0 = min(max(0, box.x), width), min(max(0, box.y), height)
    x1, y1 = max(min(width, box.x + box.width), x0), max(min(height, box.y + box.height), y0)
    return Box(x0, y0, x1 - x0, y1 - y0)


def crop_face(grey: np.ndarray, box: Box, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Cut ``box`` with ``margin`` (a fraction of its size on each side) out of ``grey`` as a 48x48 face.

    The crop is made square around the box's centre, as FER's crops are, and parts of it
    outside the photo repeat the photo's edge pixels.
    """
    side = max(box.width, box.height) * (1 + 2 * margin)
    cx, cy = box.x + box.width / 2, box.y + box.height / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1, y1 = x0 + int(round(side)), y0 + int(round(side))
    height, width = grey.shape
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    if pad:
        grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = Image.fromarray(grey[y0 + pad : y1 + pad, x0 + pad : x1 + pad])
    # The same resampling as for FER faces of other sizes (eslp.fer.load_face).
    return np.asarray(crop.resize((FACE_SIZE, FACE_SIZE), Image.Resampling.LANCZOS), dtype=np.uint8).copy()


def check_annotate_path(out: Path) -> None:
    """Raise ``ESLPError`` unless ``out`` ends with a suffix that ``annotate`` writes."""
    if out.suffix.lower() not in ANNOTATE_FORMATS:
        suffixes = ", ".join(sorted(set(ANNOTATE_FORMATS)))
        raise ESLPError(f"--annotate {out}: unknown image suffix {out.suffix!r}; end the name with one of {suffixes}")


def annotate(path: Path, boxes: list[Box], labels: list[str], colours: list[str], out: Path) -> None:
    """Write the photo at ``path``, upright and in colour, to ``out`` with each box and its label drawn on it.

    The format follows ``out``'s suffix (PNG, JPEG, ...). ``out`` is written whole or not at all.
    """
    check_annotate_path(out)
    image = to_rgb(open_upright(path))
    draw = ImageDraw.Draw(image)
    longest = max(image.size)
    line = max(2, round(longest / 400))
    font = ImageFont.load_default(size=max(12, round(longest / 60)))
    for box, label, colour in zip(boxes, labels, colours, strict=True):
        draw.rectangle((box.x, box.y, box.x + box.width - 1, box.y + box.height - 1), outline=colour, width=line)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        # The label sits on a filled strip above the box, or inside its top edge when the box touches the top.
        y = box.y - (bottom - top) - 2 * line if box.y >= (bottom - top) + 2 * line else box.y + line
        draw.rectangle((box.x, y, box.x + right - left + 2 * line, y + bottom - top + 2 * line), fill=colour)
        draw.text((box.x + line - left, y + line - top), label, fill="white", font=font)
    try:
        with atomic_path(out) as temporary:
            image.save(temporary, format=ANNOTATE_FORMATS[out.suffix.lower()])
    except OSError as error:
        raise ESLPError(f"--annotate {out}: cannot write the image ({error}); pass a path in a folder you can write to") from error
