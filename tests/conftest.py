"""Shared fixtures: the project root, the real data folder beside it and tiny data sets in real formats."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eslp.params import ImagesPrepareParams

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ESLP_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))
"""Real FER2013 and SST copies kept beside the project, as in CI; absent on a user's machine."""


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "fer2013").is_dir() or not (SHARED_DATA / "sst").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set ESLP_SHARED_DATA to the folder with fer2013/ and sst/)")
    return SHARED_DATA


def write_face(path: Path, value: int, mode: str = "L", size: tuple[int, int] = (48, 48)) -> None:
    """Write a face-sized image with a pattern that depends on ``value``, so files differ."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    grey = rng.integers(0, 256, size=(size[1], size[0]), dtype=np.uint8)
    image = Image.fromarray(grey, mode="L")
    if mode != "L":
        image = image.convert(mode)
    image.save(path)


def images_prepare_params(source: Path, **changes) -> ImagesPrepareParams:
    """Return ``images_prepare`` params for ``source`` with the defaults of params.yaml, changed by ``changes``."""
    values = {
        "format": "folders",
        "source": str(source),
        "split": "usage",
        "test_fraction": 0.2,
        "balance": True,
        "max_per_class": 0,
        "strict": False,
    }
    values.update(changes)
    return ImagesPrepareParams(**values)


def copy_real_faces(shared: Path, root: Path, per_folder: int) -> None:
    """Copy the first ``per_folder`` real FER2013 faces of each split and class folder to ``root``."""
    for split in ("train", "test"):
        for label in ("angry", "happy"):
            source = shared / "fer2013" / split / label
            target = root / split / label
            target.mkdir(parents=True)
            for path in sorted(source.iterdir())[:per_folder]:
                shutil.copy(path, target / path.name)


TINY_TREES = {
    "train": [
        "(4 (3 (2 A) (4 wonderful)) (3 (2 film) (2 .)))",
        "(3 (2 The) (3 (3 (2 acting) (3 (2 is) (3 good))) (2 .)))",
        "(0 (1 (2 A) (0 terrible)) (1 (2 mess) (2 .)))",
        "(1 (2 The) (1 (1 (2 plot) (1 (2 is) (1 dull))) (2 .)))",
        "(2 (2 It) (2 (2 (2 is) (2 (2 a) (2 film))) (2 .)))",
    ],
    "dev": [
        "(4 (2 A) (4 (4 great) (2 film)))",
        "(0 (2 A) (0 (0 awful) (2 mess)))",
    ],
    "test": [
        "(3 (2 The) (3 (3 good) (2 acting)))",
        "(1 (2 The) (1 (1 dull) (2 plot)))",
        "(2 (2 A) (2 film))",
    ],
}
"""A tiny SST trees release: every node labelled 0-4, as in ``trees/train.txt``."""


def write_trees(folder: Path, trees: dict[str, list[str]] = TINY_TREES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in trees.items():
        (folder / f"{split}.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return folder
