"""Measure how many real FER2013 test faces the face detector finds in photos built from them.

Faces are scaled from 48 to ``--side`` pixels and pasted six to a photo (a 3x2 grid with
random shifts), on a plain grey background in even photos and on noise in odd ones. A
face counts as found when a detected box overlaps its pasted square with an intersection
over union of at least 0.5. Boxes that overlap every face by less than 0.1 are counted as
false. The crop of each found face, at ``--margin``, is compared with the 48x48 face pasted
there: how well a detector's boxes match FER2013's framing.

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

from eslp.detect import DEFAULT_ANGLES, DEFAULT_MARGIN, DETECTORS, FaceDetector, crop_face

logger = logging.getLogger(__name__)

FACES_PER_PHOTO = 6
MIN_IOU = 0.5
NO_FACE_IOU = 0.1
"""A box that overlaps every pasted face less than this is counted as a false box, on no face."""


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    across = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    down = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    overlap = across * down
    return overlap / (a[2] * a[3] + b[2] * b[3] - overlap)


def sample_faces(root: Path, label: str, count: int) -> list[Path]:
    """Return every k-th test face of a class, so that the sample spreads over the whole split."""
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


def likeness(crop: np.ndarray, face: Path) -> float:
    """Return the correlation of a detected face's 48x48 crop with the FER face that was pasted there."""
    with Image.open(face) as image:
        original = np.asarray(image.convert("L"), dtype=np.float64)
    return float(np.corrcoef(crop.astype(np.float64).ravel(), original.ravel())[0, 1])


def measure(root: Path, per_class: int, side: int, detector: FaceDetector, margin: float) -> dict:
    counts = {}
    likenesses = []
    seconds = 0.0
    for label in ("happy", "angry"):
        faces = sample_faces(root, label, per_class)
        rng = np.random.default_rng(0)
        for start in range(0, len(faces), FACES_PER_PHOTO):
            noisy = start // FACES_PER_PHOTO % 2 == 1
            group = faces[start : start + FACES_PER_PHOTO]
            photo, truths = paste(group, noisy, side, rng)
            began = time.perf_counter()
            detected = detector.detect(photo)
            seconds += time.perf_counter() - began
            boxes = [box.as_tuple() for box in detected]
            for box in detected:
                matches = [index for index, truth in enumerate(truths) if iou(box.as_tuple(), truth) >= MIN_IOU]
                if matches:
                    likenesses.append(likeness(crop_face(photo, box, margin), group[matches[0]]))
            key = (label, "noise" if noisy else "plain")
            found, total, false = counts.get(key, (0, 0, 0))
            found += sum(any(iou(box, truth) >= MIN_IOU for box in boxes) for truth in truths)
            false += sum(all(iou(box, truth) < NO_FACE_IOU for truth in truths) for box in boxes)
            counts[key] = (found, total + len(truths), false)
    return {"counts": counts, "likeness": float(np.mean(likenesses)) if likenesses else float("nan"), "seconds": seconds, "photos": sum(-(-total // FACES_PER_PHOTO) for _, total, _ in counts.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fer2013", type=Path, help="the FER2013 folder with test/happy and test/angry")
    parser.add_argument("--faces-per-class", type=int, default=400)
    parser.add_argument("--side", type=int, default=160, help="pixels each pasted face is scaled to")
    parser.add_argument("--detector", default="haar", help=f"one of {', '.join(DETECTORS)} or a cascade .xml file")
    parser.add_argument("--angles", default=",".join(f"{angle:g}" for angle in DEFAULT_ANGLES), help="turns searched, in degrees")
    parser.add_argument("--min-neighbors", type=int, default=3, help="for the cascades")
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN, help="crop margin for the likeness of crops")
    parser.add_argument("--threshold", type=float, default=0.4, help="for mtcnn: the confidence each of its three networks needs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    angles = tuple(float(angle) for angle in args.angles.split(","))
    detector = FaceDetector(args.detector, angles=angles, min_neighbors=args.min_neighbors, threshold=args.threshold)
    result = measure(args.fer2013, args.faces_per_class, args.side, detector, args.margin)
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
    logger.info(
        "crops at margin %g: mean correlation %.3f with the pasted FER faces (1 is the same pixels)",
        args.margin, result["likeness"],
    )


if __name__ == "__main__":
    main()
