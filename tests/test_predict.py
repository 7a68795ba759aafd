"""`eslp predict` on the models that the tiny pipeline trained, with tiny and real faces and sentences.

The stage logs of that pipeline run are checked here too, so that the pipeline runs once.
"""

import csv
import io
import json
import re
import shutil
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from conftest import write_face
from eslp.cli import main
from eslp.fer import load_face
from pipeline import dvc, make_tiny_pipeline, run

pytestmark = pytest.mark.slow

REAL_FACES_PER_CLASS = 4
REAL_SENTENCES = 25


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny pipeline after `dvc repro`, and the log that the stages wrote to standard error."""
    repo = make_tiny_pipeline(tmp_path_factory.mktemp("predict"))
    result = dvc(repo, "repro")
    return repo, result.stderr


@pytest.fixture
def repo(trained):
    return trained[0]


STAGE_LOGS = [
    r"images_prepare: read 48 faces .* wrote 12\+12 train / 12\+12 test angry\+happy to data/png",
    r"language_prepare: read csv format .* wrote 68 rows \(40 train / 12 dev / 16 test sentences",
    r"sentences: read 68 sentences from data/language, wrote 34 happy .* and 34 angry .* to data/sentences",
    r"language_train: training on 40 rows .* validating on 12 dev sentences",
    r"image_bottleneck: read 24 train faces from data/png/train, wrote .* features each to data/features/train in ",
    r"image_bottleneck: read 24 test faces from data/png/test",
    r"image_finetune: training the top 1 VGG16 block\(s\) and the head on \d+ faces, validating on \d+",
    r"combine: \d+ train pairs from \d+ faces and \d+ sentences",
    r"language_train: wrote training curves of 1 epochs, predictions and ROC curve .* of 16 test items",
    r"image_bottleneck: wrote \d+ of \d+ misclassified test faces to plots/image_bottleneck/misclassified.png",
    r"image_finetune: wrote \d+ of \d+ misclassified test faces to plots/image_finetune/misclassified.png",
    r"combine: wrote training curves of 1 epochs, predictions and ROC curve .* of 24 test items",
]


@pytest.mark.parametrize("pattern", STAGE_LOGS)
def test_stage_log_counts(trained, pattern):
    _, log = trained
    assert re.search(pattern, log), pattern


def test_stage_log_has_no_progress_bar(trained):
    """Standard error is a pipe here, as in CI, so no progress bar may appear."""
    _, log = trained
    assert "decoding PNG faces" not in log
    assert "image/s" not in log


def predict(repo: Path, *arguments: str) -> int:
    return main(["predict", "--project", str(repo), *arguments])


def test_image_and_text_json(repo, capsys):
    face = repo / "data/raw/fer2013/test/happy/PublicTest_2000.jpg"
    assert predict(repo, "--image", str(face), "--text", "a good and lovely film .", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"image", "text", "combined"}
    for part in ("image", "combined"):
        assert 0.0 <= result[part]["happy_probability"] <= 1.0
        assert result[part]["class"] == ("happy" if result[part]["happy_probability"] > 0.5 else "angry")
    assert 0.0 <= result["text"]["score"] <= 1.0
    assert result["text"]["happy_threshold"] == 0.6
    assert result["text"]["angry_threshold"] == 0.4


def test_image_converted_as_in_training(repo, tmp_path, capsys):
    """A large RGBA image gives the probability of the model on ``load_face`` of that file."""
    path = tmp_path / "large.png"
    write_face(path, 7, mode="RGBA", size=(120, 90))
    assert predict(repo, "--image", str(path), "--json") == 0
    probability = json.loads(capsys.readouterr().out)["image"]["happy_probability"]

    model = keras.models.load_model(repo / "models/image_model.keras", safe_mode=True)
    pixels, converted = load_face(path)
    expected = float(model.predict(pixels[np.newaxis, :, :, np.newaxis].astype(np.float32), verbose=0)[0, 0])
    assert converted
    assert probability == pytest.approx(expected, abs=1e-5)


def test_text_class_uses_thresholds(repo, capsys):
    params = repo / "params.yaml"
    original = params.read_text()
    try:
        # With both thresholds near 0 every score is above happy_threshold, and near 1 below
        # angry_threshold, whatever the model predicts.
        for low, high, expected in ((0.0001, 0.0001, "happy"), (0.9999, 0.9999, "angry")):
            params.write_text(original.replace("happy_threshold: 0.6", f"happy_threshold: {high}")
                              .replace("angry_threshold: 0.4", f"angry_threshold: {low}"))
            assert predict(repo, "--text", "a film .", "--json") == 0
            assert json.loads(capsys.readouterr().out)["text"]["class"] == expected
    finally:
        params.write_text(original)


def test_text_output_names_neutral_band(repo, capsys):
    assert predict(repo, "--text", "a film .") == 0
    output = capsys.readouterr().out
    assert "sentiment score" in output
    assert "happy above 0.6, angry below 0.4, neutral between" in output


def test_images_batch_counts_failures(repo, tmp_path, capsys, caplog):
    folder = tmp_path / "faces"
    for index in range(3):
        write_face(folder / f"face{index}.jpg", index)
    (folder / "broken.png").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("ignored, not an image suffix")

    assert predict(repo, "--images", str(folder)) == 1
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [Path(row["file"]).name for row in rows] == ["broken.png", "face0.jpg", "face1.jpg", "face2.jpg"]
    assert rows[0]["happy_probability"] == ""
    assert "cannot decode image" in rows[0]["error"]
    for row in rows[1:]:
        assert 0.0 <= float(row["happy_probability"]) <= 1.0
        assert row["error"] == ""
    assert f"{folder / 'broken.png'}: cannot decode image" in caplog.text
    assert "1 of 4 inputs failed" in caplog.text


def test_texts_batch_writes_out_file(repo, tmp_path, capsys):
    texts = tmp_path / "sentences.txt"
    texts.write_text("a good film .\n\nan awful , dull film .\n", encoding="utf-8")
    out = tmp_path / "scores.csv"
    assert predict(repo, "--texts", str(texts), "--out", str(out)) == 0
    assert capsys.readouterr().out == ""
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [row["line"] for row in rows] == ["1", "3"]
    assert [row["text"] for row in rows] == ["a good film .", "an awful , dull film ."]
    for row in rows:
        assert row["class"] in {"happy", "angry", "neutral"}


def test_missing_model_names_stage(repo, tmp_path, caplog):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(repo / "models/language_model.keras", models)
    face = repo / "data/raw/fer2013/test/happy/PublicTest_2000.jpg"
    assert predict(repo, "--models", str(models), "--image", str(face)) == 1
    assert "image_model.keras: model not found; run `dvc repro image_finetune`" in caplog.text
    # The language model alone is enough for --text.
    assert predict(repo, "--models", str(models), "--text", "a film .") == 0


def test_damaged_model_names_stage(repo, tmp_path, caplog):
    models = tmp_path / "models"
    models.mkdir()
    (models / "image_model.keras").write_bytes(b"not a keras file")
    face = repo / "data/raw/fer2013/test/happy/PublicTest_2000.jpg"

    assert predict(repo, "--models", str(models), "--image", str(face)) == 1
    assert f"{models / 'image_model.keras'}: cannot load the model (" in caplog.text
    assert "rebuild it with `dvc repro --force image_finetune`" in caplog.text


def test_image_needs_no_params_file(repo, tmp_path, capsys):
    face = repo / "data/raw/fer2013/test/happy/PublicTest_2000.jpg"

    arguments = ["predict", "--project", str(tmp_path), "--models", str(repo / "models"), "--image", str(face), "--json"]
    assert main(arguments) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["image"]["happy_probability"] <= 1.0


def test_text_without_params_file_names_project(repo, tmp_path, caplog):
    shutil.copytree(repo / "data" / "language", tmp_path / "data" / "language")

    assert main(["predict", "--project", str(tmp_path), "--models", str(repo / "models"), "--text", "a film ."]) == 1
    assert f"{tmp_path / 'params.yaml'}: not found; sentence classes use the thresholds in params.yaml" in caplog.text


def test_unreadable_single_image_fails(repo, tmp_path, caplog):
    path = tmp_path / "face.jpg"
    path.write_bytes(b"\xff\xd8 truncated")
    assert predict(repo, "--image", str(path)) == 1
    assert f"{path}: cannot decode image" in caplog.text


@pytest.mark.parametrize(
    "arguments",
    [[], ["--images", "faces", "--text", "a film ."], ["--texts", "a.txt", "--image", "a.png"], ["--text", "a", "--out", "x.csv"]],
)
def test_invalid_options_exit_2(repo, arguments):
    with pytest.raises(SystemExit) as raised:
        predict(repo, *arguments)
    assert raised.value.code == 2


def test_module_and_console_script_run(repo, tmp_path):
    face = tmp_path / "face.png"
    write_face(face, 3)
    module = run(repo, sys.executable, "-m", "eslp", "predict", "--image", str(face), "--json")
    assert 0.0 <= json.loads(module.stdout)["image"]["happy_probability"] <= 1.0
    script = Path(sys.executable).parent / "eslp"
    assert "--images DIR" in run(repo, str(script), "predict", "--help").stdout


def test_real_faces_batch(repo, shared_data, tmp_path, capsys):
    folder = tmp_path / "real"
    folder.mkdir()
    for label in ("angry", "happy"):
        for path in sorted((shared_data / "fer2013/test" / label).iterdir())[:REAL_FACES_PER_CLASS]:
            shutil.copy(path, folder / f"{label}_{path.name}")
    assert predict(repo, "--images", str(folder), "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 * REAL_FACES_PER_CLASS
    for row in rows:
        assert 0.0 <= row["happy_probability"] <= 1.0
        assert row["class"] in {"happy", "angry"}


def test_real_sentences_batch(repo, shared_data, tmp_path, capsys):
    lines = (shared_data / "sst/datasetSentences.txt").read_text(encoding="utf-8").splitlines()[1 : REAL_SENTENCES + 1]
    texts = tmp_path / "real.txt"
    texts.write_text("".join(line.split("\t", 1)[1] + "\n" for line in lines), encoding="utf-8")
    assert predict(repo, "--texts", str(texts)) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == REAL_SENTENCES
    for row in rows:
        assert 0.0 <= float(row["score"]) <= 1.0


def test_real_face_single(repo, shared_data, capsys):
    face = sorted((shared_data / "fer2013/test/happy").iterdir())[0]
    with Image.open(face) as image:
        assert image.size == (48, 48)
    assert predict(repo, "--image", str(face), "--text", "a good film .", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["combined"]["happy_probability"] <= 1.0
