"""FER2013 faces: read the Kaggle CSV or folder layout, split, balance and write PNG folders.

Both layouts give the same records: a 48x48 uint8 face, its class (angry or happy) and
its FER ``Usage`` (Training, PublicTest or PrivateTest). Rows or files that cannot be
used are skipped and listed in a report, or raise in strict mode.
"""

import csv
import dataclasses
import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from eslp import ANGRY, CLASSES, FACE_SIZE, HAPPY
from eslp.errors import ESLPError, shorten
from eslp.io import atomic_path, open_text
from eslp.progress import progress

logger = logging.getLogger(__name__)

FER_EMOTIONS = {0: ANGRY, 1: "disgust", 2: "fear", 3: HAPPY, 4: "sad", 5: "surprise", 6: "neutral"}
"""FER2013's integer labels. Only angry (0) and happy (3) are used."""
USAGES = ("Training", "PublicTest", "PrivateTest")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
SPLITS = ("train", "test")


@dataclasses.dataclass
class Face:
    pixels: np.ndarray
    label: str
    usage: str
    source: str
    """The face's origin: ``file.csv:LINE`` or the image path."""


@dataclasses.dataclass
class ReadReport:
    """The rows and files that reading skipped or ignored, and the count of converted images."""

    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    ignored: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    resized: int = 0

    def skip(self, where: str, reason: str, strict: bool) -> None:
        if strict:
            raise ESLPError(f"{where}: {reason}; fix or remove it, or set images_prepare.strict: false to skip it")
        self.skipped.append((where, reason))

    def rows(self) -> list[dict[str, str]]:
        return [{"where": where, "action": "skipped", "reason": reason} for where, reason in self.skipped] + [
            {"where": where, "action": "ignored", "reason": reason} for where, reason in self.ignored
        ]


def _parse_pixels(text: str) -> np.ndarray:
    values = text.split()
    if len(values) != FACE_SIZE * FACE_SIZE:
        raise ValueError(f"pixels has {len(values)} values, expected {FACE_SIZE * FACE_SIZE}")
    try:
        pixels = np.array([int(value) for value in values], dtype=np.int64)
    except ValueError:
        raise ValueError(f"pixels contains a value that is not a whole number: {shorten(text)}") from None
    if pixels.min() < 0 or pixels.max() > 255:
        bad = pixels[(pixels < 0) | (pixels > 255)][0]
        raise ValueError(f"pixel value {bad} is outside 0-255")
    return pixels.astype(np.uint8).reshape(FACE_SIZE, FACE_SIZE)


def read_csv(path: Path, strict: bool) -> tuple[list[Face], ReadReport]:
    """Read the angry and happy rows of a Kaggle ``fer2013.csv`` (``emotion,pixels,Usage``)."""
    faces: list[Face] = []
    report = ReadReport()
    with open_text(path, newline="") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        names = [name.strip() for name in header or []]
        if not {"emotion", "pixels", "Usage"} <= set(names):
            raise ESLPError(
                f"{path}:1: header {shorten(header)} lacks the columns emotion, pixels, Usage; "
                "pass the original Kaggle fer2013.csv or set images_prepare.format: folders"
            )
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ESLPError(f"{path}:1: header names the column {', '.join(repeated)} twice; keep one of each")
        columns = {name: index for index, name in enumerate(names)}
        for row in progress(reader, f"reading {path}", unit="row"):
            where = f"{path}:{reader.line_num}"
            if not row:
                continue
            if len(row) != len(header):
                report.skip(where, f"row has {len(row)} fields, expected {len(header)}", strict)
                continue
            emotion_text = row[columns["emotion"]].strip()
            try:
                emotion = int(emotion_text)
            except ValueError:
                report.skip(where, f"emotion {shorten(emotion_text)} is not a whole number 0-6", strict)
                continue
            if emotion not in FER_EMOTIONS:
                report.skip(where, f"emotion {emotion} is not a FER2013 label 0-6", strict)
                continue
            usage = row[columns["Usage"]].strip()
            if usage not in USAGES:
                report.skip(where, f"Usage {shorten(usage)} is not one of {', '.join(USAGES)}", strict)
                continue
            label = FER_EMOTIONS[emotion]
            if label not in CLASSES:
                report.ignored.append((where, f"emotion {emotion} ({label}) is not angry or happy"))
                continue
            try:
                pixels = _parse_pixels(row[columns["pixels"]])
            except ValueError as error:
                report.skip(where, str(error), strict)
                continue
            faces.append(Face(pixels, label, usage, where))
    return faces, report


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert a Pillow image of any mode to RGB, with transparent areas flattened onto white."""
    # NOTE: without the flattening, transparent areas would turn black.
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def to_grey(image: Image.Image) -> Image.Image:
    """Convert a Pillow image of any mode to 8-bit grey, as FER's faces are."""
    if image.mode == "L":
        return image
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = to_rgb(image)
    elif image.mode.startswith("I;16"):
        # Pillow's conversion clips 16-bit values at 255 instead of scaling them.
        return Image.fromarray((np.asarray(image, dtype=np.float64) / 257).round().astype(np.uint8))
    elif image.mode in ("I", "F"):
        # 32-bit integer and float images have no fixed range, so their own range is stretched to 0-255.
        pixels = np.asarray(image, dtype=np.float64)
        span = pixels.max() - pixels.min()
        scaled = (pixels - pixels.min()) / span * 255 if span > 0 else np.zeros_like(pixels)
        return Image.fromarray(scaled.round().astype(np.uint8))
    return image.convert("L")


def open_upright(path: Path) -> Image.Image:
    """Open and decode an image, turned upright by its EXIF orientation tag.

    Cameras store portrait photos sideways with such a tag; without the turn, a face in
    them lies on its side.
    """
    with Image.open(path) as image:
        image.load()
        return ImageOps.exif_transpose(image)


def load_face(path: Path) -> tuple[np.ndarray, bool]:
    """Decode an image file to a 48x48 grayscale face; also return whether it had to be converted.

    Raises ``OSError`` or ``UnidentifiedImageError`` for files Pillow cannot decode.
    """
    image = open_upright(path)
    converted = image.mode != "L" or image.size != (FACE_SIZE, FACE_SIZE)
    image = to_grey(image)
    if image.size != (FACE_SIZE, FACE_SIZE):
        # A centre crop to a square keeps the face's proportions, as FER's crops are square.
        image = ImageOps.fit(image, (FACE_SIZE, FACE_SIZE), method=Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).copy(), converted


def _usage_of(folder: str, filename: str) -> str:
    if folder == "train":
        return "Training"
    prefix = filename.split("_", 1)[0]
    return prefix if prefix in ("PublicTest", "PrivateTest") else "PublicTest"


def read_folders(root: Path, strict: bool) -> tuple[list[Face], ReadReport]:
    """Read ``root/{train,test}/{angry,happy}/*`` of the Kaggle "FER2013 in folders" layout.

    Other emotion folders, stray files and non-image files are ignored and reported.
    """
    faces: list[Face] = []
    report = ReadReport()
    if not root.is_dir():
        raise ESLPError(
            f"{root}: FER2013 folder not found; place the Kaggle train/ and test/ folders there "
            "or set images_prepare.source"
        )
    present = [split for split in SPLITS if (root / split).is_dir()]
    if not present:
        raise ESLPError(f"{root}: no train/ or test/ folder found; expected the Kaggle layout train/happy/*.jpg, ...")
    for entry in sorted(root.iterdir()):
        if entry.name not in SPLITS:
            report.ignored.append((str(entry), "not a train/ or test/ folder"))
    for split in present:
        split_dir = root / split
        for entry in sorted(split_dir.iterdir()):
            if entry.name not in CLASSES:
                kind = "folder of another emotion" if entry.is_dir() else "not a class folder"
                report.ignored.append((str(entry), kind))
        for label in CLASSES:
            class_dir = split_dir / label
            if not class_dir.is_dir():
                raise ESLPError(
                    f"{class_dir}: folder not found; {split_dir} must contain both angry/ and happy/"
                )
            for path in progress(sorted(class_dir.iterdir()), f"reading {class_dir}"):
                if path.name.startswith(".") or not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
                    report.ignored.append((str(path), "not an image file"))
                    continue
                try:
                    pixels, converted = load_face(path)
                except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
                    report.skip(str(path), f"cannot decode image: {error}", strict)
                    continue
                report.resized += converted
                faces.append(Face(pixels, label, _usage_of(split, path.name), str(path)))
    return faces, report


def count_by_usage(faces: list[Face]) -> dict[str, dict[str, int]]:
    counts = Counter((face.usage, face.label) for face in faces)
    usages = sorted({face.usage for face in faces}, key=lambda usage: USAGES.index(usage))
    return {usage: {label: counts[usage, label] for label in CLASSES} for usage in usages}


def assign_splits(faces: list[Face], rule: str, test_fraction: float, seed: int) -> dict[str, list[Face]]:
    """Split faces into train and test, by FER's ``Usage`` or by a seeded random fraction per class."""
    splits: dict[str, list[Face]] = {split: [] for split in SPLITS}
    if rule == "usage":
        for face in faces:
            splits["train" if face.usage == "Training" else "test"].append(face)
        return splits
    rng = np.random.default_rng(seed)
    for label in CLASSES:
        members = [face for face in faces if face.label == label]
        order = rng.permutation(len(members))
        test_count = int(np.floor(test_fraction * len(members) + 0.5))
        test_indices = set(order[:test_count].tolist())
        for index, face in enumerate(members):
            splits["test" if index in test_indices else "train"].append(face)
    return splits


def select(faces: list[Face], balance: bool, max_per_class: int, seed: int) -> dict[str, list[Face]]:
    """Pick the faces of one split for each class: equal counts when balancing, at most ``max_per_class``.

    The kept faces are a seeded random subset, listed in their input order.
    """
    by_label = {label: [face for face in faces if face.label == label] for label in CLASSES}
    limit = min(len(members) for members in by_label.values()) if balance else None
    if max_per_class:
        limit = max_per_class if limit is None else min(limit, max_per_class)
    rng = np.random.default_rng(seed)
    chosen = {}
    for label in CLASSES:
        members = by_label[label]
        if limit is None or len(members) <= limit:
            chosen[label] = members
        else:
            keep = np.sort(rng.choice(len(members), size=limit, replace=False))
            chosen[label] = [members[index] for index in keep]
    return chosen


def write_pngs(out_dir: Path, selected: dict[str, dict[str, list[Face]]]) -> None:
    """Write ``out_dir/{split}/{class}/{class}{i}.png`` plus ``sources.csv``, replacing ``out_dir`` whole."""
    with atomic_path(out_dir) as temporary:
        rows = []
        for split, by_label in selected.items():
            for label, faces in by_label.items():
                folder = temporary / split / label
                folder.mkdir(parents=True)
                for index, face in enumerate(faces):
                    name = f"{label}{index}.png"
                    Image.fromarray(face.pixels, mode="L").save(folder / name)
                    rows.append((f"{split}/{label}/{name}", face.source))
        with open(temporary / "sources.csv", "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["path", "source"])
            writer.writerows(rows)


def list_pngs(png_dir: Path, split: str) -> tuple[list[Path], np.ndarray]:
    """List a split's PNGs as ``(paths, labels)``, angry (0) then happy (1), each in index order."""
    paths: list[Path] = []
    labels: list[int] = []
    for label_index, label in enumerate(CLASSES):
        folder = png_dir / split / label
        if not folder.is_dir():
            raise ESLPError(f"{folder}: folder not found; run `dvc repro images_prepare` first")
        # Only names that images_prepare writes count, so stray files cannot shift the rows.
        pattern = re.compile(rf"{label}(\d+)\.png")
        indexed = []
        for path in folder.iterdir():
            match = pattern.fullmatch(path.name)
            if match:
                indexed.append((int(match.group(1)), path))
        files = [path for _, path in sorted(indexed)]
        paths.extend(files)
        labels.extend([label_index] * len(files))
    return paths, np.array(labels, dtype=np.int32)


def load_pngs(paths: list[Path]) -> np.ndarray:
    """Decode PNG faces into one ``(n, 48, 48, 1)`` uint8 array, in the order of ``paths``."""
    images = np.empty((len(paths), FACE_SIZE, FACE_SIZE, 1), dtype=np.uint8)
    for index, path in enumerate(progress(paths, "decoding PNG faces")):
        images[index, :, :, 0] = load_face(path)[0]
    return images


def write_report(path: Path, report: ReadReport) -> None:
    with atomic_path(path) as temporary:
        with open(temporary, "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=["where", "action", "reason"])
            writer.writeheader()
            writer.writerows(report.rows())


def _empty_split_message(params, split: str, label: str, faces: list[Face], report: ReadReport, report_path: Path) -> str:
    total = sum(face.label == label for face in faces)
    message = f"{params.source}: no {label} faces in the {split} split ({total} {label} faces read in all"
    if report.skipped:
        where, reason = report.skipped[0]
        message += f", {len(report.skipped)} rows or files skipped, the first {where}: {reason}; see {report_path}"
    message += "); "
    if params.split == "random":
        return message + f"images_prepare.test_fraction {params.test_fraction} leaves none there, so add faces or change it"
    return message + "FER's Usage puts none there, so add them to the source or set images_prepare.split: random"


def prepare(params, seed: int, out_dir: Path, report_path: Path) -> dict:
    """Read FER2013, split, balance and write the PNG folders; return the stage's metrics."""
    source = Path(params.source)
    if params.format == "csv":
        if not source.is_file():
            raise ESLPError(
                f"{source}: fer2013.csv not found; place the Kaggle file there or set images_prepare.source"
            )
        faces, report = read_csv(source, params.strict)
    else:
        faces, report = read_folders(source, params.strict)
    read_counts = count_by_usage(faces)
    # The report is written first, so that it explains a failure below.
    write_report(report_path, report)

    splits = assign_splits(faces, params.split, params.test_fraction, seed)
    selected = {}
    for split, members in splits.items():
        for label in CLASSES:
            if not any(face.label == label for face in members):
                raise ESLPError(_empty_split_message(params, split, label, faces, report, report_path))
        selected[split] = select(members, params.balance, params.max_per_class, seed)
    write_pngs(out_dir, selected)

    written = {split: {label: len(faces) for label, faces in by_label.items()} for split, by_label in selected.items()}
    logger.info(
        "images_prepare: read %d faces from %s (%d skipped, %d ignored, %d resized), wrote %s train / %s test "
        "angry+happy to %s",
        len(faces), source, len(report.skipped), len(report.ignored), report.resized,
        "+".join(str(count) for count in written["train"].values()),
        "+".join(str(count) for count in written["test"].values()),
        out_dir,
    )
    return {
        "read": read_counts,
        "written": written,
        "skipped": len(report.skipped),
        "ignored": len(report.ignored),
        "resized": report.resized,
    }
