"""Measure the peak memory and throughput of the image_bottleneck stage on 1x and 4x the training faces.

The 4x set is the 1x set plus three copies of each face shifted by one pixel (right, down,
and both), so every file is distinct but the work per face is the same. Each scale runs the
real stage script under ``/usr/bin/time -v`` in its own folder, with ``image.weights: none``
so no download is needed. With streaming input the peak resident memory should grow by less
than 25% from 1x to 4x and the extraction throughput should stay within 10%.

A third run times VGG16's bare convolutional base on the 1x faces held in memory as one
array, the baseline for the extraction throughput.

    python bench/streaming_memory.py ../shared/data/fer2013 --faces 1000
"""

import argparse
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

from eslp import CLASSES, FACE_SIZE
from eslp.fer import Face, read_folders, write_pngs

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STAGE = PROJECT_ROOT / "stages" / "image_bottleneck.py"
TIME = "/usr/bin/time"
SHIFTS = ((0, 1), (1, 0), (1, 1))
"""One-pixel shifts (down, right) of the three copies that make the 4x set."""
MAX_GROWTH = 0.25
MAX_THROUGHPUT_CHANGE = 0.10
TEST_FRACTION = 0.1
"""Test faces per training face; the test split is the same at both scales."""

EXTRACTED = re.compile(r"read (\d+) train faces from \S+, wrote \S+ features each to \S+ in ([\d.]+) s \(([\d.]+) faces/s\)")
PEAK_RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")

BASELINE = """
import sys, time
import numpy as np
from eslp import fer
from eslp.models import VGG16_MEAN_BGR, make_vgg16_base
paths, _ = fer.list_pngs(__import__("pathlib").Path(sys.argv[1]), "train")
batch_size = int(sys.argv[2])
faces = np.repeat(fer.load_pngs(paths).astype(np.float32), 3, axis=-1) - np.array(VGG16_MEAN_BGR, dtype=np.float32)
base = make_vgg16_base(48, "none")
base.predict(faces[:batch_size], batch_size=batch_size, verbose=0)
rates = []
for _ in range(int(sys.argv[3])):
    started = time.perf_counter()
    base.predict(faces, batch_size=batch_size, verbose=0)
    rates.append(len(faces) / (time.perf_counter() - started))
print(f"baseline {max(rates):.3f} faces/s")
"""
"""VGG16's convolutional base on in-memory float32 arrays, timed after one warm-up batch; the best of the repeats."""


def shifted(pixels: np.ndarray, down: int, right: int) -> np.ndarray:
    """Shift a face by whole pixels, repeating the edge row and column into the gap."""
    padded = np.pad(pixels, ((down, 0), (right, 0)), mode="edge")
    return padded[:FACE_SIZE, :FACE_SIZE]


def pick_faces(source: Path, count: int | None, seed: int = 0) -> dict[str, dict[str, list[Face]]]:
    """Read the Kaggle folder layout; keep ``count`` training faces (all when None), half per class where possible."""
    faces, _ = read_folders(source, strict=False)
    rng = np.random.default_rng(seed)
    chosen: dict[str, dict[str, list[Face]]] = {"train": {}, "test": {}}
    for split, usage_is_train in (("train", True), ("test", False)):
        pool = [face for face in faces if (face.usage == "Training") == usage_is_train]
        for label in CLASSES:
            members = [face for face in pool if face.label == label]
            if split == "train":
                limit = len(members) if count is None else min(len(members), count // len(CLASSES))
            else:
                train_count = len(chosen["train"][label])
                limit = min(len(members), max(1, int(train_count * TEST_FRACTION)))
            keep = np.sort(rng.choice(len(members), size=limit, replace=False))
            chosen[split][label] = [members[index] for index in keep]
    return chosen


def scale_faces(faces: dict[str, dict[str, list[Face]]], copies: bool) -> dict[str, dict[str, list[Face]]]:
    """Return the faces, with three shifted copies of each training face added when ``copies``."""
    if not copies:
        return faces
    train = {}
    for label, members in faces["train"].items():
        train[label] = list(members) + [
            Face(shifted(face.pixels, down, right), face.label, face.usage, f"{face.source} shifted {down},{right}")
            for down, right in SHIFTS
            for face in members
        ]
    return {"train": train, "test": faces["test"]}


def write_run_folder(folder: Path, faces: dict[str, dict[str, list[Face]]]) -> None:
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["distribution"] = "none"
    params["image"]["weights"] = "none"
    # The head's training is not measured, so one epoch keeps each run short.
    params["image_bottleneck"]["epochs"] = 1
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    write_pngs(folder / "data" / "png", faces)


def run_stage(folder: Path) -> dict[str, float]:
    """Run image_bottleneck in ``folder`` under ``/usr/bin/time -v``; return its peak memory and throughput."""
    result = subprocess.run(
        [TIME, "-v", sys.executable, str(STAGE)], cwd=folder, capture_output=True, text=True, check=False
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"image_bottleneck failed in {folder} with exit status {result.returncode}:\n{output[-3000:]}")
    extracted = EXTRACTED.search(output)
    peak = PEAK_RSS.search(output)
    if not extracted or not peak:
        raise RuntimeError(f"no extraction log line or no peak memory in the output of {folder}:\n{output[-3000:]}")
    return {
        "train_faces": int(extracted.group(1)),
        "seconds": float(extracted.group(2)),
        "faces_per_second": float(extracted.group(3)),
        "peak_mib": int(peak.group(1)) / 1024,
    }


def run_baseline(png_dir: Path, batch_size: int, repeats: int) -> float:
    result = subprocess.run(
        [sys.executable, "-c", BASELINE, str(png_dir), str(batch_size), str(repeats)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"baseline ([\d.]+) faces/s", result.stdout)
    if result.returncode != 0 or not match:
        raise RuntimeError(f"in-memory baseline failed with exit status {result.returncode}:\n{result.stderr[-3000:]}")
    return float(match.group(1))


def measure(source: Path, faces: int | None = None, work_dir: Path | None = None, repeats: int = 2) -> str:
    """Run the 1x, 4x and in-memory baseline runs on the FER2013 folders at ``source``; return a Markdown section.

    ``faces`` limits the 1x training set (all training faces when None). The run folders go
    into ``work_dir``, or a temporary folder that is removed afterwards. Each scale runs
    ``repeats`` times, alternating 1x and 4x, and reports its highest peak memory and its
    best throughput, because other work on the machine only ever slows a run down.
    """
    if not Path(TIME).is_file():
        raise RuntimeError(f"{TIME} not found; install GNU time (Debian: apt-get install time)")
    chosen = pick_faces(source, faces)
    batch_size = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text(encoding="utf-8"))["image_bottleneck"]["batch_size"]
    root = Path(tempfile.mkdtemp(prefix="eslp-streaming-", dir=work_dir))
    try:
        scales = {"1x": False, "4x": True}
        for name, copies in scales.items():
            write_run_folder(root / name, scale_faces(chosen, copies))
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in scales}
        for repeat in range(repeats):
            for name in scales:
                logger.info("running image_bottleneck on the %s faces, run %d of %d", name, repeat + 1, repeats)
                runs[name].append(run_stage(root / name))
                # The stage's outputs would make the next run's folder differ from the first's.
                for output in ("data/features", "models", "metrics"):
                    shutil.rmtree(root / name / output, ignore_errors=True)
        results = {
            name: {
                "train_faces": scale_runs[0]["train_faces"],
                "peak_mib": max(run["peak_mib"] for run in scale_runs),
                "faces_per_second": max(run["faces_per_second"] for run in scale_runs),
            }
            for name, scale_runs in runs.items()
        }
        logger.info("timing VGG16's convolutional base on the 1x faces in memory")
        baseline = run_baseline(root / "1x" / "data" / "png", batch_size, repeats)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return format_section(results, baseline, source, faces, batch_size, repeats)


def format_section(
    results: dict[str, dict[str, float]], baseline: float, source: Path, faces: int | None, batch_size: int, repeats: int
) -> str:
    single, quadruple = results["1x"], results["4x"]
    growth = quadruple["peak_mib"] / single["peak_mib"] - 1
    change = quadruple["faces_per_second"] / single["faces_per_second"] - 1
    ratio = single["faces_per_second"] / baseline
    command = f"python bench/streaming_memory.py {source}" + (f" --faces {faces}" if faces else "") + f" --repeats {repeats}"
    lines = [
        "## Streaming input: memory and throughput of image_bottleneck",
        "",
        f"Command: `{command}`, on {platform.platform()}, {os.cpu_count()} CPU cores as seen by Python, "
        f"`image.weights: none`, batch size {batch_size}. The 4x set adds three one-pixel-shifted copies "
        "of each training face; the test split is the same in both runs. Each scale ran "
        f"{repeats} times, alternating; the table shows the highest peak memory and the best throughput.",
        "",
        "| scale | training faces | peak resident memory (MiB) | extraction (faces/s) |",
        "|---|---|---|---|",
        f"| 1x | {single['train_faces']} | {single['peak_mib']:.0f} | {single['faces_per_second']:.1f} |",
        f"| 4x | {quadruple['train_faces']} | {quadruple['peak_mib']:.0f} | {quadruple['faces_per_second']:.1f} |",
        "",
        f"- Peak memory grew by {growth:+.1%} from 1x to 4x (limit {MAX_GROWTH:+.0%}): "
        f"{'pass' if growth < MAX_GROWTH else 'FAIL'}.",
        f"- Extraction throughput changed by {change:+.1%} (limit ±{MAX_THROUGHPUT_CHANGE:.0%}): "
        f"{'pass' if abs(change) <= MAX_THROUGHPUT_CHANGE else 'FAIL'}.",
        f"- VGG16's bare convolutional base on the 1x faces as one in-memory array: {baseline:.1f} faces/s, "
        f"so the streaming stage reaches {ratio:.0%} of it.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="FER2013 in the Kaggle folder layout (train/ and test/)")
    parser.add_argument("--faces", type=int, default=None, help="training faces in the 1x set (default: all)")
    parser.add_argument("--work-dir", type=Path, default=None, help="folder for the temporary run folders")
    parser.add_argument("--repeats", type=int, default=2, help="runs per scale; the best throughput counts (default: 2)")
    arguments = parser.parse_args()
    if arguments.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {arguments.repeats}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(measure(arguments.source, arguments.faces, arguments.work_dir, arguments.repeats))


if __name__ == "__main__":
    main()
