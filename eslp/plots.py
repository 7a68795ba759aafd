"""Plot files for ``dvc plots``: training curves, test predictions, ROC curves and misclassified faces.

The top-level ``plots`` section of dvc.yaml defines how each file is drawn. Every file is
written atomically, so a stage killed half-way never leaves one that looks complete.
"""

import csv
import io
import logging
from pathlib import Path

import keras
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from eslp import CLASSES, FACE_SIZE
from eslp.io import atomic_path, write_text

logger = logging.getLogger(__name__)

TRAINING_FILE = "training.csv"
PREDICTIONS_FILE = "predictions.csv"
ROC_FILE = "roc.csv"
MISCLASSIFIED_FILE = "misclassified.png"

GRID_COLUMNS = 8
GRID_MAX_FACES = 64
"""The grid shows at most this many misclassified faces, the most confident mistakes first."""
FACE_SCALE = 3
"""48x48 faces are drawn at 144x144 pixels, so that expressions can be seen."""
CAPTION_HEIGHT = 28
GAP = 6


def _write_csv(path: Path, header: list[str], rows) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def write_training_curves(path: Path, history: keras.callbacks.History) -> int:
    """Write one row per epoch with every value Keras logged (``loss``, ``val_loss``, ...); return the epoch count."""
    names = list(history.history)
    epochs = len(history.history[names[0]])
    rows = [[epoch + 1] + [f"{float(history.history[name][epoch]):.6g}" for name in names] for epoch in range(epochs)]
    _write_csv(path, ["epoch"] + names, rows)
    return epochs


def write_predictions(path: Path, labels: np.ndarray, probabilities: np.ndarray) -> None:
    """Write ``actual,predicted,probability`` per test item, the class at 0.5, for DVC's confusion template."""
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    predicted = (probabilities > 0.5).astype(np.int64)
    rows = [
        [CLASSES[label], CLASSES[guess], f"{probability:.6f}"]
        for label, guess, probability in zip(labels, predicted, probabilities)
    ]
    _write_csv(path, ["actual", "predicted", "probability"], rows)


def roc_curve(labels: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(false positive rate, true positive rate, threshold)`` for happy as the positive class.

    There is one point per distinct probability, from the highest threshold down, plus
    the point (0, 0) in front. A class missing from ``labels`` gives rates of 0, and no
    labels at all give only the point (0, 0).
    """
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if len(labels) == 0:
        return np.array([0.0]), np.array([0.0]), np.array([1.0])
    order = np.argsort(-probabilities, kind="stable")
    sorted_probabilities = probabilities[order]
    true_positives = np.cumsum(labels[order] == 1)
    false_positives = np.cumsum(labels[order] == 0)
    # Only the last item of each run of equal probabilities is a point: one threshold
    # cannot separate items with the same probability.
    last_of_run = np.r_[sorted_probabilities[1:] != sorted_probabilities[:-1], True]
    positives = max(int(true_positives[-1]), 1)
    negatives = max(int(false_positives[-1]), 1)
    fpr = np.r_[0.0, false_positives[last_of_run] / negatives]
    tpr = np.r_[0.0, true_positives[last_of_run] / positives]
    thresholds = np.r_[1.0, sorted_probabilities[last_of_run]]
    return fpr, tpr, thresholds


def write_roc(path: Path, labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Write the ROC curve as ``fpr,tpr,threshold`` rows; return the area under it."""
    fpr, tpr, thresholds = roc_curve(labels, probabilities)
    rows = [[f"{x:.6f}", f"{y:.6f}", f"{threshold:.6f}"] for x, y, threshold in zip(fpr, tpr, thresholds)]
    _write_csv(path, ["fpr", "tpr", "threshold"], rows)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def misclassified_grid(faces: np.ndarray, labels: np.ndarray, probabilities: np.ndarray) -> tuple[Image.Image, int]:
    """Draw the misclassified faces, scaled up, each captioned with its true and predicted class.

    The caption gives the predicted class's probability. Returns the image and the number
    of misclassified faces (the grid shows at most ``GRID_MAX_FACES`` of them).
    """
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    predicted = (probabilities > 0.5).astype(np.int64)
    wrong = np.flatnonzero(predicted != labels)
    # The most confident mistakes first: those far from 0.5 show most about the model.
    wrong = wrong[np.argsort(-np.abs(probabilities[wrong] - 0.5), kind="stable")]
    displayed = wrong[:GRID_MAX_FACES]

    cell = FACE_SIZE * FACE_SCALE
    columns = GRID_COLUMNS if len(displayed) else 1
    rows = max(1, -(-len(displayed) // GRID_COLUMNS))
    grid = Image.new("L", (columns * (cell + GAP), rows * (cell + CAPTION_HEIGHT + GAP)), color=255)
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    if len(displayed) == 0:
        draw.text((4, 4), "no misclassified\ntest faces", fill=0, font=font)
    for position, index in enumerate(displayed):
        left = (position % GRID_COLUMNS) * (cell + GAP)
        top = (position // GRID_COLUMNS) * (cell + CAPTION_HEIGHT + GAP)
        face = Image.fromarray(np.asarray(faces[index]).reshape(FACE_SIZE, FACE_SIZE).astype(np.uint8), mode="L")
        grid.paste(face.resize((cell, cell), Image.Resampling.NEAREST), (left, top))
        guess = CLASSES[predicted[index]]
        confidence = probabilities[index] if predicted[index] == 1 else 1 - probabilities[index]
        caption = f"true {CLASSES[labels[index]]}\npredicted {guess} {confidence:.2f}"
        draw.text((left + 2, top + cell + 1), caption, fill=0, font=font)
    return grid, len(wrong)


def write_misclassified(path: Path, faces: np.ndarray, labels: np.ndarray, probabilities: np.ndarray) -> int:
    """Save the grid of misclassified faces as a PNG; return how many faces were misclassified."""
    grid, count = misclassified_grid(faces, labels, probabilities)
    with atomic_path(path) as temporary:
        grid.save(temporary, format="PNG")
    return count


def write_classifier_plots(
    stage: str,
    plots_dir: Path,
    history: keras.callbacks.History,
    labels: np.ndarray,
    probabilities: np.ndarray,
    faces: np.ndarray | None = None,
) -> None:
    """Write a stage's training curves, test predictions and ROC curve, and with ``faces`` the misclassified grid."""
    epochs = write_training_curves(plots_dir / TRAINING_FILE, history)
    write_predictions(plots_dir / PREDICTIONS_FILE, labels, probabilities)
    area = write_roc(plots_dir / ROC_FILE, labels, probabilities)
    logger.info(
        "%s: wrote training curves of %d epochs, predictions and ROC curve (AUC %.4f) of %d test items to %s",
        stage, epochs, area, len(np.asarray(labels).reshape(-1)), plots_dir,
    )
    if faces is not None:
        count = write_misclassified(plots_dir / MISCLASSIFIED_FILE, faces, labels, probabilities)
        logger.info(
            "%s: wrote %d of %d misclassified test faces to %s",
            stage, min(count, GRID_MAX_FACES), count, plots_dir / MISCLASSIFIED_FILE,
        )
