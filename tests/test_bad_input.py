"""Inputs real users have that once crashed or misled a stage: each gives one clear error or is skipped."""

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from conftest import PROJECT_ROOT, images_prepare_params, write_face
from eslp import fer, sst
from eslp.errors import ESLPError
from eslp.params import load_params, read_seed
from eslp.training import validation_mask


def fer_row(emotion, usage="Training", value=7):
    return f"{emotion},{' '.join([str(value)] * 2304)},{usage}\n"


def test_validation_needs_two_faces_per_class():
    with pytest.raises(ESLPError) as error:
        validation_mask(np.array([0, 0, 1]), 0.1, seed=0, key="image.validation_fraction")
    message = str(error.value)
    assert message.startswith("params.yaml: image.validation_fraction: cannot hold out happy training faces")
    assert "there are 1; at least 2 per class are needed" in message


def test_fer_csv_latin1_names_line(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_bytes(b"emotion,pixels,Usage\n" + fer_row(3).encode() + b"3,caf\xe9,Training\n")
    with pytest.raises(ESLPError, match=re.escape(f"{path}:3: invalid UTF-8 byte b'\\xe9'; save the file as UTF-8")):
        fer.read_csv(path, strict=False)


def test_sst_csv_latin1_names_line(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"0.9,good film .\r\n0.8,caf\xe9 is good .\r\n")
    with pytest.raises(ESLPError, match=re.escape(f"{path}:2: invalid UTF-8 byte b'\\xe9'")):
        sst.read_score_csv(path, "train")


def test_tree_file_latin1_names_line(tmp_path):
    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.txt").write_text("(3 (2 A) (3 film))\n", encoding="utf-8")
    (tmp_path / "dev.txt").write_bytes(b"(3 (2 A) (3 film))\n(3 (2 A) (3 caf\xe9))\n")
    with pytest.raises(ESLPError, match=re.escape(f"{tmp_path / 'dev.txt'}:2: invalid UTF-8 byte")):
        sst.read_trees(tmp_path)


def test_fer_csv_huge_row_skipped(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n" + fer_row(3) + f"0,{' '.join(['1'] * 100_000)},Training\n")
    faces, report = fer.read_csv(path, strict=False)
    assert len(faces) == 1
    assert report.skipped == [(f"{path}:3", "pixels has 100000 values, expected 2304")]


def test_fer_csv_repeated_column_rejected(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage,emotion\n")
    with pytest.raises(ESLPError, match=re.escape(f"{path}:1: header names the column emotion twice")):
        fer.read_csv(path, strict=False)


def test_all_rows_skipped_error_gives_first_reason(tmp_path):
    source = tmp_path / "fer2013.csv"
    source.write_text("emotion,pixels,Usage\n" + fer_row("0.0") + fer_row("3.0"))
    report_path = tmp_path / "report.csv"
    with pytest.raises(ESLPError) as error:
        fer.prepare(images_prepare_params(source, format="csv"), 0, tmp_path / "png", report_path)
    message = str(error.value)
    assert f"no angry faces in the train split (0 angry faces read in all, 2 rows or files skipped, the first {source}:2" in message
    assert "emotion '0.0' is not a whole number 0-6" in message
    assert "set images_prepare.split: random" in message
    assert report_path.is_file()


def test_random_split_error_names_test_fraction(tmp_path):
    source = tmp_path / "fer2013.csv"
    source.write_text("emotion,pixels,Usage\n" + fer_row(0) + fer_row(3))
    with pytest.raises(ESLPError, match="images_prepare.test_fraction 0.2 leaves none there"):
        fer.prepare(images_prepare_params(source, format="csv", split="random"), 0, tmp_path / "png", tmp_path / "report.csv")


def test_decompression_bomb_image_skipped(tmp_path):
    root = tmp_path / "fer"
    for split in ("train", "test"):
        for label in ("angry", "happy"):
            write_face(root / split / label / f"{split}{label}.png", 1)
    bomb = root / "train" / "happy" / "huge.png"
    Image.new("1", (14_000, 14_000)).save(bomb)
    faces, report = fer.read_folders(root, strict=False)
    assert len(faces) == 4
    assert len(report.skipped) == 1
    assert report.skipped[0][0] == str(bomb)
    assert "cannot decode image" in report.skipped[0][1]


def test_sst_csv_unquoted_comma_rejected(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("0.9,good film .\r\n0.9,this film , which is good , rocks .\r\n", newline="")
    with pytest.raises(ESLPError, match=re.escape(f"{path}:2: row has 4 fields, expected 2 (score,sentence)")):
        sst.read_score_csv(path, "train")


def test_sst_csv_wrong_header_named(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("score,text\n0.9,good film .\n")
    with pytest.raises(ESLPError, match=re.escape(f"{path}:1: header ['score', 'text'] must name the columns score and sentence")):
        sst.read_score_csv(path, "train")


def test_sst_csv_empty_sentence_rejected(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("0.9,good film .\n0.9,  \n")
    with pytest.raises(ESLPError, match=re.escape(f"{path}:2: the sentence is empty; remove the row")):
        sst.read_score_csv(path, "train")


def test_sst_csv_long_sentence_read(tmp_path):
    path = tmp_path / "train.csv"
    sentence = " ".join(["good"] * 40_000)
    path.write_text(f'0.9,"{sentence}"\n')
    rows = sst.read_score_csv(path, "train")
    assert len(rows[0][0]) == len(sentence)


def test_tree_label_superscript_rejected():
    with pytest.raises(ESLPError, match="expected a 0-4 label after"):
        sst.parse_tree("(² (2 A) (2 film))", "train.txt:1")


def test_seed_above_numpy_range_rejected():
    with pytest.raises(ESLPError, match="seed: expected a whole number from 0 to 4294967295, found 4294967296"):
        read_seed({"seed": 2**32})


def test_invalid_yaml_one_line_with_line_number(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 42\nsentences:\n  happy_threshold: [0.6\n")
    with pytest.raises(ESLPError) as error:
        load_params(path)
    message = str(error.value)
    assert "\n" not in message
    assert re.match(rf"^{re.escape(str(path))}:\d+: invalid YAML: ", message)


def test_sigterm_removes_temporary_output(tmp_path):
    script = textwrap.dedent(
        """
        import sys, time
        from eslp.io import atomic_path
        from eslp.stage import run_stage

        def main():
            with atomic_path("out.txt") as temporary:
                temporary.write_text("half")
                print("writing", flush=True)
                time.sleep(60)

        run_stage("demo", main)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=tmp_path, stdout=subprocess.PIPE, text=True,
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": ""},
    )
    assert process.stdout.readline().strip() == "writing"
    process.terminate()
    assert process.wait(timeout=30) == 128 + 15
    assert list(tmp_path.iterdir()) == []
