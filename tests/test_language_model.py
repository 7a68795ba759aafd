"""The language model's training rows and targets for each ``train_on`` setting, on tiny SST trees."""

import numpy as np
import pytest

from conftest import write_trees
from eslp import language, language_model
from eslp.language import read_prepared
from eslp.params import LanguageTrainParams
from test_sst import prepare_params


def train_params(**changes) -> LanguageTrainParams:
    values = {
        "train_on": "phrases",
        "embedding_dim": 4,
        "lstm_units": 3,
        "bidirectional": False,
        "dropout": 0.0,
        "epochs": 1,
        "batch_size": 8,
        "learning_rate": 0.01,
        "patience": 1,
    }
    values.update(changes)
    return LanguageTrainParams(**values)


@pytest.fixture(scope="module")
def language_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("language")
    language.prepare(prepare_params(write_trees(root / "trees")), root / "prepared")
    return root / "prepared"


@pytest.mark.parametrize(
    ("train_on", "bidirectional", "expected_rows"),
    [
        # The tiny training trees give 31 distinct rows: 5 of them sentences, 18 polar
        # (labels 0, 1, 3 or 4) and 13 neutral (label 2).
        ("phrases", False, 31),
        ("sentences", True, 5),
        ("polar_phrases", False, 18),
    ],
)
def test_train_on_selects_rows(language_dir, tmp_path, train_on, bidirectional, expected_rows):
    metrics = language_model.train(
        train_params(train_on=train_on, bidirectional=bidirectional), 0, language_dir, tmp_path / "model.keras"
    )

    assert metrics["train_rows"] == expected_rows
    assert 0.0 <= metrics["test"]["binary_accuracy"] <= 1.0
    assert (tmp_path / "model.keras").is_file()


def test_polar_phrases_targets_are_binary(language_dir):
    table, _, _ = read_prepared(language_dir)

    rows, targets = language_model.training_rows(table, "polar_phrases")

    assert set(targets.tolist()) == {0.0, 1.0}
    assert (targets == 1.0).tolist() == (rows["score"] > 0.6).tolist()
    assert not rows["score"].between(0.4, 0.6, inclusive="right").any()


def test_phrases_targets_are_scores(language_dir):
    table, _, _ = read_prepared(language_dir)

    rows, targets = language_model.training_rows(table, "phrases")

    assert targets.dtype == np.float32
    np.testing.assert_allclose(targets, rows["score"].to_numpy())
    assert set(rows["split"]) == {"train"}
