"""Shared training helpers: seeding, validation splits, callbacks and test metrics."""

import logging

import keras
import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras, and ask TensorFlow for deterministic kernels."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def validation_mask(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Return a boolean mask choosing ``fraction`` of each class, at least one item each, for validation."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(len(members) - 1, max(1, int(round(fraction * len(members)))))
        if count > 0:
            mask[rng.choice(members, size=count, replace=False)] = True
    return mask


def early_stopping(patience: int) -> keras.callbacks.EarlyStopping:
    """Stop when validation loss stops improving and keep the weights of the best epoch."""
    return keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy and log loss of happy probabilities against 0/1 labels."""
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    predicted = (probabilities > 0.5).astype(np.int64)
    recalls = [float(np.mean(predicted[labels == label] == label)) for label in (0, 1) if np.any(labels == label)]
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
    loss = -np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "balanced_accuracy": float(np.mean(recalls)),
        "loss": float(loss),
        "count": int(len(labels)),
    }


def history_summary(history: keras.callbacks.History) -> dict[str, float]:
    """The number of epochs run and the best validation loss, for the metrics file."""
    losses = history.history.get("val_loss", [])
    return {"epochs_run": len(history.history.get("loss", [])), "best_val_loss": float(min(losses)) if losses else 0.0}
