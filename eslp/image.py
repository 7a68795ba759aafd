"""Step 2, image only: VGG16 bottleneck features with a small dense head, then fine-tuning."""

import logging
from pathlib import Path

import keras
import numpy as np

from eslp import fer, plots, streaming
from eslp.errors import ESLPError
from eslp.io import atomic_path, save_model
from eslp.models import (
    load_model,
    make_augmentation,
    make_bottleneck_head,
    make_feature_extractor,
    make_image_model,
    set_trainable_blocks,
)
from eslp.training import classification_metrics, fit, history_summary, validation_mask

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")


def list_split(png_dir: Path, split: str) -> tuple[list[Path], np.ndarray]:
    """List one split's PNG faces: ``(paths, labels)``."""
    paths, labels = fer.list_pngs(png_dir, split)
    if len(paths) == 0:
        raise ESLPError(f"{png_dir / split}: no PNG faces found; run `dvc repro images_prepare` first")
    return paths, labels


def _select(paths: list[Path], mask: np.ndarray) -> list[Path]:
    return [path for path, chosen in zip(paths, mask) if chosen]


def bottleneck(
    image_params, params, seed: int, png_dir: Path, features_dir: Path, extractor_path: Path, head_path: Path,
    plots_dir: Path | None = None,
) -> dict:
    """Extract VGG16 bottleneck features for both splits, then train the dense head on them."""
    extractor = make_feature_extractor(image_params.input_size, image_params.weights)
    with atomic_path(features_dir) as temporary, streaming.png_errors(png_dir):
        for split in SPLITS:
            paths, labels = list_split(png_dir, split)
            names = np.array([str(path.relative_to(png_dir)) for path in paths])
            streaming.write_split_arrays(temporary / split, labels, names)
            seconds = streaming.extract_features(
                extractor, paths, labels, params.batch_size, temporary / split / "features.npy"
            )
            logger.info(
                "image_bottleneck: read %d %s faces from %s, wrote %s features each to %s in %.1f s (%.1f faces/s)",
                len(paths), split, png_dir / split, extractor.output_shape[1:], features_dir / split,
                seconds, len(paths) / seconds,
            )
    save_model(extractor, extractor_path)

    train = streaming.read_features(features_dir, "train")
    train_labels = train["labels"]
    held_out = validation_mask(train_labels, image_params.validation_fraction, seed, "image.validation_fraction")
    head = make_bottleneck_head(train["features"].shape[1], params.head_units, params.dropout)
    head.compile(optimizer=keras.optimizers.Adam(params.learning_rate), loss="binary_crossentropy", metrics=["accuracy"])
    history = fit(
        head,
        streaming.feature_dataset(train["features"], train_labels, np.flatnonzero(~held_out), params.batch_size, seed),
        streaming.feature_dataset(train["features"], train_labels, np.flatnonzero(held_out), params.batch_size),
        params,
    )
    save_model(head, head_path)

    test = streaming.read_features(features_dir, "test")
    test_labels = test["labels"]
    test_data = streaming.feature_dataset(test["features"], test_labels, np.arange(len(test_labels)), params.batch_size)
    probabilities = head.predict(test_data, verbose=0)
    metrics = {"test": classification_metrics(test_labels, probabilities)}
    metrics.update(history_summary(history))
    if plots_dir is not None:
        # The grid decodes only the misclassified faces it shows.
        test_faces = streaming.PngFaces([png_dir / name for name in test["paths"]])
        plots.write_classifier_plots("image_bottleneck", plots_dir, history, test_labels, probabilities, test_faces)
    logger.info("image_bottleneck: head test accuracy %.4f on %d faces", metrics["test"]["accuracy"], len(test_labels))
    return metrics


def finetune(
    image_params, params, seed: int, png_dir: Path, extractor_path: Path, head_path: Path, model_path: Path,
    plots_dir: Path | None = None,
) -> dict:
    """Fine-tune VGG16's last convolutional blocks together with the bottleneck head."""
    extractor = load_model(extractor_path, "image_bottleneck")
    head = load_model(head_path, "image_bottleneck")
    set_trainable_blocks(extractor, params.trainable_blocks)
    model = make_image_model(extractor, head, make_augmentation(params.flip, params.shift, params.rotation))
    # SGD with a low learning rate and momentum is the original recipe for ImageNet weights,
    # so that the fine-tuned blocks move slowly and keep the features the head was trained
    # on. Adam is the option for blocks that start from random weights.
    if params.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=params.learning_rate, momentum=params.momentum)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=params.learning_rate)
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])

    paths, labels = list_split(png_dir, "train")
    held_out = validation_mask(labels, image_params.validation_fraction, seed, "image.validation_fraction")
    logger.info(
        "image_finetune: training the top %d VGG16 block(s) and the head on %d faces, validating on %d",
        params.trainable_blocks, int((~held_out).sum()), int(held_out.sum()),
    )
    # The faces are decoded in the first epoch and read from the cache in later ones.
    # NOTE: a cache folder is untested with more than one replica, where Keras reads one
    # batch ahead to build the model. The tested setting there is memory.
    with streaming.cache_files(params.cache) as cache_file, streaming.png_errors(png_dir):
        train_data = streaming.face_dataset(
            _select(paths, ~held_out), labels[~held_out], params.batch_size, cache=cache_file("train"), seed=seed
        )
        validation_data = streaming.face_dataset(
            _select(paths, held_out), labels[held_out], params.batch_size, cache=cache_file("validation")
        )
        history = fit(model, train_data, validation_data, params)
    save_model(model, model_path)

    test_paths, test_labels = list_split(png_dir, "test")
    with streaming.png_errors(png_dir):
        probabilities = model.predict(streaming.face_dataset(test_paths, test_labels, params.batch_size), verbose=0)
    metrics = {"test": classification_metrics(test_labels, probabilities)}
    metrics.update(history_summary(history))
    if plots_dir is not None:
        plots.write_classifier_plots(
            "image_finetune", plots_dir, history, test_labels, probabilities, streaming.PngFaces(test_paths)
        )
    logger.info("image_finetune: test accuracy %.4f on %d faces", metrics["test"]["accuracy"], len(test_labels))
    return metrics
