"""The streaming memory benchmark's helpers: shifted copies, the Markdown verdicts and the log pattern."""

import logging
import sys
from pathlib import Path

import numpy as np

from conftest import PROJECT_ROOT, write_face
from eslp import image
from eslp.fer import Face
from eslp.params import ImageBottleneckParams, ImageParams

sys.path.insert(0, str(PROJECT_ROOT / "bench"))
import streaming_memory  # noqa: E402


def test_shifted_moves_one_pixel():
    pixels = np.arange(48 * 48, dtype=np.int64).reshape(48, 48).astype(np.uint8)

    moved = streaming_memory.shifted(pixels, down=1, right=0)

    assert moved.shape == (48, 48)
    np.testing.assert_array_equal(moved[1:], pixels[:-1])
    np.testing.assert_array_equal(moved[0], pixels[0])


def test_scale_faces_adds_three_copies():
    face = Face(np.zeros((48, 48), dtype=np.uint8), "happy", "Training", "a.jpg")
    test_face = Face(np.ones((48, 48), dtype=np.uint8), "happy", "PublicTest", "b.jpg")
    faces = {"train": {"angry": [], "happy": [face]}, "test": {"angry": [], "happy": [test_face]}}

    scaled = streaming_memory.scale_faces(faces, copies=True)

    assert len(scaled["train"]["happy"]) == 4
    assert scaled["train"]["happy"][0] is face
    assert scaled["test"] == faces["test"]
    assert streaming_memory.scale_faces(faces, copies=False) is faces


def test_section_reports_limits():
    results = {
        "1x": {"train_faces": 100, "peak_mib": 1000.0, "faces_per_second": 50.0},
        "4x": {"train_faces": 400, "peak_mib": 1300.0, "faces_per_second": 47.0},
    }

    section = streaming_memory.format_section(results, 50.0, Path("fer2013"), 100, 64, 2)

    assert "Peak memory grew by +30.0% from 1x to 4x (limit +25%): FAIL." in section
    assert "Extraction throughput changed by -6.0% (limit ±10%): pass." in section
    assert "reaches 100% of it" in section
    assert "`python bench/streaming_memory.py fer2013 --faces 100 --repeats 2`" in section


def test_log_pattern_matches_stage(tmp_path, caplog):
    png_dir = tmp_path / "png"
    for split in ("train", "test"):
        for label in ("angry", "happy"):
            for index in range(3):
                write_face(png_dir / split / label / f"{label}{index}.png", index)
    caplog.set_level(logging.INFO, logger="eslp.image")

    image.bottleneck(
        ImageParams(weights="none", input_size=48, validation_fraction=0.34),
        ImageBottleneckParams(batch_size=4, head_units=4, dropout=0.0, epochs=1, learning_rate=0.001, patience=1),
        seed=1,
        png_dir=png_dir,
        features_dir=tmp_path / "features",
        extractor_path=tmp_path / "extractor.keras",
        head_path=tmp_path / "head.keras",
    )

    match = streaming_memory.EXTRACTED.search(caplog.text)
    assert match is not None, caplog.text
    assert match.group(1) == "6"
