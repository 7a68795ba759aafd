"""Output writing that never leaves a half-written file where a later stage could read it."""

import contextlib
import csv
import json
import logging
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from eslp.errors import ESLPError

# Real fer2013.csv rows are about 9,000 characters, but a damaged row can be far longer. A
# higher limit lets the row reach the readers' own checks, which report it with its line.
csv.field_size_limit(2**31 - 1)

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
    try:
        if temporary.is_dir():
            _remove(path)
        os.replace(temporary, path)
    except BaseException:
        _remove(temporary)
        raise


@contextlib.contextmanager
def open_text(path: str | os.PathLike, newline: str | None = None) -> Iterator:
    """Open a UTF-8 text file (a BOM is skipped) for reading.

    Bytes that are not UTF-8 raise ``ESLPError`` naming the file and line, and a CSV
    field that the ``csv`` module rejects raises one naming the file.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline=newline) as file:
            yield file
    except UnicodeDecodeError as error:
        line, byte = _first_invalid_utf8(path)
        raise ESLPError(f"{path}:{line}: invalid UTF-8 byte {byte!r}; save the file as UTF-8") from error
    except csv.Error as error:
        raise ESLPError(f"{path}: invalid CSV: {error}; check the file's quoting and line ends") from error


def _first_invalid_utf8(path: Path) -> tuple[int, bytes]:
    """Return the 1-based line and the value of the first byte in ``path`` that is not UTF-8."""
    # UnicodeDecodeError.start counts from the chunk a text file was decoding, not from the
    # start of the file, so the file is decoded again in one piece.
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return data[: error.start].count(b"\n") + 1, data[error.start : error.start + 1]
    return 1, b""


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
