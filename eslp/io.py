"""Output writing that never leaves a half-written file where a later stage could read it."""

import contextlib
import json
import logging
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write a file or folder into.

    When the block finishes, the temporary path replaces ``path`` in one rename. When the
    block raises, the temporary path is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name keeps the suffix, which Keras and NumPy check when saving.
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    _remove(temporary)
    try:
        yield temporary
    except BaseException:
        _remove(temporary)
        raise
    # NOTE: os.replace cannot put a folder over a non-empty folder, so an old output folder
    # is removed first. DVC removes a stage's outputs before it runs the stage anyway.
    if temporary.is_dir():
        _remove(path)
    os.replace(temporary, path)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: dict) -> None:
    """Write ``data`` as indented JSON, refusing NaN and infinity, which DVC cannot compare."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def write_metrics(path: str | os.PathLike, metrics: dict) -> None:
    """Write a metrics file of finite numbers, converting numpy scalars to Python numbers."""

    def convert(value):
        if isinstance(value, dict):
            return {key: convert(item) for key, item in value.items()}
        if isinstance(value, (bool, np.bool_)):
            return int(value)
        if isinstance(value, (int, np.integer)):
            return int(value)
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"metric value {value} is not finite; check the model and its inputs")
        return round(value, 6)

    write_json(path, convert(metrics))
    logger.info("wrote metrics to %s", path)


def save_arrays(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Save arrays to an uncompressed ``.npz`` file that loads with ``allow_pickle=False``."""
    for name, array in arrays.items():
        if np.asarray(array).dtype == object:
            raise TypeError(f"array {name!r} has dtype object, which needs pickle; convert it first")
    with atomic_path(path) as temporary:
        # Through an open file, np.savez writes to the exact name instead of adding ".npz".
        with open(temporary, "wb") as file:
            np.savez(file, **arrays)


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def save_model(model, path: str | os.PathLike) -> None:
    """Save a Keras model in the native ``.keras`` format, replacing ``path`` only when complete."""
    with atomic_path(path) as temporary:
        model.save(temporary)
    logger.info("saved model %s to %s", model.name, path)
