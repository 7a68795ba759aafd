"""Benchmark the whole pipeline on real data and write docs/benchmarks.md.

    python bench/run.py --data ../shared/data --workdir /tmp/eslp-bench --out docs/benchmarks.md \\
        --set image.weights=none --set image_finetune.trainable_blocks=5 ...

In a fresh clone of the committed code, with an empty DVC cache, it measures:

1. the whole pipeline (``dvc exp run``), with per-stage wall times and every metric;
2. reruns after a threshold-only change, as a fraction of run 1 (median of ``--repeats``
   distinct threshold pairs, so that none is restored from DVC's run cache);
3. ``dvc repro`` with nothing changed (median of ``--repeats`` runs);
4. bottleneck extraction throughput against a bare VGG16 forward pass on in-memory arrays
   of the same faces, both in one process;
5. peak memory and throughput of image_bottleneck on 1x and 4x the faces
   (bench/streaming_memory.py, on a subset of ``--memory-faces``);
6. optionally (``--csv-run``) the pipeline on the SST sentence CSV files with real scores.

The accuracy table at the top compares the test metrics of run 1 with the project's goals.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

from eslp.io import write_text

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STAGE_LINE = re.compile(r"Running stage '([^']+)'")

# Threshold pairs that the SST trees allow (label boundaries), none equal to the defaults.
THRESHOLD_CHANGES = [(0.8, 0.2), (0.8, 0.4), (0.6, 0.2)]

ACCURACY_GOALS = [
    # (model, metric shown, stage, key in its metrics file, goal)
    ("image (fine-tuned VGG16)", "balanced test accuracy, happy vs angry", "image_finetune", "test.balanced_accuracy", 0.94),
    ("image (bottleneck head)", "balanced test accuracy, happy vs angry", "image_bottleneck", "test.balanced_accuracy", None),
    ("language (LSTM)", "SST binary test accuracy, neutral left out", "language_train", "test.binary_accuracy", 0.855),
    ("combined", "accuracy on test pairs", "combine", "test.accuracy", 0.97),
    ("image only, same test pairs", "accuracy on test pairs", "combine", "test_image_only.accuracy", None),
    ("text only, same test pairs", "accuracy on test pairs", "combine", "test_text_only.accuracy", None),
]

THROUGHPUT_SCRIPT = """
import json, sys, time
from pathlib import Path
import numpy as np
from eslp import fer, streaming
from eslp.models import make_feature_extractor
from eslp.training import set_seed

png_dir, batch_size, weights, scratch = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
repeats, count = int(sys.argv[5]), int(sys.argv[6])
set_seed(0)
extractor = make_feature_extractor(48, weights)
vgg16 = extractor.get_layer("vgg16")
paths, labels = fer.list_pngs(png_dir, "train")
chosen = np.random.default_rng(0).permutation(len(paths))[:count]
paths, labels = [paths[index] for index in chosen], labels[chosen]
# The bare pass gets the faces already decoded, grey repeated to three channels, as floats.
arrays = np.repeat(fer.load_pngs(paths).astype("float32"), 3, axis=-1)

# Warm both paths up once, so that neither pays for tracing.
vgg16.predict(arrays[: 2 * batch_size], batch_size=batch_size, verbose=0)
streaming.extract_features(extractor, paths[: 2 * batch_size], labels[: 2 * batch_size], batch_size, scratch / "warm-up.npy")

results = {"count": len(paths), "bare": [], "stage": []}
for _ in range(repeats):
    start = time.perf_counter()
    vgg16.predict(arrays, batch_size=batch_size, verbose=0)
    results["bare"].append(len(paths) / (time.perf_counter() - start))
    seconds = streaming.extract_features(extractor, paths, labels, batch_size, scratch / "features.npy")
    results["stage"].append(len(paths) / seconds)
print(json.dumps(results))
"""


def run_streaming(command: list[str], cwd: Path, env: dict, log_path: Path) -> tuple[float, dict[str, float]]:
    """Run ``command``, copying its output to ``log_path``; return the total and per-stage wall seconds.

    A stage's time runs from DVC's "Running stage" line to the next "Updating lock file"
    line, so it includes the interpreter and TensorFlow start-up.
    """
    stage_times: dict[str, float] = {}
    current, started_at = None, 0.0
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(command) + "\n")
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            log.write(line)
            log.flush()
            now = time.perf_counter()
            match = STAGE_LINE.search(line)
            if match:
                current, started_at = match.group(1), now
            elif current and line.startswith("Updating lock file"):
                stage_times[current] = now - started_at
                current = None
        if process.wait() != 0:
            raise SystemExit(f"{' '.join(command)} failed with status {process.returncode}; see {log_path}")
    return time.perf_counter() - start, stage_times


def read_metrics(repo: Path) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted((repo / "metrics").glob("*.json"))}


def flatten(value, prefix=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flatten(item, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix, value


def machine_description() -> list[str]:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        kilobytes = int(meminfo.read_text().split()[1])
        memory = f", {kilobytes / 1024 / 1024:.0f} GiB memory"
    versions = subprocess.run(
        [sys.executable, "-c", "import tensorflow, keras, dvc, numpy; print(tensorflow.__version__, keras.__version__, "
         "dvc.__version__, numpy.__version__, len(tensorflow.config.list_physical_devices('GPU')))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    gpus = "no GPU" if versions[4] == "0" else f"{versions[4]} GPU(s) seen by TensorFlow"
    return [
        f"- Machine: {cpu}, {os.cpu_count()} cores{memory}, {gpus}; {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, TensorFlow {versions[0]}, Keras {versions[1]}, DVC {versions[2]}, NumPy {versions[3]}",
    ]


def shell_line(words: list[str]) -> str:
    return " ".join(word if " " not in word else f'"{word}"' for word in words)


def make_clone(data: Path, workdir: Path) -> Path:
    """Clone the committed project into ``workdir`` (removed first) and link the data into it."""
    if workdir.exists():
        shutil.rmtree(workdir)
    subprocess.run(["git", "clone", "-q", str(PROJECT_ROOT), str(workdir)], check=True)
    repo = workdir.resolve()
    (repo / "data" / "raw").mkdir(parents=True)
    (repo / "data" / "raw" / "fer2013").symlink_to(data / "fer2013")
    (repo / "data" / "raw" / "sst").symlink_to(data / "sst")
    return repo


def make_env(repo: Path) -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(repo)
    env["DVC_NO_ANALYTICS"] = "1"
    # Unbuffered output, so that each "Running stage" line arrives when DVC prints it.
    env["PYTHONUNBUFFERED"] = "1"
    return env


def lookup(metrics: dict, stage: str, key: str):
    value = metrics.get(stage, {})
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def accuracy_table(metrics: dict) -> list[str]:
    lines = ["| model | metric | measured | goal | reached |", "|---|---|---:|---:|---|"]
    for model, metric, stage, key, goal in ACCURACY_GOALS:
        value = lookup(metrics, stage, key)
        measured = "not measured" if value is None else f"{100 * value:.1f}%"
        goal_text = "" if goal is None else f"≥ {100 * goal:.1f}%"
        reached = ""
        if goal is not None and value is not None:
            reached = "yes" if value >= goal else "no"
        lines.append(f"| {model} | {metric} | {measured} | {goal_text} | {reached} |")
    return lines


def run_section(title: str, command: list[str], total: float, stage_times: dict[str, float], metrics: dict) -> list[str]:
    lines = [f"## {title}", "", "```", shell_line(command), "```", "", f"Wall time: {total:.0f} s.", "",
             "| stage | wall time (s) |", "|---|---:|"]
    lines += [f"| {stage} | {seconds:.1f} |" for stage, seconds in stage_times.items()]
    if not stage_times:
        lines.append("| (none ran) | |")
    lines += ["", "<details><summary>Every metric after this run</summary>", "", "| metric | value |", "|---|---:|"]
    for stage, values in metrics.items():
        for key, value in flatten(values):
            lines.append(f"| {stage}: {key} | {value} |")
    lines += ["", "</details>", ""]
    return lines


def measure_throughput(repo: Path, env: dict, weights: str, batch_size: int, repeats: int, count: int) -> dict:
    """Time feature extraction as image_bottleneck does it against a bare VGG16 pass, in one process."""
    scratch = repo / "bench-throughput"
    scratch.mkdir(exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", THROUGHPUT_SCRIPT, str(repo / "data" / "png"), str(batch_size), weights, str(scratch),
         str(repeats), str(count)],
        cwd=repo, env=env, capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"throughput measurement failed:\n{result.stderr[-3000:]}")
    shutil.rmtree(scratch)
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure_memory(repo: Path, env: dict, data: Path, faces: int, repeats: int) -> str:
    """Run the clone's streaming memory benchmark and return its Markdown section."""
    command = [sys.executable, str(repo / "bench" / "streaming_memory.py"), str(data / "fer2013"), "--faces", str(faces),
               "--repeats", str(repeats), "--work-dir", str(repo)]
    result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"streaming memory measurement failed:\n{result.stderr[-3000:]}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with fer2013/ and sst/ (the real data)")
    parser.add_argument("--workdir", type=Path, required=True, help="folder for the clone; removed first")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md", help="Markdown report to write")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="params.yaml value for every run, as `dvc exp run -S` takes it; repeatable")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions of each short measurement (default: 3)")
    parser.add_argument("--throughput-faces", type=int, default=2000,
                        help="training faces timed for the extraction throughput (default: 2000)")
    parser.add_argument("--memory-faces", type=int, default=1000,
                        help="training faces of the 1x set in the streaming memory measurement; 0 skips it (default: 1000)")
    parser.add_argument("--csv-run", action="store_true", help="also run the pipeline on the SST sentence CSV files")
    args = parser.parse_args()
    if not 1 <= args.repeats <= len(THRESHOLD_CHANGES):
        parser.error(f"--repeats must be between 1 and {len(THRESHOLD_CHANGES)}, the number of distinct threshold pairs")

    repo = make_clone(args.data.resolve(), args.workdir)
    env = make_env(repo)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    dvc = [sys.executable, "-m", "dvc"]
    settings = [word for override in args.overrides for word in ("-S", override)]
    command_line = shell_line(["python", "bench/run.py"] + sys.argv[1:])
    sections: list[str] = []

    print("run 1: whole pipeline, empty cache", flush=True)
    full_command = ["exp", "run"] + settings
    full_total, full_stages = run_streaming(dvc + full_command, repo, env, repo / "run1.log")
    metrics = read_metrics(repo)
    sections += run_section("Run 1: whole pipeline, empty cache", ["dvc"] + full_command, full_total, full_stages, metrics)

    print("threshold-only reruns", flush=True)
    rerun_rows, rerun_totals = [], []
    for index, (happy, angry) in enumerate(THRESHOLD_CHANGES[: args.repeats], start=1):
        command = full_command + ["-S", f"sentences.happy_threshold={happy}", "-S", f"sentences.angry_threshold={angry}"]
        total, stages = run_streaming(dvc + command, repo, env, repo / f"thresholds{index}.log")
        rerun_totals.append(total)
        combined = lookup(read_metrics(repo), "combine", "test.accuracy")
        combined_text = "not measured" if combined is None else f"{combined:.4f}"
        rerun_rows.append(f"| `{shell_line(['dvc'] + command)}` | {', '.join(stages) or '(none)'} | {total:.1f} | "
                          f"{100 * total / full_total:.1f}% | {combined_text} |")
    rerun_median = statistics.median(rerun_totals)

    print("no-change repro", flush=True)
    noop_totals = []
    for index in range(args.repeats):
        total, stages = run_streaming(dvc + ["repro"], repo, env, repo / f"noop{index + 1}.log")
        if stages:
            raise SystemExit(f"`dvc repro` with nothing changed ran {', '.join(stages)}; see {repo}/noop{index + 1}.log")
        noop_totals.append(total)

    print("bottleneck throughput", flush=True)
    weights = next((item.split("=", 1)[1] for item in args.overrides if item.startswith("image.weights=")), "imagenet")
    # The params of the last run are in the clone's params.yaml, because dvc exp run -S writes them there.
    batch_size = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))["image_bottleneck"]["batch_size"]
    throughput = measure_throughput(repo, env, weights, batch_size, args.repeats, args.throughput_faces)
    bare, stage = statistics.median(throughput["bare"]), statistics.median(throughput["stage"])

    memory_section = ""
    if args.memory_faces:
        print("streaming memory", flush=True)
        memory_section = measure_memory(repo, env, args.data.resolve(), args.memory_faces, args.repeats)

    if args.csv_run:
        print("CSV run", flush=True)
        csv_command = full_command + ["-S", "language_prepare.format=csv", "-S", "language_prepare.source=data/raw/sst/derived",
                                      "-S", "sentences.happy_threshold=0.7", "-S", "sentences.angry_threshold=0.3"]
        total, stages = run_streaming(dvc + csv_command, repo, env, repo / "csv.log")
        sections += run_section("SST sentence CSV with real scores, thresholds 0.7/0.3", ["dvc"] + csv_command, total, stages,
                                read_metrics(repo))

    lines = ["# Benchmarks", "", f"Made by `{command_line}` on commit `{commit}`, in a fresh clone with an empty DVC cache.", ""]
    lines += machine_description()
    lines += ["", "## Accuracy (run 1, held-out test data)", ""] + accuracy_table(metrics)
    lines += ["", "## Speed", "", "| figure | measured | goal |", "|---|---:|---:|",
              f"| whole pipeline, empty cache (run 1) | {full_total:.0f} s | ≤ 1800 s |",
              f"| rerun after a threshold-only change, median of {len(rerun_totals)} | {rerun_median:.1f} s = "
              f"{100 * rerun_median / full_total:.1f}% of run 1 | ≤ 5% |",
              f"| `dvc repro` with nothing changed, median of {len(noop_totals)} | {statistics.median(noop_totals):.2f} s | ≤ 2 s |",
              f"| bottleneck extraction ({stage:.1f} images/s) against a bare VGG16 forward pass ({bare:.1f} images/s), "
              f"{throughput['count']} faces, median of {len(throughput['bare'])} | {100 * stage / bare:.1f}% | ≥ 85% |",
              "", "Stage times run from DVC's `Running stage` line to its `Updating lock file` line, so they include "
              "Python and TensorFlow start-up. The logs of every run are in the work folder.", "",
              "### Threshold-only reruns", "", "| command | stages run | wall time (s) | of run 1 | combined test accuracy |",
              "|---|---|---:|---:|---:|"] + rerun_rows + [""]
    if memory_section:
        lines += [memory_section.replace("## Streaming input", "### Streaming input"), ""]
    lines += sections
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, "\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
