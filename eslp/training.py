"""Shared training helpers: seeding, validation splits, callbacks and test metrics."""

import json
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from eslp import CLASSES
from eslp.errors import ESLPError, shorten

logger = logging.getLogger(__name__)

PATCHED_KERAS = "3.15."
"""The Keras release whose private trainer functions ``_patch_keras_for_multi_worker`` replaces."""


def set_seed(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras, and ask TensorFlow for deterministic kernels."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def make_strategy(distribution: str) -> tf.distribute.Strategy:
    """Create the ``tf.distribute`` strategy that the ``distribution`` param names.

    Call it before any other TensorFlow work, because MultiWorkerMirroredStrategy must set up
    its collective ops before TensorFlow initialises its devices. Build and compile models
    inside its ``scope()``.
    """
    if distribution == "mirrored":
        # Every GPU; on a machine without one, every logical CPU device, which is one unless
        # tf.config.set_logical_device_configuration split the CPU.
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        if not tf.config.list_logical_devices("GPU"):
            # NOTE: the x86_64 install is tensorflow-cpu, which finds no GPU; see the README's Scaling section.
            logger.warning("distribution mirrored: TensorFlow sees no GPU, so it mirrors over %d CPU device(s)", len(devices))
        strategy = tf.distribute.MirroredStrategy([device.name for device in devices])
    elif distribution == "multi_worker":
        _check_tf_config(os.environ.get("TF_CONFIG"))
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        _patch_keras_for_multi_worker()
    else:
        strategy = tf.distribute.get_strategy()
    logger.info("distribution %s: %d replicas in sync", distribution, strategy.num_replicas_in_sync)
    return strategy


def _check_tf_config(text: str | None) -> None:
    fix = (
        'set TF_CONFIG to {"cluster": {"worker": ["host1:port", ...]}, "task": {"type": "worker", "index": N}} '
        "on each machine, or set distribution: none"
    )
    if not text:
        raise ESLPError(f"params.yaml: distribution: multi_worker needs the TF_CONFIG environment variable, which is unset; {fix}")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ESLPError(f"TF_CONFIG: invalid JSON ({error}); {fix}") from error
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    workers = cluster.get("worker") if isinstance(cluster, dict) else None
    if not isinstance(workers, list) or not workers:
        raise ESLPError(f"TF_CONFIG: no cluster.worker list in {text[:200]!r}; {fix}")
    if not isinstance(task, dict) or task.get("type") != "worker" or not isinstance(task.get("index"), int):
        raise ESLPError(f"TF_CONFIG: task must be {{\"type\": \"worker\", \"index\": N}}, found {shorten(task)}; {fix}")
    if not 0 <= task["index"] < len(workers):
        raise ESLPError(f"TF_CONFIG: task index {task['index']} is not one of the {len(workers)} workers; {fix}")


def _patch_keras_for_multi_worker() -> None:
    """Make Keras 3.15's ``fit`` and ``evaluate`` run under MultiWorkerMirroredStrategy.

    Keras averages values across workers with ``strategy.reduce``, which that strategy
    rejects in two places (keras-team/keras#20585): the whole first ``(inputs, targets)``
    batch in one call, and scalar metrics along an ``axis=0`` they do not have. Reducing each
    tensor on its own, and scalars with ``axis=None``, gives the values Keras expects.
    """
    # NOTE: this replaces private Keras functions, in this process only and only for
    # multi_worker; check it against keras/src/backend/tensorflow/trainer.py on upgrades.
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if not keras.__version__.startswith(PATCHED_KERAS):
        raise ESLPError(
            f"distribution: multi_worker is tested with Keras {PATCHED_KERAS} only, and Keras {keras.__version__} "
            f"is installed; install keras=={PATCHED_KERAS}.* or use distribution: mirrored or none"
        )
    if getattr(tf_trainer, "_eslp_multi_worker_patch", False):
        return
    reduce_per_replica = tf_trainer.reduce_per_replica

    def reduce_scalars_without_axis(values, strategy, reduction):
        if reduction in ("auto", "mean") and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return keras.tree.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return reduce_per_replica(values, strategy, reduction)

    def maybe_symbolic_build(model, iterator=None, data_batch=None):
        strategy = model.distribute_strategy
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = keras.tree.map_structure(
                    lambda value: strategy.reduce("MEAN", value, axis=None), next(batches)
                )
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    tf_trainer.reduce_per_replica = reduce_scalars_without_axis
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    tf_trainer._eslp_multi_worker_patch = True


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
