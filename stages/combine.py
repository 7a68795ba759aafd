"""Step 3 (combination): faces paired with class-matched sentences, and the combined model."""

from pathlib import Path

from eslp import combine
from eslp.io import write_metrics
from eslp.params import read_stage_params
from eslp.stage import run_stage
from eslp.training import make_strategy, set_seed


def main() -> None:
    params = read_stage_params("combine")
    strategy = make_strategy(params.distribution)
    set_seed(params.seed)
    with strategy.scope():
        metrics = combine.train(
            params.combine,
            params.seed,
            features_dir=Path("data/features"),
            sentences_dir=Path("data/sentences"),
            language_dir=Path("data/language"),
            model_path=Path("models/combined_model.keras"),
            plots_dir=Path("plots/combine"),
        )
    write_metrics("metrics/combine.json", metrics)


if __name__ == "__main__":
    run_stage("combine", main)
