"""The ``eslp`` command: ``eslp predict`` applies the trained models to faces and sentences."""

import argparse
import csv
import json
import logging
import sys
from pathlib import Path
from typing import TextIO

import numpy as np

from eslp.errors import ESLPError

logger = logging.getLogger("eslp.predict")

DESCRIPTION = """\
Predict with the models that the pipeline trained. --image gives the image model's happy
probability, --text the language model's sentiment score and its class at the
sentences thresholds of params.yaml (neutral between them), and both together also the
combined model's happy probability. --images and --texts predict in batches and write CSV.
"""


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eslp", description="ESLP: sentiment scores for faces through sentences.")
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="predict with the trained models", description=DESCRIPTION)
    predict.add_argument("--image", type=Path, metavar="FILE", help="a face image (PNG or JPEG, any size or mode)")
    predict.add_argument("--text", metavar="TEXT", help="a sentence")
    predict.add_argument("--images", type=Path, metavar="DIR", help="a folder of face images, one CSV row each")
    predict.add_argument("--texts", type=Path, metavar="FILE", help="a UTF-8 file of sentences, one a line (blank lines skipped)")
    predict.add_argument("--out", type=Path, metavar="FILE", help="write batch results to FILE instead of standard output")
    predict.add_argument("--json", action="store_true", help="print JSON instead of text (or CSV in batch mode)")
    predict.add_argument(
        "--models", type=Path, metavar="DIR",
        help="folder with the .keras models (default: the pipeline's outputs in PROJECT/models)",
    )
    predict.add_argument(
        "--project", type=Path, metavar="DIR", default=Path("."),
        help="project folder with params.yaml and data/language (default: the current folder)",
    )
    return parser


def _check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    inputs = [name for name in ("image", "text", "images", "texts") if getattr(args, name) is not None]
    if not inputs:
        parser.error("give --image FILE, --text TEXT (or both), --images DIR or --texts FILE")
    if (args.images is not None or args.texts is not None) and len(inputs) > 1:
        parser.error(f"--{inputs[0]} and --{inputs[1]} cannot be used together; batch options run alone")
    if args.out is not None and args.images is None and args.texts is None:
        parser.error("--out is for batch mode (--images or --texts)")


# --- one face and/or one sentence ------------------------------------------------------


def _predict_single(predictor, args: argparse.Namespace) -> dict:
    from eslp.predict import probability_class, read_face

    result = {}
    face = None
    if args.image is not None:
        face = read_face(args.image)
        if face.error:
            raise ESLPError(f"{args.image}: {face.error}; pass a PNG or JPEG image")
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
    if "image" in result:
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


def _predict_images(predictor, folder: Path) -> tuple[list[str], list[dict], int]:
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
    return ["file", "happy_probability", "class", "error"], rows, failures


def _predict_texts(predictor, path: Path) -> tuple[list[str], list[dict], int]:
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
    return ["line", "text", "score", "class"], rows, 0


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

    with atomic_path(args.out) as temporary:
        with open(temporary, "w", encoding="utf-8", newline="") as file:
            _write_rows(columns, rows, args.json, file)
    logger.info("wrote %d rows to %s", len(rows), args.out)


# --- entry point -----------------------------------------------------------------------


def predict(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    _check_options(parser, args)
    # Keras and TensorFlow load in seconds, so they are imported only once the options are valid.
    from eslp.predict import Predictor

    predictor = Predictor(args.models if args.models is not None else args.project / "models", args.project)
    if args.images is not None or args.texts is not None:
        if args.images is not None:
            columns, rows, failures = _predict_images(predictor, args.images)
        else:
            columns, rows, failures = _predict_texts(predictor, args.texts)
        _write_batch(columns, rows, args)
        if failures:
            logger.error("%d of %d inputs failed; see the messages above", failures, len(rows))
            return 1
        return 0

    result = _predict_single(predictor, args)
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
