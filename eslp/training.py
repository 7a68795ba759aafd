"""Shared training helpers: seeding, validation splits, callbacks and test metrics."""

import logging

import keras
import numpy as np
import tensorflow as tf

from eslp import CLASSES
from eslp.errors import ESLPError

logger = logging.getLogger(__name__)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras, and ask TensorFlow for deterministic kernels."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def validation_mask(labels: np.ndarray, fraction: float, seed: int, key: str) -> np.ndarray:
    """Return a boolean mask choosing ``fraction`` of each class for validation.

    Each class keeps at least one item on each side, so a class with fewer than two items
    raises ``ESLPError`` naming the params ``key`` of the fraction.
    """
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for label in range(len(CLASSES)):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            raise ESLPError(
                f"params.yaml: {key}: cannot hold out {CLASSES[label]} training faces for validation, because "
                f"there are {len(members)}; at least 2 per class are needed, so raise images_prepare.max_per_class "
                "or add faces"
            )
        count = min(len(members) - 1, max(1, int(np.floor(fraction * len(members) + 0.5))))
        mask[rng.choice(members, size=count, replace=False)] = True
    return mask


def fit(model: keras.Model, train, validation, params) -> keras.callbacks.History:
    """Train ``model`` for up to ``params.epochs`` epochs with early stopping on the validation loss.

    ``train`` is ``(inputs, targets)`` or a ``tf.data.Dataset`` that batches and shuffles
    itself, and ``validation`` is ``(inputs, targets)`` or a batched dataset. The weights of
    the epoch with the best validation loss are kept.
    """
    early_stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=params.patience, restore_best_weights=True)
    if isinstance(train, tf.data.Dataset):
        # The dataset batches and shuffles itself. Keras would only warn about shuffle=True.
        inputs, targets, batching = train, None, {"shuffle": False}
    else:
        inputs, targets = train
        batching = {"batch_size": params.batch_size, "shuffle": True}
    return model.fit(
        inputs,
        targets,
        validation_data=validation,
        epochs=params.epochs,
        callbacks=[early_stopping],
        verbose=2,
        **batching,
    )


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
    """Return the number of epochs run and the best validation loss, for the metrics file."""
    return {"epochs_run": len(history.history["loss"]), "best_val_loss": float(min(history.history["val_loss"]))}
