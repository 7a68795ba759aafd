"""The ``eslp`` command: ``eslp predict`` applies the trained models to faces and sentences."""

import argparse
import csv
import json
import logging
import sys
from pathlib import Path
from typing import TextIO

import numpy as np

from eslp.detect import CASCADES, DEFAULT_DETECTOR, DEFAULT_MARGIN, check_annotate_path
from eslp import HAPPY
from eslp.errors import ESLPError

logger = logging.getLogger("eslp.predict")

DESCRIPTION = """\
Predict with the models that the pipeline trained. --image finds the faces in a photo and
gives each one's box and the image model's happy probability (--no-detect scores the whole
image as one face crop). --text gives the language model's sentiment score and its class at
the sentences thresholds of params.yaml (neutral between them); with --image too, each face
is also scored with the sentence by the combined model. --images and --texts predict in
batches and write CSV, one row per face or sentence.
"""


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eslp", description="ESLP: sentiment scores for faces through sentences.")
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="predict with the trained models", description=DESCRIPTION)
    predict.add_argument("--image", type=Path, metavar="FILE", help="a photo or face image (PNG, JPEG, ...; any size or mode)")
    predict.add_argument("--text", metavar="TEXT", help="a sentence")
    predict.add_argument("--images", type=Path, metavar="DIR", help="a folder of photos, one CSV row per face found")
    predict.add_argument("--texts", type=Path, metavar="FILE", help="a UTF-8 file of sentences, one a line (blank lines skipped)")
    predict.add_argument("--out", type=Path, metavar="FILE", help="write batch results to FILE instead of standard output")
    predict.add_argument("--json", action="store_true", help="print JSON instead of text (or CSV in batch mode)")
    faces = predict.add_argument_group("finding faces")
    faces.add_argument(
        "--no-detect", dest="detect", action="store_false",
        help="score each image as one face crop, as the pipeline's 48x48 faces are, without searching it for faces",
    )
    faces.add_argument(
        "--detector", metavar="NAME",
        help=f"face detector: one of OpenCV's bundled cascades ({', '.join(CASCADES)}), mtcnn (a CNN that finds "
        f"more faces but frames them less like FER2013), or the path of a cascade .xml file (default: {DEFAULT_DETECTOR})",
    )
    faces.add_argument(
        "--margin", type=_margin, metavar="FRACTION",
        help=f"widen each face's box by this fraction of its size on every side before cropping (default: {DEFAULT_MARGIN})",
    )
    faces.add_argument(
        "--annotate", type=Path, metavar="FILE",
        help="with --image: write the photo with each face's box and label to FILE (.png, .jpg, .webp, .bmp or .tif)",
    )
    faces.add_argument("--crops", type=Path, metavar="DIR", help="write each face's 48x48 crop, as the image model saw it, to DIR as PNG")
    predict.add_argument(
        "--models", type=Path, metavar="DIR",
        help="folder with the .keras models (default: the pipeline's outputs in PROJECT/models)",
    )
    predict.add_argument(
        "--project", type=Path, metavar="DIR", default=Path("."),
        help="project folder with params.yaml and data/language (default: the current folder)",
    )
    return parser


def _margin(value: str) -> float:
    try:
        margin = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number; pass a fraction such as 0.1") from None
    if not 0 <= margin <= 1:
        raise argparse.ArgumentTypeError(f"{value} is outside [0, 1]; pass a fraction of the face's size such as 0.1")
    return margin


def _check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    inputs = [name for name in ("image", "text", "images", "texts") if getattr(args, name) is not None]
    if not inputs:
        parser.error("give --image FILE, --text TEXT (or both), --images DIR or --texts FILE")
    if (args.images is not None or args.texts is not None) and len(inputs) > 1:
        parser.error(f"--{inputs[0]} and --{inputs[1]} cannot be used together; batch options run alone")
    if args.out is not None and args.images is None and args.texts is None:
        parser.error("--out is for batch mode (--images or --texts)")
    if args.annotate is not None and args.image is None:
        parser.error("--annotate draws on the photo of --image; give --image FILE")
    if args.crops is not None and args.image is None and args.images is None:
        parser.error("--crops writes the faces of --image or --images; give one of them")
    if not args.detect:
        for name in ("annotate", "crops", "detector", "margin"):
            if getattr(args, name) is not None:
                parser.error(f"--{name} is for finding faces in photos; drop --no-detect to use it")
    if args.annotate is not None:
        try:
            check_annotate_path(args.annotate)
        except ESLPError as error:
            parser.error(str(error))
        if args.annotate.resolve() == args.image.resolve():
            parser.error(f"--annotate {args.annotate} would overwrite the photo of --image; write to another file")
    args.detector = DEFAULT_DETECTOR if args.detector is None else args.detector
    args.margin = DEFAULT_MARGIN if args.margin is None else args.margin


# --- one face and/or one sentence ------------------------------------------------------


def _box(box) -> dict:
    return {"x": box.x, "y": box.y, "width": box.width, "height": box.height}


MAX_NAME_BYTES = 200
"""Crop file names are cut to this many bytes, below the usual 255-byte limit of file systems."""


def _make_crops_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ESLPError(f"--crops {folder}: cannot create the folder ({error}); pass a folder you can write to") from error


def _write_crops(photo, folder: Path) -> None:
    from PIL import Image

    # The photo's full name keeps the crops of photo.jpg and photo.png apart.
    name = photo.path.name.encode("utf-8", "surrogateescape")[:MAX_NAME_BYTES].decode("utf-8", "ignore")
    for number, crop in enumerate(photo.crops, start=1):
        path = folder / f"{name}-face{number}.png"
        try:
            Image.fromarray(crop).save(path)
        except OSError as error:
            raise ESLPError(f"{path}: cannot write the face crop ({error}); pass --crops a folder you can write to") from error


def _predict_photo(predictor, detector, args: argparse.Namespace) -> dict:
    from eslp.detect import annotate
    from eslp.predict import find_faces, probability_class

    photo = find_faces(args.image, detector, args.margin)
    if photo.no_face:
        raise ESLPError(
            f"{args.image}: {photo.error}; pass --no-detect if the image is already a face crop, "
            "or try another --detector or a larger --image"
        )
    if photo.error:
        raise ESLPError(f"{args.image}: {photo.error}")
    crops = np.stack(photo.crops)
    probabilities = predictor.image_probabilities(crops)
    combined = predictor.combined_probabilities(crops, [args.text] * len(crops)) if args.text is not None else None
    faces = []
    for index, (box, probability) in enumerate(zip(photo.boxes, probabilities)):
        face = {"face": index + 1, "box": _box(box), "happy_probability": float(probability), "class": probability_class(float(probability))}
        if combined is not None:
            face["combined"] = {"happy_probability": float(combined[index]), "class": probability_class(float(combined[index]))}
        faces.append(face)
    if args.crops is not None:
        _write_crops(photo, args.crops)
        logger.info("wrote %d face crops to %s", len(faces), args.crops)
    if args.annotate is not None:
        labels = [f"{face['face']}: {face['class']} {face['happy_probability']:.3f}" for face in faces]
        colours = ["green" if face["class"] == HAPPY else "red" for face in faces]
        annotate(args.image, photo.boxes, labels, colours, args.annotate)
        logger.info("wrote %s with %d faces marked", args.annotate, len(faces))
    return {"file": str(args.image), "detector": detector.name, "faces": faces}


def _predict_single(predictor, detector, args: argparse.Namespace) -> dict:
    from eslp.predict import probability_class, read_face

    result = {}
    face = None
    if args.image is not None and args.detect:
        result["image"] = _predict_photo(predictor, detector, args)
    elif args.image is not None:
        face = read_face(args.image)
        if face.error:
            raise ESLPError(f"{args.image}: {face.error}")
        probability = float(predictor.image_probabilities(face.pixels[np.newaxis])[0])
        result["image"] = {"file": str(args.image), "happy_probability": probability, "class": probability_class(probability)}
    if args.text is not None:
        score = float(predictor.text_scores([args.text])[0])
        result["text"] = {
            "text": args.text, "score": score, "class": predictor.text_class(score),
            "happy_threshold": predictor.happy_threshold, "angry_threshold": predictor.angry_threshold,
        }
    if face is not None and args.text is not None:
        probability = float(predictor.combined_probabilities(face.pixels[np.newaxis], [args.text])[0])
        result["combined"] = {"happy_probability": probability, "class": probability_class(probability)}
    return result


def _print_single(result: dict, output: TextIO) -> None:
    if "image" in result and "faces" in result["image"]:
        image = result["image"]
        count = len(image["faces"])
        print(f"{image['file']}: {count} face{'s' if count > 1 else ''} found by detector {image['detector']}", file=output)
        for face in image["faces"]:
            box = face["box"]
            line = (
                f"face {face['face']} at x {box['x']}, y {box['y']}, width {box['width']}, height {box['height']}: "
                f"image model happy probability {face['happy_probability']:.4f}, class {face['class']}"
            )
            if "combined" in face:
                line += f"; combined model happy probability {face['combined']['happy_probability']:.4f}, class {face['combined']['class']}"
            print(line, file=output)
    elif "image" in result:
        image = result["image"]
        print(f"image model: {image['file']}: happy probability {image['happy_probability']:.4f}, class {image['class']}", file=output)
    if "text" in result:
        text = result["text"]
        print(
            f"language model: sentiment score {text['score']:.4f}, class {text['class']} "
            f"(happy above {text['happy_threshold']}, angry below {text['angry_threshold']}, neutral between)",
            file=output,
        )
    if "combined" in result:
        combined = result["combined"]
        print(f"combined model: happy probability {combined['happy_probability']:.4f}, class {combined['class']}", file=output)


# --- batches ---------------------------------------------------------------------------


def _predict_crops(predictor, folder: Path) -> tuple[list[str], list[dict], int, int]:
    from eslp.predict import decode_all, list_images, probability_class

    paths = list_images(folder)
    faces = list(decode_all(paths))
    decoded = [face for face in faces if not face.error]
    probabilities = iter(predictor.image_probabilities(np.stack([face.pixels for face in decoded])) if decoded else [])
    rows = []
    for face in faces:
        if face.error:
            logger.error("%s: %s; skipped", face.path, face.error)
            rows.append({"file": str(face.path), "happy_probability": None, "class": None, "error": face.error})
            continue
        probability = float(next(probabilities))
        rows.append({"file": str(face.path), "happy_probability": probability, "class": probability_class(probability), "error": ""})
    failures = len(faces) - len(decoded)
    logger.info("predicted %d of %d images in %s; %d could not be decoded", len(decoded), len(faces), folder, failures)
    return ["file", "happy_probability", "class", "error"], rows, failures, len(faces)


def _predict_photos(predictor, detector, args: argparse.Namespace) -> tuple[list[str], list[dict], int, int]:
    from eslp.predict import find_all, list_images, probability_class

    paths = list_images(args.images)
    photos = list(find_all(paths, detector, args.margin))
    crops = [crop for photo in photos for crop in photo.crops]
    probabilities = iter(predictor.image_probabilities(np.stack(crops)) if crops else [])
    rows = []
    empty = {"face": None, "x": None, "y": None, "width": None, "height": None, "happy_probability": None, "class": None}
    for photo in photos:
        if photo.error:
            logger.error("%s: %s; skipped", photo.path, photo.error)
            rows.append({"file": str(photo.path), **empty, "error": photo.error})
            continue
        for number, box in enumerate(photo.boxes, start=1):
            probability = float(next(probabilities))
            rows.append({
                "file": str(photo.path), "face": number, **_box(box),
                "happy_probability": probability, "class": probability_class(probability), "error": "",
            })
        if args.crops is not None:
            _write_crops(photo, args.crops)
    failures = sum(1 for photo in photos if photo.error)
    logger.info(
        "found %d faces in %d of %d images in %s with detector %s; %d had no face or could not be decoded",
        len(crops), len(photos) - failures, len(photos), args.images, detector.name, failures,
    )
    return ["file", *empty, "error"], rows, failures, len(photos)


def _predict_texts(predictor, path: Path) -> tuple[list[str], list[dict], int, int]:
    from eslp.predict import read_lines

    lines = read_lines(path)
    scores = predictor.text_scores([text for _, text in lines]) if lines else []
    rows = [
        {"line": number, "text": text, "score": float(score), "class": predictor.text_class(float(score))}
        for (number, text), score in zip(lines, scores)
    ]
    logger.info(
        "predicted %d sentences from %s (happy above %s, angry below %s, neutral between)",
        len(rows), path, predictor.happy_threshold, predictor.angry_threshold,
    )
    return ["line", "text", "score", "class"], rows, 0, len(rows)


def _write_rows(columns: list[str], rows: list[dict], as_json: bool, output: TextIO) -> None:
    if as_json:
        json.dump(rows, output, indent=2)
        output.write("\n")
        return
    writer = csv.DictWriter(output, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        cells = {}
        for key, value in row.items():
            if value is None:
                value = ""
            elif isinstance(value, float):
                value = f"{value:.6f}"
            cells[key] = value
        writer.writerow(cells)


def _write_batch(columns: list[str], rows: list[dict], args: argparse.Namespace) -> None:
    if args.out is None:
        _write_rows(columns, rows, args.json, sys.stdout)
        return
    from eslp.io import atomic_path

    try:
        with atomic_path(args.out) as temporary:
            # File names that are not valid UTF-8 are written back as the bytes they were.
            with open(temporary, "w", encoding="utf-8", errors="surrogateescape", newline="") as file:
                _write_rows(columns, rows, args.json, file)
    except OSError as error:
        raise ESLPError(f"--out {args.out}: cannot write the file ({error}); pass a file path in a folder you can write to") from error
    logger.info("wrote %d rows to %s", len(rows), args.out)


# --- entry point -----------------------------------------------------------------------


def predict(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    _check_options(parser, args)
    # Keras and TensorFlow load in seconds, so they are imported only once the options are valid.
    from eslp.predict import Predictor

    predictor = Predictor(args.models if args.models is not None else args.project / "models", args.project)
    detector = None
    if args.detect and (args.image is not None or args.images is not None):
        from eslp.detect import FaceDetector

        detector = FaceDetector(args.detector)
    if args.crops is not None:
        _make_crops_folder(args.crops)
    if args.images is not None or args.texts is not None:
        if args.images is not None and detector is not None:
            columns, rows, failures, total = _predict_photos(predictor, detector, args)
        elif args.images is not None:
            columns, rows, failures, total = _predict_crops(predictor, args.images)
        else:
            columns, rows, failures, total = _predict_texts(predictor, args.texts)
        _write_batch(columns, rows, args)
        if failures:
            logger.error("%d of %d inputs failed; see the messages above", failures, total)
            return 1
        return 0

    result = _predict_single(predictor, detector, args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_single(result, sys.stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``eslp`` command; return its exit status: 0, 1 on a failure, 2 on invalid options."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return predict(parser, args)
    except ESLPError as error:
        logger.error("%s", error)
        return 1
