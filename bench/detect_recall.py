"""Measure how many real FER2013 test faces the face detector finds in photos built from them.

Faces are scaled from 48 to ``--side`` pixels and pasted six to a photo (a 3x2 grid with
random shifts), on a plain grey background in even photos and on noise in odd ones. A
face counts as found when a detected box overlaps its pasted square with an intersection
over union of at least 0.5. Boxes that overlap no face are counted as false.

    python bench/detect_recall.py ../shared/data/fer2013 --faces-per-class 400
"""

import argparse
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
from PIL import Image

from eslp.detect import CASCADES, DEFAULT_ANGLES, FaceDetector

logger = logging.getLogger(__name__)

FACES_PER_PHOTO = 6
MIN_IOU = 0.5


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    across = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    down = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    overlap = across * down
    return overlap / (a[2] * a[3] + b[2] * b[3] - overlap)


def sample_faces(root: Path, label: str, count: int) -> list[Path]:
    """Every k-th test face of a class, so that the sample spreads over the whole split."""
    files = sorted((root / "test" / label).glob("*.jpg"))
    if count >= len(files):
        return files
    return files[:: len(files) // count][:count]


def paste(faces: list[Path], noisy: bool, side: int, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple]]:
    gap = side // 2
    width, height = 3 * (side + gap) + gap, 2 * (side + gap) + gap
    if noisy:
        photo = rng.integers(0, 256, size=(height, width), dtype=np.uint8)
    else:
        photo = np.full((height, width), 170, dtype=np.uint8)
    truths = []
    for index, path in enumerate(faces):
        row, column = divmod(index, 3)
        x = gap + column * (side + gap) + int(rng.integers(-gap // 4, gap // 4))
        y = gap + row * (side + gap) + int(rng.integers(-gap // 4, gap // 4))
        with Image.open(path) as face:
            photo[y : y + side, x : x + side] = np.asarray(face.convert("L").resize((side, side), Image.Resampling.BICUBIC))
        truths.append((x, y, side, side))
    return photo, truths


def measure(root: Path, per_class: int, side: int, detector: FaceDetector) -> dict:
    counts = {}
    seconds = 0.0
    for label in ("happy", "angry"):
        faces = sample_faces(root, label, per_class)
        rng = np.random.default_rng(0)
        for start in range(0, len(faces), FACES_PER_PHOTO):
            noisy = start // FACES_PER_PHOTO % 2 == 1
            photo, truths = paste(faces[start : start + FACES_PER_PHOTO], noisy, side, rng)
            began = time.perf_counter()
            boxes = [box.as_tuple() for box in detector.detect(photo)]
            seconds += time.perf_counter() - began
            key = (label, "noise" if noisy else "plain")
            found, total, false = counts.get(key, (0, 0, 0))
            found += sum(any(iou(box, truth) >= MIN_IOU for box in boxes) for truth in truths)
            false += sum(all(iou(box, truth) < MIN_IOU for truth in truths) for box in boxes)
            counts[key] = (found, total + len(truths), false)
    return {"counts": counts, "seconds": seconds, "photos": sum(-(-total // FACES_PER_PHOTO) for _, total, _ in counts.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fer2013", type=Path, help="the FER2013 folder with test/happy and test/angry")
    parser.add_argument("--faces-per-class", type=int, default=400)
    parser.add_argument("--side", type=int, default=160, help="pixels each pasted face is scaled to")
    parser.add_argument("--detector", default="haar", help=f"one of {', '.join(CASCADES)} or a cascade .xml file")
    parser.add_argument("--angles", default=",".join(f"{angle:g}" for angle in DEFAULT_ANGLES), help="turns searched, in degrees")
    parser.add_argument("--min-neighbors", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    angles = tuple(float(angle) for angle in args.angles.split(","))
    detector = FaceDetector(args.detector, angles=angles, min_neighbors=args.min_neighbors)
    result = measure(args.fer2013, args.faces_per_class, args.side, detector)
    logger.info(
        "detector %s, angles %s, min_neighbors %d, faces %d px, on %s (%d cores)",
        args.detector, args.angles, args.min_neighbors, args.side, platform.processor() or platform.machine(),
        len(os.sched_getaffinity(0)),
    )
    found_all = total_all = false_all = 0
    for (label, background), (found, total, false) in sorted(result["counts"].items()):
        logger.info("%s on %s: found %d of %d (%.1f%%), %d false boxes", label, background, found, total, 100 * found / total, false)
        found_all, total_all, false_all = found_all + found, total_all + total, false_all + false
    logger.info(
        "all: found %d of %d (%.1f%%), %d false boxes in %d photos, %.2f s per photo",
        found_all, total_all, 100 * found_all / total_all, false_all, result["photos"], result["seconds"] / result["photos"],
    )


if __name__ == "__main__":
    main()
