"""Smoke test: the whole pipeline on a small real subset of FER2013 and the SST trees."""

import json

import pytest

from conftest import copy_real_faces
from pipeline import dvc, make_repository, stages_run, update_params

FACES_PER_FOLDER = 60
TREE_LINES = {"train": 150, "dev": 40, "test": 80}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_pipeline(tmp_path_factory, shared_data):
    shared = shared_data
    repo = make_repository(tmp_path_factory.mktemp("real"))
    copy_real_faces(shared, repo / "data/raw/fer2013", FACES_PER_FOLDER)
    trees = repo / "data/raw/sst/trees"
    trees.mkdir(parents=True)
    for split, count in TREE_LINES.items():
        lines = (shared / "sst" / "trees" / f"{split}.txt").read_text(encoding="utf-8").splitlines(keepends=True)
        (trees / f"{split}.txt").write_text("".join(lines[:count]), encoding="utf-8")
    update_params(
        repo,
        {
            "image": {"weights": "none"},
            "language_train": {"epochs": 1},
            "image_bottleneck": {"epochs": 3},
            "image_finetune": {"epochs": 1},
            "combine": {"epochs": 2},
        },
    )
    result = dvc(repo, "repro")
    return repo, stages_run(result.stdout)


def read_metrics(repo, stage):
    return json.loads((repo / "metrics" / f"{stage}.json").read_text())


def test_real_subset_runs_every_stage(real_pipeline):
    _, ran = real_pipeline
    assert len(ran) == 7


def test_real_subset_writes_balanced_faces(real_pipeline):
    repo, _ = real_pipeline
    written = read_metrics(repo, "images_prepare")["written"]
    assert written == {"train": {"angry": 60, "happy": 60}, "test": {"angry": 60, "happy": 60}}
    assert len(list((repo / "data/png/train/happy").glob("*.png"))) == 60


def test_real_subset_reads_tree_sentences(real_pipeline):
    repo, _ = real_pipeline
    sentences = read_metrics(repo, "language_prepare")["sentences"]
    assert sentences["dev"] == TREE_LINES["dev"]
    assert sentences["test"] == TREE_LINES["test"]
    assert sentences["train"] <= TREE_LINES["train"]


def test_real_subset_pairs_every_sentence(real_pipeline):
    repo, _ = real_pipeline
    chosen = read_metrics(repo, "sentences")
    pairs = read_metrics(repo, "combine")["pairs"]
    assert pairs["test"]["sentences"] == chosen["happy"]["test"] + chosen["angry"]["test"]
    assert pairs["test"]["pairs"] >= pairs["test"]["sentences"]
    assert pairs["test"]["faces"] == 120


@pytest.mark.parametrize("stage", ["image_bottleneck", "image_finetune", "combine"])
def test_real_subset_accuracy_is_a_fraction(real_pipeline, stage):
    repo, _ = real_pipeline
    accuracy = read_metrics(repo, stage)["test"]["accuracy"]
    assert 0.0 <= accuracy <= 1.0


def test_real_subset_language_model_reports_binary_accuracy(real_pipeline):
    repo, _ = real_pipeline
    test = read_metrics(repo, "language_train")["test"]
    assert test["count"] == TREE_LINES["test"]
    assert 0 < test["binary_count"] < test["count"]
