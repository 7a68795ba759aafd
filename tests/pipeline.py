"""Helpers that set up a throwaway copy of the project as a git + DVC repository and run DVC in it."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from conftest import PROJECT_ROOT, write_face

PROJECT_FILES = ("dvc.yaml", "params.yaml", "stages", "eslp", ".dvc/config", ".dvcignore", ".gitignore", "data/.gitignore")
GIT_USER = ["-c", "user.name=ESLP tests", "-c", "user.email=tests@eslp.invalid"]

TINY_PARAMS = {
    "images_prepare": {"max_per_class": 0},
    "language_prepare": {
        "format": "csv",
        "source": "data/raw/sst",
        "csv_train": "train.csv",
        "csv_dev": "dev.csv",
        "csv_test": "test.csv",
    },
    "language_train": {"epochs": 1, "embedding_dim": 8, "lstm_units": 8, "batch_size": 16},
    "image": {"weights": "none"},
    "image_bottleneck": {"epochs": 2, "head_units": 16, "batch_size": 16},
    "image_finetune": {"epochs": 1, "batch_size": 16},
    "combine": {"epochs": 1, "embedding_dim": 8, "lstm_units": 8, "image_units": 8, "batch_size": 16},
}
"""Overrides that make every stage train for seconds on tiny data, without downloading weights."""

POSITIVE_WORDS = ["good", "great", "fine", "lovely", "moving", "smart"]
NEGATIVE_WORDS = ["bad", "dull", "awful", "weak", "boring", "messy"]


def environment(repo: Path) -> dict[str, str]:
    """The environment for DVC in ``repo``: this interpreter first on PATH, the copy's own ``eslp`` imported."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(repo)
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def run(repo: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=repo, env=environment(repo), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def dvc(repo: Path, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(repo, sys.executable, "-m", "dvc", *arguments, check=check)


def git(repo: Path, *arguments: str) -> subprocess.CompletedProcess:
    return run(repo, "git", *GIT_USER, *arguments)


def stages_run(output: str) -> list[str]:
    """The stages that ``dvc repro`` or ``dvc exp run`` reports running, in order."""
    return re.findall(r"Running stage '([^']+)'", output)


def update_params(repo: Path, overrides: dict) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in overrides.items():
        if isinstance(values, dict):
            params[section].update(values)
        else:
            params[section] = values
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def write_tiny_faces(root: Path, per_class: int) -> None:
    """Write the Kaggle folder layout with synthetic faces: happy faces bright, angry faces dark."""
    for split, usage in (("train", "Training"), ("test", "PublicTest")):
        for label, base in (("angry", 40), ("happy", 200)):
            for index in range(per_class):
                write_face(root / split / label / f"{usage}_{base}{index}.jpg", base * 1000 + index)


def write_tiny_sentences(folder: Path, per_split: dict[str, int], seed: int = 0) -> None:
    """Write ``score,sentence`` CSV files with no header and CRLF line ends, as the common SST extraction has."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in per_split.items():
        lines = []
        for index in range(count):
            positive = index % 2 == 0
            words = POSITIVE_WORDS if positive else NEGATIVE_WORDS
            score = rng.uniform(0.65, 0.95) if positive else rng.uniform(0.05, 0.35)
            # The split name and index keep every sentence unique, so none is dropped as a leak.
            text = f"{split} film {index} is {words[index % len(words)]} and {words[(index + 1) % len(words)]} ."
            lines.append(f"{score:.5f},{text}\r\n")
        (folder / f"{split}.csv").write_text("".join(lines), encoding="utf-8", newline="")


def make_repository(repo: Path) -> Path:
    """Copy the project's pipeline files into ``repo`` and make it a git repository with DVC."""
    repo.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = PROJECT_ROOT / name
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(source, target)
    run(repo, "git", "init", "-q", "-b", "main")
    return repo


def make_tiny_pipeline(repo: Path) -> Path:
    """A repository whose whole pipeline runs in about a minute: synthetic faces and sentences."""
    make_repository(repo)
    write_tiny_faces(repo / "data/raw/fer2013", per_class=12)
    write_tiny_sentences(repo / "data/raw/sst", {"train": 40, "dev": 12, "test": 16})
    update_params(repo, TINY_PARAMS)
    return repo
