"""Step 2 (image only), part 1: FER2013 happy and angry faces to PNG folders."""

from pathlib import Path

from eslp import fer
from eslp.io import write_metrics
from eslp.params import read_stage_params
from eslp.stage import run_stage


def main() -> None:
    params = read_stage_params("images_prepare")
    metrics = fer.prepare(params.images_prepare, params.seed, Path("data/png"), Path("data/images_report.csv"))
    write_metrics("metrics/images_prepare.json", metrics)


if __name__ == "__main__":
    run_stage("images_prepare", main)
