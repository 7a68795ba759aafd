"""Step 1, language only: the LSTM language model, trained to predict SST sentiment scores."""

import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from eslp import plots
from eslp.io import save_model
from eslp.language import read_prepared
from eslp.models import make_language_model
from eslp.text import encode, encode_ragged
from eslp.training import fit, history_summary

logger = logging.getLogger(__name__)

SST_NEGATIVE_MAX = 0.4
SST_POSITIVE_MIN = 0.6
"""SST's standard binary task: score <= 0.4 is negative, > 0.6 positive, the rest left out.

Fixed here, apart from the happy and angry thresholds, so that the language model's test
accuracy does not change when the thresholds do.
"""
BUCKET_BOUNDARIES = [4, 8, 16, 32]


def token_dataset(rows: list[list[int]], targets: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
    """Shuffled batches of token ids, grouped by length so that short phrases are not padded to sentences."""
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    flat = tf.constant(np.concatenate([np.asarray(row, dtype=np.int32) for row in rows]))
    dataset = tf.data.Dataset.from_tensor_slices((starts, lengths, targets.astype(np.float32)))
    dataset = dataset.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(lambda start, length, target: (flat[start : start + length], target))
    dataset = dataset.bucket_by_sequence_length(
        lambda tokens, target: tf.shape(tokens)[0],
        bucket_boundaries=BUCKET_BOUNDARIES,
        bucket_batch_sizes=[batch_size] * (len(BUCKET_BOUNDARIES) + 1),
    )
    # Each bucket ends with one partial batch, so the batch count is known. Stating it lets
    # Keras show progress and stops it warning that the input "ran out of data".
    bucket_sizes = np.bincount(np.searchsorted(BUCKET_BOUNDARIES, lengths, side="right"))
    batch_count = int(np.sum(-(-bucket_sizes // batch_size)))
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(batch_count))
    return dataset.prefetch(tf.data.AUTOTUNE)


def score_metrics(scores: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """SST binary accuracy (neutral sentences left out) and the mean absolute error of the score."""
    scores = np.asarray(scores, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    polar = (scores <= SST_NEGATIVE_MAX) | (scores > SST_POSITIVE_MIN)
    correct = (predicted[polar] > 0.5) == (scores[polar] > SST_POSITIVE_MIN)
    return {
        "binary_accuracy": float(np.mean(correct)) if polar.any() else 0.0,
        "binary_count": int(polar.sum()),
        "score_mae": float(np.mean(np.abs(predicted - scores))),
        "count": int(len(scores)),
    }


def training_rows(table: pd.DataFrame, train_on: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Select the training rows for ``train_on`` and return them with their float32 targets.

    ``phrases`` and ``sentences`` train on the score. ``polar_phrases`` is SST's binary
    task: neutral phrases are left out and the others become 0 or 1.
    """
    rows = table[table["split"] == "train"]
    if train_on == "sentences":
        rows = rows[rows["sentence"]]
    targets = rows["score"].to_numpy(np.float32)
    if train_on == "polar_phrases":
        polar = (targets <= SST_NEGATIVE_MAX) | (targets > SST_POSITIVE_MIN)
        rows = rows[polar]
        targets = (targets[polar] > SST_POSITIVE_MIN).astype(np.float32)
    return rows, targets


def train(params, seed: int, language_dir: Path, model_path: Path, plots_dir: Path | None = None) -> dict:
    table, vocabulary, parameters = read_prepared(language_dir)
    max_length = parameters["max_length"]
    train_rows, targets = training_rows(table, params.train_on)
    dev = table[(table["split"] == "dev") & table["sentence"]]
    test = table[(table["split"] == "test") & table["sentence"]]

    dataset = token_dataset(encode_ragged(train_rows["text"], vocabulary, max_length), targets, params.batch_size, seed)
    dev_ids = encode(dev["text"], vocabulary, max_length)
    model = make_language_model(
        len(vocabulary), params.embedding_dim, params.lstm_units, params.bidirectional, params.dropout
    )
    # Binary cross-entropy with the score as a soft target keeps predictions in [0, 1].
    model.compile(
        optimizer=keras.optimizers.Adam(params.learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.MeanAbsoluteError(name="mae")],
    )
    logger.info(
        "language_train: training on %d rows (train_on: %s), validating on %d dev sentences",
        len(train_rows), params.train_on, len(dev),
    )
    history = fit(model, dataset, (dev_ids, dev["score"].to_numpy(np.float32)), params)
    save_model(model, model_path)

    metrics, predictions = {}, {}
    for name, frame in (("dev", dev), ("test", test)):
        predicted = model.predict(encode(frame["text"], vocabulary, max_length), batch_size=256, verbose=0)
        metrics[name] = score_metrics(frame["score"].to_numpy(), predicted)
        predictions[name] = predicted.reshape(-1)
    if plots_dir is not None:
        # The confusion matrix and ROC curve use SST's binary task, as binary_accuracy does.
        scores = test["score"].to_numpy()
        polar = (scores <= SST_NEGATIVE_MAX) | (scores > SST_POSITIVE_MIN)
        labels = (scores[polar] > SST_POSITIVE_MIN).astype(np.int64)
        plots.write_classifier_plots("language_train", plots_dir, history, labels, predictions["test"][polar])
    metrics["train_rows"] = len(train_rows)
    metrics.update(history_summary(history))
    logger.info(
        "language_train: test binary accuracy %.4f on %d sentences, score MAE %.4f; model saved to %s",
        metrics["test"]["binary_accuracy"], metrics["test"]["binary_count"], metrics["test"]["score_mae"], model_path,
    )
    return metrics
