"""Plot files for `dvc plots` and the terminal-only progress bar."""

import csv
import io

import keras
import numpy as np
import pytest
from PIL import Image

from eslp import plots
from eslp.progress import progress


def read_rows(path):
    with open(path, encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def test_roc_perfect_separation():
    fpr, tpr, thresholds = plots.roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))
    assert fpr.tolist() == [0.0, 0.0, 0.0, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 1.0, 1.0, 1.0]
    assert thresholds.tolist() == [1.0, 0.9, 0.8, 0.2, 0.1]


def test_roc_without_labels_is_origin(tmp_path):
    fpr, tpr, thresholds = plots.roc_curve(np.array([]), np.array([]))
    assert fpr.tolist() == [0.0]
    assert tpr.tolist() == [0.0]
    assert thresholds.tolist() == [1.0]
    assert plots.write_roc(tmp_path / "roc.csv", np.array([]), np.array([])) == 0.0


def test_roc_ties_make_one_point():
    fpr, tpr, _ = plots.roc_curve(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.5]))
    assert fpr.tolist() == [0.0, 1.0]
    assert tpr.tolist() == [0.0, 1.0]


@pytest.mark.parametrize(
    ("probabilities", "area"),
    [([0.1, 0.2, 0.8, 0.9], 1.0), ([0.9, 0.8, 0.2, 0.1], 0.0), ([0.1, 0.8, 0.2, 0.9], 0.75)],
)
def test_roc_file_and_area(tmp_path, probabilities, area):
    path = tmp_path / "roc.csv"
    assert plots.write_roc(path, np.array([0, 0, 1, 1]), np.array(probabilities)) == pytest.approx(area)
    rows = read_rows(path)
    assert list(rows[0]) == ["fpr", "tpr", "threshold"]
    assert (rows[0]["fpr"], rows[0]["tpr"]) == ("0.000000", "0.000000")
    assert (rows[-1]["fpr"], rows[-1]["tpr"]) == ("1.000000", "1.000000")


def test_predictions_file_names_classes(tmp_path):
    path = tmp_path / "predictions.csv"
    plots.write_predictions(path, np.array([0, 1, 1]), np.array([[0.7], [0.9], [0.2]]))
    rows = read_rows(path)
    assert [(row["actual"], row["predicted"]) for row in rows] == [("angry", "happy"), ("happy", "happy"), ("happy", "angry")]
    assert rows[0]["probability"] == "0.700000"


def test_training_curves_one_row_per_epoch(tmp_path):
    history = keras.callbacks.History()
    history.history = {"loss": [0.7, 0.5], "accuracy": [0.5, 0.75], "val_loss": [0.8, 0.6], "val_accuracy": [0.4, 0.6]}
    path = tmp_path / "training.csv"
    assert plots.write_training_curves(path, history) == 2
    rows = read_rows(path)
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert rows[1]["val_loss"] == "0.6"


def test_misclassified_grid_shows_wrong_faces(tmp_path):
    faces = np.zeros((5, 48, 48, 1), dtype=np.uint8)
    faces[1] = 200  # a bright face the model gets wrong with the highest confidence
    labels = np.array([0, 0, 1, 1, 0])
    probabilities = np.array([0.1, 0.95, 0.2, 0.9, 0.6])
    path = tmp_path / "misclassified.png"
    assert plots.write_misclassified(path, faces, labels, probabilities) == 3
    with Image.open(path) as image:
        assert image.format == "PNG"
        cell = 48 * plots.FACE_SCALE
        assert image.size == (plots.GRID_COLUMNS * (cell + plots.GAP), cell + plots.CAPTION_HEIGHT + plots.GAP)
        # The most confident mistake comes first, scaled up without smoothing.
        assert image.getpixel((0, 0)) == 200
        assert image.getpixel((cell - 1, cell - 1)) == 200


def test_misclassified_grid_caps_face_count():
    count = plots.GRID_MAX_FACES + 10
    grid, wrong = plots.misclassified_grid(np.zeros((count, 48, 48), np.uint8), np.zeros(count), np.full(count, 0.9))
    assert wrong == count
    rows = plots.GRID_MAX_FACES // plots.GRID_COLUMNS
    assert grid.size[1] == rows * (48 * plots.FACE_SCALE + plots.CAPTION_HEIGHT + plots.GAP)


def test_misclassified_grid_without_mistakes(tmp_path):
    path = tmp_path / "misclassified.png"
    assert plots.write_misclassified(path, np.zeros((2, 48, 48), np.uint8), np.array([0, 1]), np.array([0.1, 0.9])) == 0
    with Image.open(path) as image:
        assert image.format == "PNG"


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_quiet_off_terminal(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    assert list(progress(range(5), "decoding")) == [0, 1, 2, 3, 4]
    assert stream.getvalue() == ""


def test_progress_drawn_on_terminal(monkeypatch):
    stream = Terminal()
    monkeypatch.setattr("sys.stderr", stream)
    assert list(progress(range(5), "decoding")) == [0, 1, 2, 3, 4]
    # tqdm redraws at most every 0.1 s, so a fast loop shows only its first state.
    assert "decoding:" in stream.getvalue()
    assert "0/5" in stream.getvalue()
