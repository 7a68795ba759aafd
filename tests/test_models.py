"""Keras model builders: VGG16 preprocessing, weights sources and their errors, feature alignment and pairing."""

import json

import h5py
import keras
import numpy as np
import pytest

from conftest import write_face
from eslp import combine, fer, image, streaming
from eslp.errors import ESLPError
from eslp.models import (
    VGG16_NOTOP_FILE,
    make_augmentation,
    make_bottleneck_head,
    make_combined_model,
    make_feature_extractor,
    make_image_model,
    make_vgg16_base,
)
from eslp.params import ImageBottleneckParams, ImageParams


def test_extractor_preprocessing_matches_keras():
    extractor = make_feature_extractor(48, "none")
    preprocess = keras.Model(extractor.input, extractor.get_layer("vgg16_preprocess").output)
    faces = np.random.default_rng(0).integers(0, 256, size=(3, 48, 48, 1)).astype(np.float32)
    expected = keras.applications.vgg16.preprocess_input(np.repeat(faces, 3, axis=-1))
    np.testing.assert_allclose(preprocess.predict(faces, verbose=0), expected, atol=1e-4)


def test_extractor_resizes_to_input_size():
    extractor = make_feature_extractor(64, "none")
    assert extractor.get_layer("resize").output.shape == (None, 64, 64, 1)
    assert extractor.output.shape == (None, 2 * 2 * 512)


def test_input_size_below_vgg16_minimum_rejected():
    with pytest.raises(ESLPError, match="minimum input of 32 pixels"):
        make_vgg16_base(24, "none")


def test_imagenet_download_failure_names_file_and_fixes(tmp_path, monkeypatch):
    # A proxy on a closed loopback port makes the download fail at once, with or without internet.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with pytest.raises(ESLPError) as raised:
        make_vgg16_base(48, "imagenet")
    message = str(raised.value)
    assert VGG16_NOTOP_FILE in message
    assert str(tmp_path / "keras" / "models" / VGG16_NOTOP_FILE) in message
    assert "image.weights" in message


def test_missing_weights_file_named(tmp_path):
    path = tmp_path / "vgg16.h5"
    with pytest.raises(ESLPError, match="not found") as raised:
        make_vgg16_base(48, str(path))
    assert str(path) in str(raised.value)


def test_weights_file_not_hdf5_named(tmp_path):
    path = tmp_path / "vgg16.h5"
    path.write_text("not weights")
    with pytest.raises(ESLPError, match="not an HDF5 file") as raised:
        make_vgg16_base(48, str(path))
    assert str(path) in str(raised.value)


def test_weights_of_other_model_rejected(tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tmp_path / "other.weights.h5"
    other.save_weights(path)
    assert h5py.is_hdf5(path)
    with pytest.raises(ESLPError, match="do not fit VGG16") as raised:
        make_vgg16_base(48, str(path))
    assert str(path) in str(raised.value)


def test_local_weights_file_loads(tmp_path):
    source = keras.applications.VGG16(include_top=False, weights=None, input_shape=(48, 48, 3))
    path = tmp_path / "vgg16.weights.h5"
    source.save_weights(path)
    loaded = make_vgg16_base(48, str(path))
    np.testing.assert_array_equal(loaded.get_layer("block5_conv3").get_weights()[0], source.get_layer("block5_conv3").get_weights()[0])


def test_bottleneck_rows_match_labels(tmp_path):
    # Uneven class sizes and a batch size that divides neither count.
    png_dir = tmp_path / "png"
    for split, counts in (("train", {"angry": 7, "happy": 5}), ("test", {"angry": 3, "happy": 4})):
        for label, count in counts.items():
            for index in range(count):
                write_face(png_dir / split / label / f"{label}{index}.png", hash((split, label, index)) % 10_000)
    keras.utils.set_random_seed(1)
    metrics = image.bottleneck(
        ImageParams(weights="none", input_size=48, validation_fraction=0.2),
        ImageBottleneckParams(batch_size=5, head_units=4, dropout=0.0, epochs=1, learning_rate=0.001, patience=1),
        seed=1,
        png_dir=png_dir,
        features_dir=tmp_path / "features",
        extractor_path=tmp_path / "extractor.keras",
        head_path=tmp_path / "head.keras",
    )
    extractor = keras.models.load_model(tmp_path / "extractor.keras", safe_mode=True)
    train = streaming.read_features(tmp_path / "features", "train")
    assert train["features"].shape == (12, 512)
    assert train["labels"].tolist() == [0] * 7 + [1] * 5
    assert train["paths"][7] == "train/happy/happy0.png"
    one_face = fer.load_pngs([png_dir / "train" / "happy" / "happy3.png"])
    np.testing.assert_allclose(train["features"][10], extractor.predict(one_face, verbose=0)[0], rtol=1e-4, atol=1e-4)
    assert metrics["test"]["count"] == 7
    json.dumps(metrics)


def test_pairs_use_every_face_and_sentence():
    face_labels = np.array([0, 0, 0, 1, 1])
    sentence_labels = np.array([0, 1, 1, 1, 1, 0, 1])
    faces, sentences = combine.make_pairs(face_labels, sentence_labels, seed=3, name="train")
    assert len(faces) == 3 + 5
    assert set(faces.tolist()) == set(range(5))
    assert set(sentences.tolist()) == set(range(7))
    np.testing.assert_array_equal(face_labels[faces], sentence_labels[sentences])


def test_pairs_reject_empty_class():
    with pytest.raises(ESLPError, match="cannot make test pairs of happy faces and sentences: 0 faces, 1 sentences"):
        combine.make_pairs(np.array([0, 0]), np.array([0, 1]), seed=0, name="test")


@pytest.mark.parametrize(
    ("inputs", "name", "layers_absent"),
    [
        (("features",), "image_only_model", {"embedding", "lstm", "image_and_text"}),
        (("tokens",), "text_only_model", {"image_dense", "image_and_text"}),
    ],
)
def test_single_branch_model_keeps_one_input(inputs, name, layers_absent):
    model = make_combined_model(8, 20, 4, 3, 5, 0.1, inputs)

    assert model.name == name
    assert [tensor.name for tensor in model.inputs] == list(inputs)
    assert layers_absent.isdisjoint(layer.name for layer in model.layers)


def test_combined_model_has_both_branches():
    model = make_combined_model(8, 20, 4, 3, 5, 0.1)

    assert model.name == "combined_model"
    assert [tensor.name for tensor in model.inputs] == ["features", "tokens"]
    features = np.zeros((2, 8), dtype=np.float32)
    tokens = np.array([[1, 2, 0], [3, 0, 0]], dtype=np.int32)
    assert model.predict({"features": features, "tokens": tokens}, verbose=0).shape == (2, 1)


def test_augmentation_leaves_prediction_unchanged():
    extractor = make_feature_extractor(48, "none")
    head = make_bottleneck_head(512, 4, 0.0)
    faces = np.random.default_rng(0).integers(0, 256, size=(3, 48, 48, 1)).astype(np.uint8)

    plain = make_image_model(extractor, head).predict(faces, verbose=0)
    augmented = make_image_model(extractor, head, make_augmentation(True, 0.1, 0.03)).predict(faces, verbose=0)

    np.testing.assert_allclose(augmented, plain, rtol=1e-5, atol=1e-6)


def test_augmentation_changes_faces_in_training():
    augmentation = make_augmentation(True, 0.1, 0.03)
    faces = np.random.default_rng(0).uniform(0, 255, size=(4, 48, 48, 1)).astype(np.float32)

    changed = keras.ops.convert_to_numpy(augmentation(faces, training=True))

    assert [layer.name for layer in augmentation.layers] == ["flip", "shift", "rotation"]
    assert changed.shape == faces.shape
    assert not np.allclose(changed, faces)


def test_augmentation_off_adds_no_layers():
    augmentation = make_augmentation(False, 0.0, 0.0)
    model = make_image_model(make_feature_extractor(48, "none"), make_bottleneck_head(512, 4, 0.0), augmentation)

    assert augmentation.layers == []
    assert "augmentation" not in [layer.name for layer in model.layers]
