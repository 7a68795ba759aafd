"""Step 2, image only: VGG16 bottleneck features with a small dense head, then fine-tuning."""

import logging
from pathlib import Path

import keras
import numpy as np

from eslp import fer, plots
from eslp.errors import ESLPError
from eslp.io import save_arrays, save_model
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


def load_split(png_dir: Path, split: str) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Decode one split's PNGs once into memory: ``(paths, faces, labels)``."""
    paths, labels = fer.list_pngs(png_dir, split)
    if len(paths) == 0:
        raise ESLPError(f"{png_dir / split}: no PNG faces found; run `dvc repro images_prepare` first")
    return paths, fer.load_pngs(paths), labels


def bottleneck(
    image_params, params, seed: int, png_dir: Path, features_dir: Path, extractor_path: Path, head_path: Path,
    plots_dir: Path | None = None,
) -> dict:
    """Extract VGG16 bottleneck features for both splits, then train the dense head on them."""
    extractor = make_feature_extractor(image_params.input_size, image_params.weights)
    arrays = {}
    for split in SPLITS:
        paths, faces, labels = load_split(png_dir, split)
        features = extractor.predict(faces, batch_size=params.batch_size, verbose=0)
        # predict keeps input order, so row i of features belongs to paths[i] and labels[i].
        if features.shape[0] != labels.shape[0]:
            raise RuntimeError(f"{split}: {features.shape[0]} feature rows for {labels.shape[0]} labels")
        names = np.array([str(path.relative_to(png_dir)) for path in paths])
        save_arrays(features_dir / f"{split}.npz", features=features.astype(np.float32), labels=labels, paths=names)
        arrays[split] = (features, labels)
        if split == "test":
            test_faces = faces  # kept for the grid of misclassified faces
        logger.info(
            "image_bottleneck: read %d %s faces from %s, wrote %s features each to %s",
            len(paths), split, png_dir / split, features.shape[1:], features_dir / f"{split}.npz",
        )
    save_model(extractor, extractor_path)

    train_features, train_labels = arrays["train"]
    held_out = validation_mask(train_labels, image_params.validation_fraction, seed, "image.validation_fraction")
    head = make_bottleneck_head(train_features.shape[1], params.head_units, params.dropout)
    head.compile(optimizer=keras.optimizers.Adam(params.learning_rate), loss="binary_crossentropy", metrics=["accuracy"])
    history = fit(
        head,
        (train_features[~held_out], train_labels[~held_out]),
        (train_features[held_out], train_labels[held_out]),
        params,
    )
    save_model(head, head_path)

    test_features, test_labels = arrays["test"]
    probabilities = head.predict(test_features, verbose=0)
    metrics = {"test": classification_metrics(test_labels, probabilities)}
    metrics.update(history_summary(history))
    if plots_dir is not None:
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

    _, faces, labels = load_split(png_dir, "train")
    held_out = validation_mask(labels, image_params.validation_fraction, seed, "image.validation_fraction")
    logger.info(
        "image_finetune: training VGG16's last %d blocks and the head on %d faces, validating on %d",
        params.trainable_blocks, int((~held_out).sum()), int(held_out.sum()),
    )
    history = fit(model, (faces[~held_out], labels[~held_out]), (faces[held_out], labels[held_out]), params)
    save_model(model, model_path)

    _, test_faces, test_labels = load_split(png_dir, "test")
    probabilities = model.predict(test_faces, batch_size=params.batch_size, verbose=0)
    metrics = {"test": classification_metrics(test_labels, probabilities)}
    metrics.update(history_summary(history))
    if plots_dir is not None:
        plots.write_classifier_plots("image_finetune", plots_dir, history, test_labels, probabilities, test_faces)
    logger.info("image_finetune: test accuracy %.4f on %d faces", metrics["test"]["accuracy"], len(test_labels))
    return metrics
