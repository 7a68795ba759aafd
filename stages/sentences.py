"""Step 1 (language only), part 2: happy and angry sentence sets at the sentiment thresholds."""

from pathlib import Path

from eslp import language
from eslp.io import write_metrics
from eslp.params import read_stage_params
from eslp.stage import run_stage


def main() -> None:
    params = read_stage_params("sentences")
    metrics = language.write_sentences(params.sentences, Path("data/language"), Path("data/sentences"))
    write_metrics("metrics/sentences.json", metrics)


if __name__ == "__main__":
    run_stage("sentences", main)
