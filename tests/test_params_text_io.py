"""Specifications of eslp.params (params.yaml checks), eslp.text (vocabulary, encoding) and eslp.io (safe writes)."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import PROJECT_ROOT
from eslp import text
from eslp.errors import ESLPError
from eslp.io import atomic_path, load_arrays, save_arrays, write_json, write_metrics
from eslp.params import STAGE_PARAMS, read_stage_params

REPOSITORY_PARAMS = PROJECT_ROOT / "params.yaml"


def write_params(tmp_path: Path, changes: dict[str, object] | None = None, removed: tuple[str, ...] = ()) -> Path:
    """Write the repository's params.yaml with ``changes`` (``"section.key": value``) and ``removed`` keys."""
    params = yaml.safe_load(REPOSITORY_PARAMS.read_text(encoding="utf-8"))
    for dotted, value in (changes or {}).items():
        section, _, key = dotted.rpartition(".")
        target = params[section] if section else params
        target[key] = value
    for dotted in removed:
        section, _, key = dotted.rpartition(".")
        target = params[section] if section else params
        del target[key]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


# --- eslp.params -----------------------------------------------------------------------


@pytest.mark.parametrize("stage", sorted(STAGE_PARAMS))
def test_repository_params_valid(stage):
    values = read_stage_params(stage, REPOSITORY_PARAMS)

    assert sorted(vars(values)) == sorted(STAGE_PARAMS[stage])


def test_params_typed_values():
    values = read_stage_params("image_bottleneck", REPOSITORY_PARAMS)

    assert values.seed == 42
    assert values.image.input_size == 48
    assert values.image_bottleneck.learning_rate == 0.001


def test_params_whole_number_accepted_as_float(tmp_path):
    path = write_params(tmp_path, {"language_train.learning_rate": 1})

    values = read_stage_params("language_train", path)

    assert values.language_train.learning_rate == 1.0
    assert isinstance(values.language_train.learning_rate, float)


def test_params_unknown_key_rejected(tmp_path):
    path = write_params(tmp_path, {"language_train.epocs": 3})

    with pytest.raises(ESLPError) as error:
        read_stage_params("language_train", path)

    assert str(error.value) == (
        "params.yaml: language_train.epocs: unknown key; known keys: "
        "train_on, embedding_dim, lstm_units, bidirectional, dropout, epochs, batch_size, learning_rate, patience"
    )


def test_params_missing_key_rejected(tmp_path):
    path = write_params(tmp_path, removed=("combine.patience",))

    with pytest.raises(ESLPError, match=r"^params.yaml: combine.patience: missing key; known keys: validation_fraction, "):
        read_stage_params("combine", path)


def test_params_missing_section_rejected(tmp_path):
    path = write_params(tmp_path, removed=("image",))

    with pytest.raises(ESLPError, match="section 'image' is missing or not a mapping"):
        read_stage_params("image_finetune", path)


@pytest.mark.parametrize(
    "stage, key, value, message",
    [
        ("image_bottleneck", "image_bottleneck.learning_rate", True, "expected a number, found True"),
        ("image_bottleneck", "image_bottleneck.epochs", True, "expected a whole number, found True"),
        ("image_bottleneck", "image_bottleneck.epochs", 3.0, "expected a whole number, found 3.0"),
        (
            "sentences",
            "sentences.happy_threshold",
            "0.6",
            "expected a number, found the string '0.6'; remove any quotes, and give an exponent a decimal point "
            "(1.0e-3, not 1e-3), which YAML needs to read a number",
        ),
        ("language_train", "language_train.learning_rate", float("nan"), "nan is not a finite number; write a number"),
        ("images_prepare", "images_prepare.balance", 1, "expected true or false, found 1"),
        ("images_prepare", "images_prepare.source", "", "expected a non-empty string, found ''"),
        ("images_prepare", "images_prepare.source", 7, "expected a non-empty string, found 7"),
    ],
)
def test_params_wrong_type_rejected(tmp_path, stage, key, value, message):
    path = write_params(tmp_path, {key: value})

    with pytest.raises(ESLPError) as error:
        read_stage_params(stage, path)

    assert str(error.value) == f"params.yaml: {key}: {message}"


@pytest.mark.parametrize(
    "stage, key, value, allowed",
    [
        ("sentences", "sentences.happy_threshold", 1.2, "outside the allowed range (0.0, 1.0)"),
        ("sentences", "sentences.angry_threshold", 0.0, "outside the allowed range (0.0, 1.0)"),
        ("images_prepare", "images_prepare.max_per_class", -1, "below the minimum 0"),
        ("image_finetune", "image_finetune.trainable_blocks", 6, "outside the allowed range [1, 5]"),
        ("combine", "combine.dropout", 1.0, "outside the allowed range [0.0, 1.0)"),
        ("language_prepare", "language_prepare.max_vocabulary", 1, "below the minimum 2"),
        ("language_train", "language_train.learning_rate", 0.0, "not greater than 0.0"),
    ],
)
def test_params_out_of_range_rejected(tmp_path, stage, key, value, allowed):
    path = write_params(tmp_path, {key: value})

    with pytest.raises(ESLPError) as error:
        read_stage_params(stage, path)

    assert str(error.value) == f"params.yaml: {key}: {value!r} is {allowed}"


def test_params_input_size_24_names_32(tmp_path):
    path = write_params(tmp_path, {"image.input_size": 24})

    with pytest.raises(ESLPError, match=r"image.input_size: 24 is below the minimum 48") as error:
        read_stage_params("image_bottleneck", path)

    assert "VGG16's minimum input is 32 pixels" in str(error.value)


def test_params_unknown_choice_rejected(tmp_path):
    path = write_params(tmp_path, {"images_prepare.format": "zip"})

    with pytest.raises(ESLPError, match="^params.yaml: images_prepare.format: 'zip' is not one of folders, csv$"):
        read_stage_params("images_prepare", path)


def test_params_crossed_thresholds_rejected(tmp_path):
    path = write_params(tmp_path, {"sentences.happy_threshold": 0.4, "sentences.angry_threshold": 0.6})

    with pytest.raises(ESLPError, match=r"sentences.angry_threshold \(0.6\) is above sentences.happy_threshold \(0.4\)"):
        read_stage_params("sentences", path)


def test_params_equal_thresholds_accepted(tmp_path):
    path = write_params(tmp_path, {"sentences.happy_threshold": 0.5, "sentences.angry_threshold": 0.5})

    values = read_stage_params("sentences", path)

    assert values.sentences.happy_threshold == values.sentences.angry_threshold


def test_params_interpolation_rejected(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(
        REPOSITORY_PARAMS.read_text(encoding="utf-8").replace(
            "source: data/raw/fer2013", "source: ${data_dir}/fer2013"
        ),
        encoding="utf-8",
    )

    with pytest.raises(ESLPError, match=re.escape("images_prepare.source: '${data_dir}/fer2013' uses ${} interpolation")):
        read_stage_params("images_prepare", path)


@pytest.mark.parametrize("seed", [-1, True, "42", None])
def test_params_bad_seed_rejected(tmp_path, seed):
    path = write_params(tmp_path, {"seed": seed})

    with pytest.raises(ESLPError, match="^params.yaml: seed: expected a whole number from 0 to 4294967295"):
        read_stage_params("language_train", path)


@pytest.mark.parametrize("distribution", ["tpu", "Mirrored", True, None])
def test_params_bad_distribution_rejected(tmp_path, distribution):
    path = write_params(tmp_path, {"distribution": distribution})

    with pytest.raises(ESLPError, match="^params.yaml: distribution: .* is not one of none, mirrored, multi_worker; "):
        read_stage_params("combine", path)


def test_params_distribution_read_by_training_stages(tmp_path):
    path = write_params(tmp_path, {"distribution": "multi_worker"})

    for stage in ("language_train", "image_bottleneck", "image_finetune", "combine"):
        assert read_stage_params(stage, path).distribution == "multi_worker"


def test_params_file_not_found(tmp_path):
    with pytest.raises(ESLPError, match="parameters file not found"):
        read_stage_params("sentences", tmp_path / "params.yaml")


def test_params_invalid_yaml_rejected(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("sentences:\n  happy_threshold: [0.6\n", encoding="utf-8")

    with pytest.raises(ESLPError, match="invalid YAML"):
        read_stage_params("sentences", path)


def test_params_not_mapping_rejected(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("- seed\n", encoding="utf-8")

    with pytest.raises(ESLPError, match="expected a mapping of sections"):
        read_stage_params("sentences", path)


# --- eslp.text -------------------------------------------------------------------------


def test_vocabulary_reserved_then_by_count():
    vocabulary = text.build_vocabulary(["the film", "The plot", "a film ."], max_size=100, min_count=1)

    # "film" and "the" appear twice, and tokens with equal counts are in alphabetical order.
    assert vocabulary == ["<pad>", "<unk>", "film", "the", ".", "a", "plot"]


def test_vocabulary_max_size_counts_reserved():
    vocabulary = text.build_vocabulary(["the film", "The plot", "a film ."], max_size=4, min_count=1)

    assert vocabulary == ["<pad>", "<unk>", "film", "the"]


def test_vocabulary_min_count_drops_rare():
    vocabulary = text.build_vocabulary(["the film", "The plot", "a film ."], max_size=100, min_count=2)

    assert vocabulary == ["<pad>", "<unk>", "film", "the"]


def test_vocabulary_file_round_trip(tmp_path):
    text.write_vocabulary(tmp_path / "vocabulary.txt", ["<pad>", "<unk>", "film", "the"])

    assert text.read_vocabulary(tmp_path / "vocabulary.txt") == {"<pad>": 0, "<unk>": 1, "film": 2, "the": 3}


def test_vocabulary_without_reserved_rejected(tmp_path):
    path = tmp_path / "vocabulary.txt"
    path.write_text("film\nthe\n", encoding="utf-8")

    with pytest.raises(ESLPError, match=f"^{re.escape(str(path))}:1: expected <pad> and <unk>"):
        text.read_vocabulary(path)


def test_vocabulary_missing_file_rejected(tmp_path):
    with pytest.raises(ESLPError, match="vocabulary not found"):
        text.read_vocabulary(tmp_path / "vocabulary.txt")


VOCABULARY = {"<pad>": 0, "<unk>": 1, "film": 2, "the": 3, "a": 4}


def test_encode_pads_with_zero():
    ids = text.encode(["the film"], VOCABULARY, max_length=4)

    assert ids.tolist() == [[3, 2, 0, 0]]
    assert ids.dtype == np.int32


def test_encode_unknown_is_one():
    ids = text.encode(["A dragon film"], VOCABULARY, max_length=4)

    assert ids.tolist() == [[4, 1, 2, 0]]


def test_encode_truncates_at_max_length():
    ids = text.encode(["the film the film the"], VOCABULARY, max_length=3)

    assert ids.tolist() == [[3, 2, 3]]


def test_encode_empty_text_all_padding():
    ids = text.encode(["", "film"], VOCABULARY, max_length=2)

    assert ids.tolist() == [[0, 0], [2, 0]]


def test_encode_ragged_keeps_lengths():
    assert text.encode_ragged(["the film", "a"], VOCABULARY, max_length=5) == [[3, 2], [4]]


# --- eslp.io ---------------------------------------------------------------------------


def test_atomic_path_replaces_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old", encoding="utf-8")

    with atomic_path(path) as temporary:
        temporary.write_text("new", encoding="utf-8")

    assert path.read_text(encoding="utf-8") == "new"
    assert [entry.name for entry in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_error_keeps_old_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old", encoding="utf-8")

    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_path(path) as temporary:
            temporary.write_text("half", encoding="utf-8")
            raise RuntimeError("interrupted")

    assert path.read_text(encoding="utf-8") == "old"
    assert [entry.name for entry in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_error_removes_folder(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out") as temporary:
            (temporary / "part").mkdir(parents=True)
            raise RuntimeError("interrupted")

    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_folder(tmp_path):
    (tmp_path / "out" / "stale").mkdir(parents=True)

    with atomic_path(tmp_path / "out") as temporary:
        temporary.mkdir()
        (temporary / "fresh.txt").write_text("new", encoding="utf-8")

    assert [entry.name for entry in (tmp_path / "out").iterdir()] == ["fresh.txt"]
    assert [entry.name for entry in tmp_path.iterdir()] == ["out"]


def test_atomic_path_keeps_suffix(tmp_path):
    with atomic_path(tmp_path / "model.keras") as temporary:
        temporary.write_text("model", encoding="utf-8")

        assert temporary.suffix == ".keras"
        assert temporary.parent == tmp_path


def test_atomic_path_creates_parent(tmp_path):
    with atomic_path(tmp_path / "metrics" / "out.txt") as temporary:
        temporary.write_text("new", encoding="utf-8")

    assert (tmp_path / "metrics" / "out.txt").read_text(encoding="utf-8") == "new"


@pytest.mark.parametrize("value", [math.nan, math.inf, np.float32("nan")])
def test_write_metrics_rejects_non_finite(tmp_path, value):
    path = tmp_path / "metrics.json"
    path.write_text("{}\n", encoding="utf-8")

    with pytest.raises(ValueError, match="is not finite"):
        write_metrics(path, {"test": {"loss": value}})

    assert path.read_text(encoding="utf-8") == "{}\n"
    assert [entry.name for entry in tmp_path.iterdir()] == ["metrics.json"]


def test_write_metrics_converts_numpy(tmp_path):
    path = tmp_path / "metrics.json"

    write_metrics(path, {"accuracy": np.float32(0.5), "count": np.int64(3), "stopped": np.bool_(True), "nested": {"loss": 0.1234567891}})

    assert json.loads(path.read_text(encoding="utf-8")) == {"accuracy": 0.5, "count": 3, "stopped": 1, "nested": {"loss": 0.123457}}


def test_write_json_rejects_nan(tmp_path):
    with pytest.raises(ValueError):
        write_json(tmp_path / "data.json", {"loss": math.nan})

    assert list(tmp_path.iterdir()) == []


def test_arrays_round_trip(tmp_path):
    features = np.arange(12, dtype=np.float32).reshape(3, 4)
    labels = np.array([0, 1, 1], dtype=np.int32)
    paths = np.array(["angry0.png", "happy0.png", "happy10.png"])

    save_arrays(tmp_path / "train.npz", features=features, labels=labels, paths=paths)
    loaded = load_arrays(tmp_path / "train.npz")

    assert sorted(loaded) == ["features", "labels", "paths"]
    assert np.array_equal(loaded["features"], features)
    assert loaded["features"].dtype == np.float32
    assert np.array_equal(loaded["labels"], labels)
    assert loaded["paths"].tolist() == ["angry0.png", "happy0.png", "happy10.png"]


def test_arrays_load_without_pickle(tmp_path):
    save_arrays(tmp_path / "train.npz", paths=np.array(["angry0.png"]))

    with np.load(tmp_path / "train.npz", allow_pickle=False) as data:
        assert data["paths"].tolist() == ["angry0.png"]


def test_arrays_reject_object_dtype(tmp_path):
    with pytest.raises(TypeError, match="array 'paths' has dtype object"):
        save_arrays(tmp_path / "train.npz", labels=np.array([0, 1]), paths=np.array(["a", None], dtype=object))

    assert list(tmp_path.iterdir()) == []


def test_arrays_path_without_npz_suffix(tmp_path):
    save_arrays(tmp_path / "train.arrays", labels=np.array([0, 1]))

    assert [entry.name for entry in tmp_path.iterdir()] == ["train.arrays"]


def test_atomic_path_failed_rename_removes_temporary(tmp_path):
    """A file cannot replace a folder; the temporary file must not stay behind."""
    target = tmp_path / "out.png"
    target.mkdir()
    with pytest.raises(OSError):
        with atomic_path(target) as temporary:
            temporary.write_bytes(b"image")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.png"]
