"""Step 2 (image only), part 3: fine-tune VGG16's last blocks together with the dense head."""

from pathlib import Path

from eslp import image
from eslp.io import write_metrics
from eslp.params import read_stage_params
from eslp.stage import run_stage
from eslp.training import make_strategy, set_seed


def main() -> None:
    params = read_stage_params("image_finetune")
    strategy = make_strategy(params.distribution)
    set_seed(params.seed)
    with strategy.scope():
        metrics = image.finetune(
            params.image,
            params.image_finetune,
            params.seed,
            png_dir=Path("data/png"),
            extractor_path=Path("models/feature_extractor.keras"),
            head_path=Path("models/bottleneck_head.keras"),
            model_path=Path("models/image_model.keras"),
            plots_dir=Path("plots/image_finetune"),
        )
    write_metrics("metrics/image_finetune.json", metrics)


if __name__ == "__main__":
    run_stage("image_finetune", main)
