"""Predictions of the trained models on new faces and sentences, for the ``eslp predict`` command."""

import dataclasses
import functools
import json
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
from PIL import Image, UnidentifiedImageError

from eslp import ANGRY, FACE_SIZE, HAPPY
from eslp.detect import Box, FaceDetector, clip, crop_face, read_photo
from eslp.errors import ESLPError, shorten
from eslp.fer import IMAGE_SUFFIXES, load_face
from eslp.io import open_text
from eslp.language import PARAMETERS_FILE, VOCABULARY_FILE
from eslp.params import PARAMS_FILE, read_stage_params
from eslp.progress import progress
from eslp.text import encode, read_vocabulary

logger = logging.getLogger(__name__)

NEUTRAL = "neutral"
BATCH_SIZE = 256
MODEL_STAGES = {
    "image_model": "image_finetune",
    "language_model": "language_train",
    "feature_extractor": "image_bottleneck",
    "combined_model": "combine",
}
"""Each model file the command loads, and the DVC stage that writes it."""
DECODE_ERRORS = (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError)


def decode_failure(path: Path, error: Exception) -> str:
    """Describe why an image file could not be decoded, and what to do about it."""
    if not path.exists():
        return "file not found; check the path"
    if path.is_dir():
        return "a folder, not an image file; pass an image file, or the folder with --images"
    if isinstance(error, Image.DecompressionBombError):
        return f"image too large to decode safely ({error}); pass a smaller image"
    return f"cannot decode image: {error}; pass a PNG or JPEG image"


@dataclasses.dataclass
class Face:
    """A face image file, decoded to 48x48 grey pixels, or the reason it could not be."""

    path: Path
    pixels: np.ndarray | None = None
    error: str = ""


def read_face(path: Path) -> Face:
    """Decode ``path`` as in training (any size or mode to 48x48 grey); a failure is kept as ``error``."""
    try:
        pixels, _ = load_face(path)
    except DECODE_ERRORS as error:
        return Face(path, error=decode_failure(path, error))
    return Face(path, pixels=pixels)


@dataclasses.dataclass
class Photo:
    """The faces found in a photo: each box and its 48x48 crop, or the reason there are none."""

    path: Path
    boxes: list[Box] = dataclasses.field(default_factory=list)
    crops: list[np.ndarray] = dataclasses.field(default_factory=list)
    error: str = ""
    no_face: bool = False
    """True when the photo was decoded but the detector found no face in it."""


def find_faces(path: Path, detector: FaceDetector, margin: float) -> Photo:
    """Detect the faces in the photo at ``path`` and crop each as a FER face; failures are kept as ``error``."""
    try:
        grey = read_photo(path)
    except DECODE_ERRORS as error:
        return Photo(path, error=decode_failure(path, error))
    boxes = detector.detect(grey)
    height, width = grey.shape
    if not boxes:
        return Photo(path, error=f"no face found in the {width}x{height} image by detector {detector.name}", no_face=True)
    # A face cut by the photo's edge is cropped around its whole box and reported by the part inside.
    return Photo(path, [clip(box, width, height) for box in boxes], [crop_face(grey, box, margin) for box in boxes])


def list_images(folder: Path) -> list[Path]:
    """Return the image files directly in ``folder`` (by suffix, hidden files left out), sorted by name."""
    if not folder.is_dir():
        raise ESLPError(f"{folder}: folder not found; pass --images a folder of PNG or JPEG files")
    return sorted(
        path for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES
    )


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Return ``(line number, sentence)`` for each non-blank line of a UTF-8 text file."""
    if not path.is_file():
        raise ESLPError(f"{path}: file not found; pass --texts a UTF-8 file with one sentence per line")
    with open_text(path) as file:
        return [(number, line.strip()) for number, line in enumerate(file, start=1) if line.strip()]


class Predictor:
    """The pipeline's models, loaded on first use, applied to faces and sentences.

    ``models_dir`` contains the ``.keras`` files; ``project_dir`` contains ``params.yaml``
    (the sentence thresholds) and ``data/language`` (the vocabulary and ``max_length``).
    """

    def __init__(self, models_dir: Path, project_dir: Path) -> None:
        self.models_dir = models_dir
        self.project_dir = project_dir
        self._models: dict[str, keras.Model] = {}
        self._vocabulary: dict[str, int] | None = None
        self._max_length = 0

    @functools.cached_property
    def _thresholds(self) -> tuple[float, float]:
        # Read only when a sentence is classified, so that faces alone need no params.yaml.
        path = self.project_dir / PARAMS_FILE
        if not path.is_file():
            raise ESLPError(
                f"{path}: not found; sentence classes use the thresholds in params.yaml, "
                "so run eslp predict in the project folder or pass --project that folder"
            )
        sentences = read_stage_params("sentences", path).sentences
        return sentences.happy_threshold, sentences.angry_threshold

    @property
    def happy_threshold(self) -> float:
        return self._thresholds[0]

    @property
    def angry_threshold(self) -> float:
        return self._thresholds[1]

    def model(self, name: str) -> keras.Model:
        if name not in self._models:
            path = self.models_dir / f"{name}.keras"
            if not path.is_file():
                raise ESLPError(
                    f"{path}: model not found; run `dvc repro {MODEL_STAGES[name]}` to build it, "
                    "or pass --models the folder that contains it"
                )
            # safe_mode rejects models that would run arbitrary code when loaded (Lambda layers).
            try:
                self._models[name] = keras.models.load_model(path, safe_mode=True)
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
                raise ESLPError(
                    f"{path}: cannot load the model ({shorten(str(error), 200)}); "
                    f"rebuild it with `dvc repro --force {MODEL_STAGES[name]}`"
                ) from error
        return self._models[name]

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._vocabulary is None:
            language_dir = self.project_dir / "data" / "language"
            parameters_path = language_dir / PARAMETERS_FILE
            if not parameters_path.is_file():
                raise ESLPError(f"{parameters_path}: not found; run `dvc repro language_prepare` to build it")
            self._max_length = int(json.loads(parameters_path.read_text(encoding="utf-8"))["max_length"])
            self._vocabulary = read_vocabulary(language_dir / VOCABULARY_FILE)
        return encode(texts, self._vocabulary, self._max_length)

    def _predict(self, name: str, inputs, count: int, description: str) -> np.ndarray:
        """Run model ``name`` in batches, with a progress bar on a terminal when there is more than one batch."""
        model = self.model(name)
        starts = range(0, count, BATCH_SIZE)
        if count > BATCH_SIZE:
            starts = progress(starts, description, total=-(-count // BATCH_SIZE), unit="batch")
        parts = []
        for start in starts:
            if isinstance(inputs, dict):
                batch = {key: value[start : start + BATCH_SIZE] for key, value in inputs.items()}
            else:
                batch = inputs[start : start + BATCH_SIZE]
            parts.append(np.asarray(model.predict_on_batch(batch)).reshape(-1))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def image_probabilities(self, faces: np.ndarray) -> np.ndarray:
        """Happy probabilities of the image model for ``(n, 48, 48)`` uint8 faces."""
        faces = np.asarray(faces, dtype=np.float32).reshape(-1, FACE_SIZE, FACE_SIZE, 1)
        return self._predict("image_model", faces, len(faces), "image model")

    def text_scores(self, texts: list[str]) -> np.ndarray:
        """Sentiment scores in [0, 1] of the language model."""
        return self._predict("language_model", self._encode(texts), len(texts), "language model")

    def combined_probabilities(self, faces: np.ndarray, texts: list[str]) -> np.ndarray:
        """Happy probabilities of the combined model for faces paired with sentences, row by row."""
        faces = np.asarray(faces, dtype=np.float32).reshape(-1, FACE_SIZE, FACE_SIZE, 1)
        features = self._predict("feature_extractor", faces, len(faces), "VGG16 features")
        features = features.reshape(len(faces), -1)
        inputs = {"features": features, "tokens": self._encode(texts)}
        return self._predict("combined_model", inputs, len(texts), "combined model")

    def text_class(self, score: float) -> str:
        if score > self.happy_threshold:
            return HAPPY
        if score < self.angry_threshold:
            return ANGRY
        return NEUTRAL


def probability_class(probability: float) -> str:
    """Return the class of a happy probability: happy above 0.5, as in training."""
    return HAPPY if probability > 0.5 else ANGRY


def decode_all(paths: list[Path]) -> Iterator[Face]:
    for path in progress(paths, "decoding images"):
        yield read_face(path)


def find_all(paths: list[Path], detector: FaceDetector, margin: float) -> Iterator[Photo]:
    for path in progress(paths, "finding faces"):
        yield find_faces(path, detector, margin)
