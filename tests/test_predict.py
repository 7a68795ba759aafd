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
    assert predict(repo, "--image", str(face), "--no-detect", "--text", "a good and lovely film .", "--json") == 0
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
    assert predict(repo, "--image", str(path), "--no-detect", "--json") == 0
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

    assert predict(repo, "--images", str(folder), "--no-detect") == 1
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
    assert predict(repo, "--models", str(models), "--image", str(face), "--no-detect") == 1
    assert "image_model.keras: model not found; run `dvc repro image_finetune`" in caplog.text
    # The language model alone is enough for --text.
    assert predict(repo, "--models", str(models), "--text", "a film .") == 0


def test_damaged_model_names_stage(repo, tmp_path, caplog):
    models = tmp_path / "models"
    models.mkdir()
    (models / "image_model.keras").write_bytes(b"not a keras file")
    face = repo / "data/raw/fer2013/test/happy/PublicTest_2000.jpg"

    assert predict(repo, "--models", str(models), "--image", str(face), "--no-detect") == 1
    assert f"{models / 'image_model.keras'}: cannot load the model (" in caplog.text
    assert "rebuild it with `dvc repro --force image_finetune`" in caplog.text


def test_image_needs_no_params_file(repo, tmp_path, capsys):
    face = repo / "data/raw/fer2013/test/happy/PublicTest_2000.jpg"

    arguments = ["predict", "--project", str(tmp_path), "--models", str(repo / "models"), "--image", str(face), "--no-detect", "--json"]
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
    [
        [], ["--images", "faces", "--text", "a film ."], ["--texts", "a.txt", "--image", "a.png"], ["--text", "a", "--out", "x.csv"],
        ["--text", "a", "--annotate", "out.png"], ["--image", "a.png", "--no-detect", "--annotate", "out.png"],
        ["--images", "faces", "--no-detect", "--crops", "crops"], ["--image", "a.png", "--margin", "2"],
        ["--image", "a.png", "--margin", "wide"], ["--image", "a.png", "--annotate", "out.xyz"],
        ["--image", "a.png", "--annotate", "a.png"], ["--image", "a.png", "--no-detect", "--margin", "0.1"],
    ],
)
def test_invalid_options_exit_2(repo, arguments):
    with pytest.raises(SystemExit) as raised:
        predict(repo, *arguments)
    assert raised.value.code == 2


def test_module_and_console_script_run(repo, tmp_path):
    face = tmp_path / "face.png"
    write_face(face, 3)
    module = run(repo, sys.executable, "-m", "eslp", "predict", "--image", str(face), "--no-detect", "--json")
    assert 0.0 <= json.loads(module.stdout)["image"]["happy_probability"] <= 1.0
    script = Path(sys.executable).parent / "eslp"
    assert "--images DIR" in run(repo, str(script), "predict", "--help").stdout


def test_real_faces_batch(repo, shared_data, tmp_path, capsys):
    folder = tmp_path / "real"
    folder.mkdir()
    for label in ("angry", "happy"):
        for path in sorted((shared_data / "fer2013/test" / label).iterdir())[:REAL_FACES_PER_CLASS]:
            shutil.copy(path, folder / f"{label}_{path.name}")
    assert predict(repo, "--images", str(folder), "--no-detect", "--json") == 0
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
    assert predict(repo, "--image", str(face), "--no-detect", "--text", "a good film .", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["combined"]["happy_probability"] <= 1.0


# --- faces found in photos ---------------------------------------------------------------


@pytest.fixture(scope="module")
def photo(trained, shared_data, tmp_path_factory):
    """A plain photo with three real happy and three real angry test faces, and their truth boxes."""
    from test_detect import make_photo, real_faces

    faces = real_faces(shared_data, 60)
    chosen = faces[:3] + faces[60:63]
    pixels, truths = make_photo(chosen, "plain", seed=3)
    path = tmp_path_factory.mktemp("photo") / "group.jpg"
    Image.fromarray(pixels).save(path, quality=95)
    return path, truths


def matched(faces: list[dict], truths: list[tuple]) -> dict[int, dict]:
    """Map each truth box's index to the reported face that overlaps it (IoU at least 0.5)."""
    from test_detect import iou

    found = {}
    for face in faces:
        box = face["box"]
        for index, truth in enumerate(truths):
            if iou((box["x"], box["y"], box["width"], box["height"]), truth) >= 0.5:
                found[index] = face
    return found


def test_photo_faces_scored_like_their_crops(repo, photo, tmp_path, capsys):
    path, truths = photo
    crops = tmp_path / "crops"
    assert predict(repo, "--image", str(path), "--crops", str(crops), "--json") == 0
    result = json.loads(capsys.readouterr().out)["image"]
    assert result["detector"] == "haar"
    found = matched(result["faces"], truths)
    assert len(found) >= 5, result["faces"]

    for index, face in found.items():
        # The crop the model saw, scored alone, gives the same probability.
        crop = crops / f"group.jpg-face{face['face']}.png"
        assert predict(repo, "--image", str(crop), "--no-detect", "--json") == 0
        alone = json.loads(capsys.readouterr().out)["image"]
        assert alone["happy_probability"] == pytest.approx(face["happy_probability"], abs=1e-5)
        assert alone["class"] == face["class"]
    # NOTE: the tiny pipeline's model gives every real face 0.48-0.52, so its class on the
    # pasted FER face is no test of the crop. test_detect checks that the crop is that face.


def test_photo_and_text_combined_per_face(repo, photo, capsys):
    path, _ = photo
    assert predict(repo, "--image", str(path), "--text", "a good film .") == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.match(rf"{re.escape(str(path))}: \d faces found by detector haar", lines[0])
    faces = [line for line in lines if line.startswith("face ")]
    assert len(faces) >= 5
    for line in faces:
        assert re.match(
            r"face \d at x \d+, y \d+, width \d+, height \d+: image model happy probability 0\.\d{4}, class (happy|angry); "
            r"combined model happy probability 0\.\d{4}, class (happy|angry)$",
            line,
        )
    assert lines[-1].startswith("language model: sentiment score")


def test_annotate_draws_boxes_on_upright_photo(repo, photo, tmp_path, capsys):
    """An EXIF-rotated JPEG is searched and drawn upright, each box in its class's colour."""
    path, truths = photo
    with Image.open(path) as image:
        upright = image.copy()
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = tmp_path / "sideways.jpg"
    upright.transpose(Image.Transpose.ROTATE_90).save(sideways, exif=exif, quality=95)
    out = tmp_path / "annotated.png"

    assert predict(repo, "--image", str(sideways), "--annotate", str(out), "--json") == 0
    faces = json.loads(capsys.readouterr().out)["image"]["faces"]
    assert len(matched(faces, truths)) >= 5
    with Image.open(out) as annotated:
        assert annotated.size == upright.size
        pixels = np.asarray(annotated.convert("RGB"))
    for face in faces:
        box = face["box"]
        red, green, blue = (int(value) for value in pixels[box["y"] + box["height"] // 2, box["x"]])
        # Happy boxes are green (0, 128, 0) and angry ones red (255, 0, 0).
        strong, weak = (green, red) if face["class"] == "happy" else (red, green)
        assert strong > 100
        assert weak < 60
        assert blue < 60


def test_photo_without_face_fails(repo, tmp_path, caplog):
    path = tmp_path / "wall.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))).save(path)
    assert predict(repo, "--image", str(path)) == 1
    assert f"{path}: no face found in the 640x480 image by detector haar; pass --no-detect" in caplog.text


def test_photos_batch_one_row_per_face(repo, photo, tmp_path, capsys, caplog):
    path, _ = photo
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(path, folder / "group.jpg")
    Image.fromarray(np.full((200, 300), 90, dtype=np.uint8)).save(folder / "empty.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 truncated")

    assert predict(repo, "--images", str(folder)) == 1
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == ["file", "face", "x", "y", "width", "height", "happy_probability", "class", "error"]
    by_file = {}
    for row in rows:
        by_file.setdefault(Path(row["file"]).name, []).append(row)
    assert "cannot decode image" in by_file["broken.jpg"][0]["error"]
    assert by_file["empty.png"][0]["error"] == "no face found in the 300x200 image by detector haar"
    group = by_file["group.jpg"]
    assert [row["face"] for row in group] == [str(number) for number in range(1, len(group) + 1)]
    assert len(group) >= 5
    for row in group:
        assert row["error"] == ""
        assert row["class"] in {"happy", "angry"}
    assert "2 of 3 inputs failed" in caplog.text


@pytest.mark.parametrize("name", ["haar-alt2", "mtcnn"])
def test_other_detectors(repo, photo, capsys, name):
    path, truths = photo
    assert predict(repo, "--image", str(path), "--detector", name, "--json") == 0
    result = json.loads(capsys.readouterr().out)["image"]
    assert result["detector"] == name
    assert len(matched(result["faces"], truths)) >= 4


def test_missing_photo_names_path(repo, tmp_path, caplog):
    path = tmp_path / "nowhere.jpg"
    assert predict(repo, "--image", str(path)) == 1
    assert f"{path}: file not found; check the path" in caplog.text


def test_out_into_folder_fails_cleanly(repo, photo, tmp_path, caplog):
    path, _ = photo
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(path, folder / "group.jpg")
    out = tmp_path / "rows.csv"
    out.mkdir()

    assert predict(repo, "--images", str(folder), "--out", str(out)) == 1
    assert f"--out {out}: cannot write the file (" in caplog.text
    assert sorted(item.name for item in tmp_path.iterdir()) == ["photos", "rows.csv"]


def test_crops_of_long_file_name_are_cut(repo, photo, tmp_path):
    path, _ = photo
    folder = tmp_path / "photos"
    folder.mkdir()
    long_name = "g" * 240 + ".jpg"
    shutil.copy(path, folder / long_name)
    crops = tmp_path / "crops"

    assert predict(repo, "--images", str(folder), "--crops", str(crops)) == 0
    names = sorted(item.name for item in crops.iterdir())
    assert len(names) >= 5
    assert names[0] == "g" * 200 + "-face1.png"

