"""Step 3, combination: pair faces with class-matched sentences and train the combined model."""

import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from eslp import CLASSES, plots
from eslp.errors import ESLPError
from eslp.io import save_model
from eslp.language import read_prepared, read_sentences
from eslp.models import make_combined_model
from eslp.streaming import read_features
from eslp.text import encode
from eslp.training import classification_metrics, fit, history_summary, validation_mask

logger = logging.getLogger(__name__)


def make_pairs(face_labels: np.ndarray, sentence_labels: np.ndarray, seed: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Pair faces with sentences of the same class; return ``(face_indices, sentence_indices)``.

    Within each class, faces and sentences are shuffled and paired in turn, and the
    shorter list starts over when it runs out. So every face and every sentence is in at
    least one pair and there are ``max(faces, sentences)`` pairs per class.
    """
    rng = np.random.default_rng(seed)
    face_parts, sentence_parts = [], []
    for label in range(len(CLASSES)):
        faces = rng.permutation(np.flatnonzero(face_labels == label))
        sentences = rng.permutation(np.flatnonzero(sentence_labels == label))
        if len(faces) == 0 or len(sentences) == 0:
            raise ESLPError(
                f"cannot make {name} pairs of {CLASSES[label]} faces and sentences: {len(faces)} faces, "
                f"{len(sentences)} sentences; check metrics/images_prepare.json and metrics/sentences.json"
            )
        count = max(len(faces), len(sentences))
        face_parts.append(faces[np.arange(count) % len(faces)])
        sentence_parts.append(sentences[np.arange(count) % len(sentences)])
    order = rng.permutation(sum(len(part) for part in face_parts))
    return np.concatenate(face_parts)[order], np.concatenate(sentence_parts)[order]


def _sentence_table(sentences: dict[str, pd.DataFrame], split: str) -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    for label_index, label in enumerate(CLASSES):
        frame = sentences[label]
        chosen = frame.loc[frame["split"] == split, "text"].tolist()
        texts.extend(chosen)
        labels.extend([label_index] * len(chosen))
    return texts, np.array(labels, dtype=np.int32)


def train(
    params, seed: int, features_dir: Path, sentences_dir: Path, language_dir: Path, model_path: Path,
    plots_dir: Path | None = None,
) -> dict:
    _, vocabulary, parameters = read_prepared(language_dir)
    sentences = read_sentences(sentences_dir)
    train_faces = read_features(features_dir, "train")
    test_faces = read_features(features_dir, "test")

    # Validation pairs use dev sentences and a held-out part of the training faces, so no
    # training face or sentence is used to choose the epoch.
    held_out = validation_mask(train_faces["labels"], params.validation_fraction, seed, "combine.validation_fraction")
    face_sets = {
        "train": (train_faces["features"][~held_out], train_faces["labels"][~held_out]),
        "validation": (train_faces["features"][held_out], train_faces["labels"][held_out]),
        "test": (test_faces["features"], test_faces["labels"]),
    }
    sentence_splits = {"train": "train", "validation": "dev", "test": "test"}
    inputs, targets, counts = {}, {}, {}
    for name, (features, face_labels) in face_sets.items():
        texts, sentence_labels = _sentence_table(sentences, sentence_splits[name])
        face_index, sentence_index = make_pairs(face_labels, sentence_labels, seed, name)
        token_ids = encode(texts, vocabulary, parameters["max_length"])
        inputs[name] = {"features": features[face_index], "tokens": token_ids[sentence_index]}
        targets[name] = face_labels[face_index]
        counts[name] = {"pairs": len(face_index), "faces": len(face_labels), "sentences": len(texts)}
        logger.info("combine: %d %s pairs from %d faces and %d sentences", len(face_index), name, len(face_labels), len(texts))

    vocabulary_size = parameters["vocabulary_size"]
    model, history = _train_pair_model(params, vocabulary_size, inputs, targets, ("features", "tokens"))
    save_model(model, model_path)
    probabilities = model.predict(inputs["test"], batch_size=256, verbose=0)
    metrics = {"test": classification_metrics(targets["test"], probabilities)}
    metrics.update(history_summary(history))
    if plots_dir is not None:
        plots.write_classifier_plots("combine", plots_dir, history, targets["test"], probabilities)

    # The same branches trained alone on the same pairs show what the combination adds.
    for name, branch_inputs in (("test_image_only", ("features",)), ("test_text_only", ("tokens",))):
        single, _ = _train_pair_model(params, vocabulary_size, inputs, targets, branch_inputs)
        test_inputs = {key: inputs["test"][key] for key in branch_inputs}
        metrics[name] = classification_metrics(targets["test"], single.predict(test_inputs, batch_size=256, verbose=0))
    metrics["pairs"] = counts
    logger.info(
        "combine: test accuracy %.4f on %d pairs (image only %.4f, text only %.4f)",
        metrics["test"]["accuracy"], counts["test"]["pairs"], metrics["test_image_only"]["accuracy"],
        metrics["test_text_only"]["accuracy"],
    )
    return metrics


def _train_pair_model(
    params, vocabulary_size: int, inputs: dict, targets: dict, branch_inputs: tuple[str, ...]
) -> tuple[keras.Model, keras.callbacks.History]:
    """Build and train the combined model, or one of its branches alone, on the training pairs."""
    feature_dim = inputs["train"]["features"].shape[1]
    model = make_combined_model(
        feature_dim, vocabulary_size, params.embedding_dim, params.lstm_units, params.image_units, params.dropout, branch_inputs,
    )
    model.compile(optimizer=keras.optimizers.Adam(params.learning_rate), loss="binary_crossentropy", metrics=["accuracy"])
    train = ({key: inputs["train"][key] for key in branch_inputs}, targets["train"])
    validation = ({key: inputs["validation"][key] for key in branch_inputs}, targets["validation"])
    history = fit(model, train, validation, params)
    return model, history
