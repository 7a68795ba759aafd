"""Step 1 (language only), part 3: the LSTM language model that predicts sentiment scores."""

from pathlib import Path

from eslp import language_model
from eslp.io import write_metrics
from eslp.params import read_stage_params
from eslp.stage import run_stage
from eslp.training import make_strategy, set_seed


def main() -> None:
    params = read_stage_params("language_train")
    strategy = make_strategy(params.distribution)
    set_seed(params.seed)
    with strategy.scope():
        metrics = language_model.train(
            params.language_train, params.seed, Path("data/language"), Path("models/language_model.keras"),
            plots_dir=Path("plots/language_train"),
        )
    write_metrics("metrics/language_train.json", metrics)


if __name__ == "__main__":
    run_stage("language_train", main)
