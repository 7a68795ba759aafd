"""Step 1 (language only), part 1: SST to the scored phrase table, vocabulary and model parameters."""

from pathlib import Path

from eslp import language
from eslp.io import write_metrics
from eslp.params import read_stage_params
from eslp.stage import run_stage


def main() -> None:
    params = read_stage_params("language_prepare")
    metrics = language.prepare(params.language_prepare, Path("data/language"))
    write_metrics("metrics/language_prepare.json", metrics)


if __name__ == "__main__":
    run_stage("language_prepare", main)
