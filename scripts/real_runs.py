"""Run the three real-data runs of the pipeline in a fresh clone and write docs/results.md.

    python scripts/real_runs.py --data ../shared/data --workdir /tmp/eslp-real --out docs/results.md

Run 1 is the whole pipeline from an empty DVC cache (FER folders, SST trees, thresholds
0.6/0.4). Run 2 changes only the thresholds to 0.8/0.2. Run 3 switches to the SST
sentence CSV files with real scores, at 0.7/0.3. All use ``image.weights=none`` because
this script is meant for machines that cannot download the ImageNet weights; pass
``--weights imagenet`` where they can.
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STAGE_LINE = re.compile(r"Running stage '([^']+)'")


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
        [sys.executable, "-c", "import tensorflow, keras, dvc, numpy; print(tensorflow.__version__, keras.__version__, dvc.__version__, numpy.__version__)"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    return [
        f"- Machine: {cpu}, {os.cpu_count()} cores{memory}, no GPU; {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, TensorFlow {versions[0]}, Keras {versions[1]}, DVC {versions[2]}, NumPy {versions[3]}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with fer2013/ and sst/ (the real data)")
    parser.add_argument("--workdir", type=Path, required=True, help="empty or missing folder for the clone; removed first")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "results.md", help="Markdown report to write")
    parser.add_argument("--weights", default="none", help="image.weights for all runs (default: none)")
    args = parser.parse_args()

    data = args.data.resolve()
    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    subprocess.run(["git", "clone", "-q", str(PROJECT_ROOT), str(args.workdir)], check=True)
    repo = args.workdir.resolve()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    (repo / "data" / "raw").mkdir(parents=True)
    (repo / "data" / "raw" / "fer2013").symlink_to(data / "fer2013")
    (repo / "data" / "raw" / "sst").symlink_to(data / "sst")

    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(repo)
    env["DVC_NO_ANALYTICS"] = "1"
    # Unbuffered output, so that each "Running stage" line arrives when DVC prints it.
    env["PYTHONUNBUFFERED"] = "1"
    dvc = [sys.executable, "-m", "dvc"]
    weights = f"image.weights={args.weights}"
    runs = [
        ("Run 1: whole pipeline, empty cache, FER folders, SST trees, thresholds 0.6/0.4",
         dvc + ["exp", "run", "-S", weights]),
        ("Run 2: thresholds 0.8/0.2 only",
         dvc + ["exp", "run", "-S", weights, "-S", "sentences.happy_threshold=0.8", "-S", "sentences.angry_threshold=0.2"]),
        ("Run 3: SST sentence CSV with real scores, thresholds 0.7/0.3",
         dvc + ["exp", "run", "-S", weights, "-S", "language_prepare.format=csv",
                "-S", "language_prepare.source=data/raw/sst/derived",
                "-S", "sentences.happy_threshold=0.7", "-S", "sentences.angry_threshold=0.3"]),
    ]

    lines = ["# Real-data runs", "", f"Made by `python scripts/real_runs.py --data {args.data} --workdir {args.workdir}` "
             f"on commit `{commit}`, in a fresh clone with an empty DVC cache.", ""]
    lines += machine_description()
    lines += ["", "Stage times run from DVC's `Running stage` line to its `Updating lock file` line, so they "
              "include Python and TensorFlow start-up. Logs of each run are in the work folder.", ""]
    totals = []
    for index, (title, command) in enumerate(runs, start=1):
        print(title, flush=True)
        total, stage_times = run_streaming(command, repo, env, repo / f"run{index}.log")
        totals.append(total)
        metrics = read_metrics(repo)
        command_line = " ".join(part if " " not in part else f'"{part}"' for part in ["dvc"] + command[len(dvc):])
        lines += [f"## {title}", "", "```", command_line, "```", "", f"Wall time: {total:.0f} s.", "",
                  "| stage | wall time (s) |", "|---|---:|"]
        lines += [f"| {stage} | {seconds:.1f} |" for stage, seconds in stage_times.items()]
        if not stage_times:
            lines.append("| (none ran) | |")
        lines += ["", "| metric | value |", "|---|---:|"]
        for stage, values in metrics.items():
            for key, value in flatten(values):
                lines.append(f"| {stage}: {key} | {value} |")
        lines.append("")
    lines += ["## Run 2 against run 1", "",
              f"Run 2 took {totals[1]:.0f} s, {100 * totals[1] / totals[0]:.1f}% of run 1's {totals[0]:.0f} s.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
