"""Keras models of the three steps: the language model, the VGG16 image models and the combined model.

Every model is built from standard Keras layers only, with no ``Lambda`` layer, so the
saved ``.keras`` files load with ``safe_mode=True``.
"""

import logging
import os
from pathlib import Path

import h5py
import keras
from keras import layers

from eslp import FACE_SIZE
from eslp.errors import ESLPError

logger = logging.getLogger(__name__)

VGG16_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG16_MIN_SIZE = 32
VGG16_BLOCKS = 5
VGG16_MEAN_BGR = (103.939, 116.779, 123.68)
"""ImageNet channel means that ``keras.applications.vgg16.preprocess_input`` subtracts ("caffe" mode)."""


def make_language_model(
    vocabulary_size: int, embedding_dim: int, lstm_units: int, bidirectional: bool = False, dropout: float = 0.0
) -> keras.Model:
    """Embedding and LSTM over token ids (0 pads), predicting a sentiment score in [0, 1].

    ``bidirectional`` reads each phrase in both directions, and ``dropout`` applies to the
    embeddings and to the LSTM's output.
    """
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True, name="embedding")(tokens)
    x = layers.Dropout(dropout, name="embedding_dropout")(x)
    lstm = layers.LSTM(lstm_units, name="lstm")
    x = layers.Bidirectional(lstm, name="bidirectional_lstm")(x) if bidirectional else lstm(x)
    x = layers.Dropout(dropout, name="lstm_dropout")(x)
    score = layers.Dense(1, activation="sigmoid", name="score")(x)
    return keras.Model(tokens, score, name="language_model")


def _keras_cache_file(name: str) -> Path:
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models" / name


def make_vgg16_base(input_size: int, weights: str) -> keras.Model:
    """Build the VGG16 convolutional base with weights ``imagenet``, ``none`` or a local weights file."""
    if input_size < VGG16_MIN_SIZE:
        raise ESLPError(
            f"params.yaml: image.input_size: {input_size} is below VGG16's minimum input of "
            f"{VGG16_MIN_SIZE} pixels; set it to {VGG16_MIN_SIZE} or more (48 keeps FER's size)"
        )
    shape = (input_size, input_size, 3)
    if weights == "none":
        return keras.applications.VGG16(include_top=False, weights=None, input_shape=shape)
    if weights == "imagenet":
        try:
            return keras.applications.VGG16(include_top=False, weights="imagenet", input_shape=shape)
        except Exception as error:
            # Keras raises a bare Exception for a failed download; anything else is not ours.
            if "URL fetch failure" not in str(error):
                raise
            raise ESLPError(
                f"cannot download the VGG16 ImageNet weights {VGG16_NOTOP_FILE} ({error}); "
                f"either place that file at {_keras_cache_file(VGG16_NOTOP_FILE)}, "
                "or set image.weights in params.yaml to the path of a local copy (or to none to train from scratch)"
            ) from error

    path = Path(weights)
    if not path.is_file():
        raise ESLPError(
            f"params.yaml: image.weights: weights file {weights!r} not found; "
            "set it to imagenet, none or the path of a VGG16 weights file"
        )
    if not h5py.is_hdf5(path):
        raise ESLPError(
            f"{path}: not an HDF5 file, so it cannot hold Keras weights; "
            f"point image.weights at a VGG16 notop weights file such as {VGG16_NOTOP_FILE}"
        )
    try:
        return keras.applications.VGG16(include_top=False, weights=str(path), input_shape=shape)
    except (ValueError, KeyError) as error:
        raise ESLPError(
            f"{path}: the weights do not fit VGG16's convolutional base ({error}); "
            f"use weights saved from keras.applications.VGG16(include_top=False), such as {VGG16_NOTOP_FILE}"
        ) from error


def make_feature_extractor(input_size: int, weights: str) -> keras.Model:
    """Map 48x48x1 grey faces (0-255) to flat VGG16 bottleneck features.

    The grey channel is repeated to three and the ImageNet channel means are subtracted,
    as ``keras.applications.vgg16.preprocess_input`` does, inside the model so that saved
    models take raw faces.
    """
    faces = keras.Input(shape=(FACE_SIZE, FACE_SIZE, 1), name="face")
    x = faces
    if input_size != FACE_SIZE:
        x = layers.Resizing(input_size, input_size, interpolation="bilinear", name="resize")(x)
    x = layers.Concatenate(name="grey_to_rgb")([x, x, x])
    x = layers.Normalization(mean=list(VGG16_MEAN_BGR), variance=[1.0, 1.0, 1.0], name="vgg16_preprocess")(x)
    x = make_vgg16_base(input_size, weights)(x)
    features = layers.Flatten(name="bottleneck_features")(x)
    return keras.Model(faces, features, name="feature_extractor")


def make_bottleneck_head(feature_dim: int, units: int, dropout: float) -> keras.Model:
    """The small dense classifier on bottleneck features: happy probability."""
    features = keras.Input(shape=(feature_dim,), name="features")
    x = layers.Dense(units, activation="relu", name="head_dense")(features)
    # Dropout before the output layer, as in the original recipe, since the head overfits quickly.
    x = layers.Dropout(dropout, name="head_dropout")(x)
    happy = layers.Dense(1, activation="sigmoid", name="happy")(x)
    return keras.Model(features, happy, name="bottleneck_head")


def set_trainable_blocks(feature_extractor: keras.Model, trainable_blocks: int) -> None:
    """Freeze the feature extractor except VGG16's last ``trainable_blocks`` convolutional blocks."""
    vgg16 = feature_extractor.get_layer("vgg16")
    first_trainable = VGG16_BLOCKS - trainable_blocks + 1
    vgg16.trainable = True
    for layer in vgg16.layers:
        block = layer.name.split("_")[0]
        layer.trainable = block.startswith("block") and int(block[len("block"):]) >= first_trainable


def make_augmentation(flip: bool, shift: float, rotation: float) -> keras.Sequential:
    """Random flips, shifts and rotations of faces, active only while training.

    ``shift`` is a fraction of the face's side and ``rotation`` a fraction of a full turn,
    as Keras's ``RandomTranslation`` and ``RandomRotation`` take them. Empty areas repeat
    the nearest edge pixel, which looks more like a face than black corners do.
    """
    steps = []
    if flip:
        steps.append(layers.RandomFlip("horizontal", name="flip"))
    if shift > 0:
        steps.append(layers.RandomTranslation(shift, shift, fill_mode="nearest", name="shift"))
    if rotation > 0:
        steps.append(layers.RandomRotation(rotation, fill_mode="nearest", name="rotation"))
    return keras.Sequential(steps, name="augmentation")


def make_image_model(feature_extractor: keras.Model, head: keras.Model, augmentation: keras.Model | None = None) -> keras.Model:
    faces = keras.Input(shape=(FACE_SIZE, FACE_SIZE, 1), name="face")
    x = faces if augmentation is None or not augmentation.layers else augmentation(faces)
    happy = head(feature_extractor(x))
    return keras.Model(faces, happy, name="image_model")


def make_combined_model(
    feature_dim: int,
    vocabulary_size: int,
    embedding_dim: int,
    lstm_units: int,
    image_units: int,
    dropout: float,
    inputs: tuple[str, ...] = ("features", "tokens"),
) -> keras.Model:
    """Concatenate image bottleneck features with a new language branch and predict the class.

    With ``inputs`` set to ``("features",)`` or ``("tokens",)``, the same branch alone makes
    the image-only or text-only model that the combined model is compared with.
    """
    branches, model_inputs = [], []
    if "features" in inputs:
        features = keras.Input(shape=(feature_dim,), name="features")
        model_inputs.append(features)
        branches.append(layers.Dense(image_units, activation="relu", name="image_dense")(features))
    if "tokens" in inputs:
        tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
        model_inputs.append(tokens)
        text = layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True, name="embedding")(tokens)
        branches.append(layers.LSTM(lstm_units, name="lstm")(text))
    if not branches:
        raise ValueError(f"inputs must name features, tokens or both, not {inputs!r}")

    x = layers.Concatenate(name="image_and_text")(branches) if len(branches) == 2 else branches[0]
    x = layers.Dropout(dropout, name="dropout")(x)
    happy = layers.Dense(1, activation="sigmoid", name="happy")(x)
    names = {("features", "tokens"): "combined_model", ("features",): "image_only_model", ("tokens",): "text_only_model"}
    return keras.Model(model_inputs, happy, name=names[tuple(name for name in ("features", "tokens") if name in inputs)])


def load_model(path: Path, stage: str) -> keras.Model:
    if not path.is_file():
        raise ESLPError(f"{path}: model not found; run `dvc repro {stage}` first")
    return keras.models.load_model(path, safe_mode=True)
