"""Streaming input for the image stages: faces decoded by tf.data, bottleneck features in ``.npy`` files.

PNG files are decoded in parallel batch by batch, features are written to a memory-mapped
``.npy`` file chunk by chunk, and the dense head reads its batches back from that file. So
the number of faces is bounded by disk, unless ``image_finetune.cache: memory`` keeps the decoded
faces of fine-tuning in memory (about 2.3 KB per face).
"""

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from eslp import FACE_SIZE
from eslp.errors import ESLPError, shorten

logger = logging.getLogger(__name__)

SHUFFLE_BUFFER = 10_000
"""Decoded faces that tf.data reshuffles each epoch, about 23 MB of 48x48 uint8 faces.

The file list is also permuted once up front, so a buffer smaller than the data set still
mixes the classes, which ``fer.list_pngs`` lists one after the other.
"""
CHUNK_FACES = 4096
"""Faces per ``predict`` call when extracting features: the outputs of one call are in memory at once."""
MEMORY_CACHE = "memory"


def face_dataset(
    paths: list[Path], labels: np.ndarray, batch_size: int, *, cache: str | None = None, seed: int | None = None
) -> tf.data.Dataset:
    """Return batches of ``(face, label)``, faces as 48x48x1 uint8 decoded from PNG files in parallel.

    ``cache`` is None for one pass (nothing kept), ``""`` to keep decoded faces in memory,
    or a tf.data cache filename, so that later epochs read decoded faces instead of PNGs.
    With a ``seed`` the faces are shuffled, otherwise they keep the order of ``paths``.
    """
    if len(paths) != len(labels):
        raise ValueError(f"{len(paths)} paths for {len(labels)} labels")
    names = np.array([str(path) for path in paths])
    labels = np.asarray(labels, dtype=np.int32)
    if seed is not None:
        order = np.random.default_rng(seed).permutation(len(names))
        names, labels = names[order], labels[order]

    dataset = tf.data.Dataset.from_tensor_slices((names, labels))
    dataset = dataset.map(_decode_face, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache is not None:
        dataset = dataset.cache(cache)
    if seed is not None:
        dataset = dataset.shuffle(min(len(names), SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return _shard_by_data(dataset)


def _decode_face(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    face = tf.io.decode_png(tf.io.read_file(path), channels=1)
    # images_prepare writes 48x48 faces, so another size is a damaged file and fails here.
    return tf.ensure_shape(face, (FACE_SIZE, FACE_SIZE, 1)), label


def _shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    # NOTE: with multi_worker, every worker builds the same dataset and takes its share of each
    # global batch. Sharding by file needs a file reader dataset, and the paths here come from
    # from_tensor_slices.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


class PngFaces(Sequence):
    """Faces decoded from their PNG files only when indexed, as 48x48x1 uint8 arrays."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        return tf.io.decode_png(tf.io.read_file(str(self.paths[index])), channels=1).numpy()


@contextlib.contextmanager
def cache_files(setting: str) -> Iterator[Callable[[str], str]]:
    """Yield a function from a dataset name to its tf.data cache filename, for ``image_finetune.cache``.

    ``memory`` caches in memory. Any other setting is a folder: the cache files go into a new
    temporary folder inside it, removed when the block ends, so a stale cache of other faces
    is never read back.
    """
    if setting == MEMORY_CACHE:
        yield lambda name: ""
        return
    folder = Path(setting)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = tempfile.TemporaryDirectory(prefix="eslp-cache-", dir=folder)
    except OSError as error:
        raise ESLPError(
            f"params.yaml: image_finetune.cache: cannot create cache files in {setting!r} ({error}); "
            "set it to a writable folder or to memory"
        ) from error
    with temporary as path:
        logger.info("caching decoded faces in %s", path)
        yield lambda name: str(Path(path) / name)


@contextlib.contextmanager
def png_errors(png_dir: Path) -> Iterator[None]:
    """Raise ``ESLPError`` for a PNG face that TensorFlow cannot read or that is not 48x48 grey."""
    try:
        yield
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
        # NOTE: only the calls that read PNG files through face_dataset run inside this block,
        # so these TensorFlow errors come from a face file, not from the model.
        raise ESLPError(
            f"{png_dir}: a face PNG is missing, damaged or not {FACE_SIZE}x{FACE_SIZE} grey "
            f"({shorten(error.message.splitlines()[0], 200)}); rerun `dvc repro --force images_prepare`"
        ) from error


def extract_features(
    extractor: keras.Model, paths: list[Path], labels: np.ndarray, batch_size: int, path: Path
) -> float:
    """Write the extractor's features of the faces at ``paths`` to the ``.npy`` file ``path``.

    Row i belongs to ``paths[i]``. The faces are decoded and predicted in chunks of
    ``CHUNK_FACES``, each written to the memory-mapped file before the next one starts.
    Returns the seconds spent.
    """
    started = time.perf_counter()
    feature_dim = int(extractor.output_shape[-1])
    features = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(len(paths), feature_dim))
    chunk = batch_size * max(1, CHUNK_FACES // batch_size)
    for start in range(0, len(paths), chunk):
        stop = min(start + chunk, len(paths))
        dataset = face_dataset(paths[start:stop], labels[start:stop], batch_size)
        rows = extractor.predict(dataset, verbose=0)
        # predict keeps input order, so a row count that differs means lost or repeated faces.
        if rows.shape != (stop - start, feature_dim):
            raise RuntimeError(f"{path}: predict returned {rows.shape} for faces {start}-{stop}")
        features[start:stop] = rows
    features.flush()
    del features
    return time.perf_counter() - started


def write_split_arrays(folder: Path, labels: np.ndarray, names: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "labels.npy", np.asarray(labels, dtype=np.int32), allow_pickle=False)
    np.save(folder / "paths.npy", np.asarray(names, dtype=str), allow_pickle=False)


def read_features(features_dir: Path, split: str) -> dict[str, np.ndarray]:
    """Read one split of ``image_bottleneck``'s output: ``features`` memory-mapped, ``labels`` and ``paths``."""
    folder = features_dir / split
    arrays = {}
    for name in ("features", "labels", "paths"):
        path = folder / f"{name}.npy"
        if not path.is_file():
            raise ESLPError(f"{path}: not found; run `dvc repro image_bottleneck` first")
        arrays[name] = np.load(path, mmap_mode="r" if name == "features" else None, allow_pickle=False)
    if len(arrays["features"]) != len(arrays["labels"]):
        raise ESLPError(
            f"{folder}: {len(arrays['features'])} feature rows for {len(arrays['labels'])} labels; "
            "run `dvc repro --force image_bottleneck`"
        )
    return arrays


def feature_dataset(
    features: np.ndarray, labels: np.ndarray, indices: np.ndarray, batch_size: int, seed: int | None = None
) -> tf.data.Dataset:
    """Return batches of ``(features, label)`` for the rows ``indices``, read from a (memory-mapped) array.

    With a ``seed`` the rows are reshuffled each epoch, otherwise they keep the order of ``indices``.
    """
    feature_dim = features.shape[1]
    labels = np.asarray(labels, dtype=np.int32)

    def gather(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(features[batch], dtype=np.float32), labels[batch]

    def read_batch(batch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        rows, targets = tf.numpy_function(gather, [batch], (tf.float32, tf.int32), stateful=False)
        return tf.ensure_shape(rows, (None, feature_dim)), tf.ensure_shape(targets, (None,))

    dataset = tf.data.Dataset.from_tensor_slices(np.asarray(indices, dtype=np.int64))
    if seed is not None:
        # NOTE: under mirrored or multi_worker, tf.distribute rebuilds the dataset and the seeded
        # order differs from the one-device order, though it is the same on every worker.
        dataset = dataset.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(read_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return _shard_by_data(dataset.prefetch(tf.data.AUTOTUNE))
