"""Streaming input of the image stages: tf.data face datasets, the decode cache and chunked features."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import write_face
from eslp import fer, streaming
from eslp.errors import ESLPError


def write_faces(folder: Path, count: int) -> tuple[list[Path], np.ndarray]:
    paths = []
    for index in range(count):
        path = folder / f"face{index}.png"
        write_face(path, 1000 + index)
        paths.append(path)
    return paths, np.arange(count, dtype=np.int32) % 2


def unbatch(dataset) -> tuple[np.ndarray, np.ndarray]:
    faces, labels = [], []
    for face_batch, label_batch in dataset:
        faces.append(face_batch.numpy())
        labels.append(label_batch.numpy())
    return np.concatenate(faces), np.concatenate(labels)


def test_face_dataset_keeps_order(tmp_path):
    paths, labels = write_faces(tmp_path, 7)

    faces, read_labels = unbatch(streaming.face_dataset(paths, labels, batch_size=3))

    assert faces.dtype == np.uint8
    np.testing.assert_array_equal(faces, fer.load_pngs(paths))
    np.testing.assert_array_equal(read_labels, labels)


def test_face_dataset_shuffles_with_seed(tmp_path):
    paths, _ = write_faces(tmp_path, 12)
    labels = np.arange(12, dtype=np.int32)
    dataset = streaming.face_dataset(paths, labels, batch_size=5, cache="", seed=3)

    first_faces, first_order = unbatch(dataset)
    _, second_order = unbatch(dataset)

    assert sorted(first_order.tolist()) == list(range(12))
    assert first_order.tolist() != list(range(12))
    assert first_order.tolist() != second_order.tolist()
    np.testing.assert_array_equal(first_faces, fer.load_pngs([paths[index] for index in first_order]))


@pytest.mark.parametrize("setting", ["memory", "folder"])
def test_cache_decodes_once(tmp_path, setting):
    paths, labels = write_faces(tmp_path / "png", 6)
    cache_setting = str(tmp_path / "cache") if setting == "folder" else "memory"

    with streaming.cache_files(cache_setting) as cache_file:
        dataset = streaming.face_dataset(paths, labels, batch_size=4, cache=cache_file("train"))
        first, _ = unbatch(dataset)
        if setting == "folder":
            assert list((tmp_path / "cache").glob("eslp-cache-*/train*"))
        # The second epoch must come from the cache, because the PNG files are gone.
        for path in paths:
            path.unlink()
        second, _ = unbatch(dataset)

    np.testing.assert_array_equal(first, second)
    if setting == "folder":
        assert list((tmp_path / "cache").iterdir()) == []


def test_cache_folder_not_writable_rejected(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    with pytest.raises(ESLPError, match="image_finetune.cache: cannot create cache files in"):
        with streaming.cache_files(str(blocker / "cache")):
            pass


def test_face_dataset_rejects_wrong_size(tmp_path):
    paths, labels = write_faces(tmp_path, 2)
    write_face(paths[1], 5, size=(40, 48))

    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[48,40,1\] is not compatible with expected shape \[48,48,1\]"):
        unbatch(streaming.face_dataset(paths, labels, batch_size=2))


def test_png_errors_name_folder_and_fix(tmp_path):
    paths, labels = write_faces(tmp_path, 2)
    write_face(paths[1], 5, size=(40, 48))

    with pytest.raises(ESLPError) as error, streaming.png_errors(tmp_path):
        unbatch(streaming.face_dataset(paths, labels, batch_size=2))

    assert str(error.value).startswith(f"{tmp_path}: a face PNG is missing, damaged or not 48x48 grey (")
    assert "[48,40,1] is not compatible with expected shape [48,48,1]" in str(error.value)
    assert str(error.value).endswith("; rerun `dvc repro --force images_prepare`")


def test_features_written_in_chunks(tmp_path, monkeypatch):
    # Chunks of 4 faces over 11 faces: two full chunks and a partial one.
    monkeypatch.setattr(streaming, "CHUNK_FACES", 4)
    paths, labels = write_faces(tmp_path / "png", 11)
    faces = keras.Input((48, 48, 1))
    extractor = keras.Model(faces, keras.layers.Flatten()(keras.layers.AveragePooling2D(8)(faces)))
    path = tmp_path / "features.npy"

    streaming.extract_features(extractor, paths, labels, batch_size=3, path=path)

    features = np.load(path)
    assert features.shape == (11, 36)
    assert features.dtype == np.float32
    np.testing.assert_allclose(features, extractor.predict(fer.load_pngs(paths).astype(np.float32), verbose=0), rtol=1e-6)


def test_read_features_missing_file(tmp_path):
    streaming.write_split_arrays(tmp_path / "train", np.array([0, 1]), np.array(["a.png", "b.png"]))

    with pytest.raises(ESLPError, match=r"features\.npy: not found; run `dvc repro image_bottleneck` first"):
        streaming.read_features(tmp_path, "train")


def test_read_features_row_mismatch(tmp_path):
    streaming.write_split_arrays(tmp_path / "train", np.array([0, 1]), np.array(["a.png", "b.png"]))
    np.save(tmp_path / "train" / "features.npy", np.zeros((3, 4), dtype=np.float32))

    with pytest.raises(ESLPError, match="3 feature rows for 2 labels"):
        streaming.read_features(tmp_path, "train")


def test_feature_dataset_reads_chosen_rows(tmp_path):
    features = np.arange(20, dtype=np.float32).reshape(10, 2)
    np.save(tmp_path / "features.npy", features)
    mapped = np.load(tmp_path / "features.npy", mmap_mode="r")
    labels = np.arange(10, dtype=np.int32)
    indices = np.array([7, 1, 4, 9])

    rows, read_labels = unbatch(streaming.feature_dataset(mapped, labels, indices, batch_size=3))
    shuffled_rows, shuffled_labels = unbatch(streaming.feature_dataset(mapped, labels, indices, batch_size=3, seed=1))

    np.testing.assert_array_equal(rows, features[indices])
    assert read_labels.tolist() == [7, 1, 4, 9]
    assert sorted(shuffled_labels.tolist()) == [1, 4, 7, 9]
    np.testing.assert_array_equal(shuffled_rows, features[shuffled_labels])
