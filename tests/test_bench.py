"""The benchmark command starts and writes its report, on tiny data so that it runs in minutes."""

import subprocess
import sys

import pytest

from conftest import PROJECT_ROOT, write_trees
from pipeline import TINY_PARAMS, environment, write_tiny_faces

WORDS = {0: "awful", 1: "dull", 3: "good", 4: "wonderful"}


def write_tiny_data(root):
    """Write FER folders and SST trees with every polar label in every split, for any threshold pair."""
    write_tiny_faces(root / "fer2013", per_class=12)
    trees = {}
    for split, count in (("train", 6), ("dev", 2), ("test", 3)):
        trees[split] = [
            f"({label} (2 {split}{index}) ({label} (2 film) ({label} {word})))"
            for index in range(count)
            for label, word in WORDS.items()
        ]
    write_trees(root / "sst" / "trees", trees)


@pytest.mark.slow
def test_benchmark_writes_report(tmp_path):
    write_tiny_data(tmp_path / "data")
    overrides = [
        f"{section}.{key}={value}"
        for section, values in TINY_PARAMS.items()
        if section != "language_prepare"
        for key, value in values.items()
    ]
    out = tmp_path / "benchmarks.md"
    command = [sys.executable, str(PROJECT_ROOT / "bench" / "run.py"), "--data", str(tmp_path / "data"),
               "--workdir", str(tmp_path / "work"), "--out", str(out), "--repeats", "1",
               "--throughput-faces", "16", "--memory-faces", "0"]
    command += [word for override in overrides for word in ("--set", override)]

    result = subprocess.run(command, env=environment(PROJECT_ROOT), capture_output=True, text=True, timeout=900)

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = out.read_text()
    assert report.startswith("# Benchmarks")
    for heading in ("## Accuracy", "## Speed", "### Threshold-only reruns", "## Run 1: whole pipeline, empty cache"):
        assert heading in report
    for figure in ("whole pipeline, empty cache", "rerun after a threshold-only change", "with nothing changed",
                   "bottleneck extraction"):
        assert figure in report
    assert "| combined | accuracy on test pairs |" in report
    assert "not measured" not in report
