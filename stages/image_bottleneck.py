"""Step 2 (image only), part 2: VGG16 bottleneck features and the dense head trained on them."""

from pathlib import Path

from eslp import image
from eslp.io import write_metrics
from eslp.params import read_stage_params
from eslp.stage import run_stage
from eslp.training import make_strategy, set_seed


def main() -> None:
    params = read_stage_params("image_bottleneck")
    strategy = make_strategy(params.distribution)
    set_seed(params.seed)
    with strategy.scope():
        metrics = image.bottleneck(
            params.image,
            params.image_bottleneck,
            params.seed,
            png_dir=Path("data/png"),
            features_dir=Path("data/features"),
            extractor_path=Path("models/feature_extractor.keras"),
            head_path=Path("models/bottleneck_head.keras"),
            plots_dir=Path("plots/image_bottleneck"),
        )
    write_metrics("metrics/image_bottleneck.json", metrics)


if __name__ == "__main__":
    run_stage("image_bottleneck", main)
