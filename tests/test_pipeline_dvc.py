"""The real `dvc repro` on a tiny copy of the project: what reruns after which change, and what DVC reads back."""

import json
import math
import re

import keras
import pytest
import yaml

from pipeline import dvc, git, make_tiny_pipeline, stages_run, update_params

ALL_STAGES = {
    "images_prepare",
    "language_prepare",
    "sentences",
    "language_train",
    "image_bottleneck",
    "image_finetune",
    "combine",
}
MODEL_FILES = ("language_model", "feature_extractor", "bottleneck_head", "image_model", "combined_model")
TRAINING_STAGES = ("language_train", "image_bottleneck", "image_finetune", "combine")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A committed tiny pipeline after one full `dvc repro`, and the stages that it ran."""
    repo = make_tiny_pipeline(tmp_path_factory.mktemp("project"))
    result = dvc(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Run the tiny pipeline")
    return repo, stages_run(result.stdout)


@pytest.fixture
def repo(pipeline):
    """The committed pipeline; params, lock and outputs are put back after the test."""
    repo, _ = pipeline
    yield repo
    git(repo, "checkout", "--", ".")
    dvc(repo, "checkout", "--force")


def rerun_after(repo, overrides) -> list[str]:
    update_params(repo, overrides)
    return stages_run(dvc(repo, "repro").stdout)


def test_first_repro_runs_every_stage(pipeline):
    _, ran = pipeline
    assert set(ran) == ALL_STAGES
    assert len(ran) == len(ALL_STAGES)


def test_repro_without_change_runs_nothing(repo):
    result = dvc(repo, "repro")
    assert stages_run(result.stdout) == []
    assert "up to date" in dvc(repo, "status").stdout


def test_threshold_change_reruns_sentences_and_combine(repo):
    ran = rerun_after(repo, {"sentences": {"happy_threshold": 0.7, "angry_threshold": 0.3}})
    assert ran == ["sentences", "combine"]


def test_image_param_change_reruns_no_language_stage(repo):
    ran = rerun_after(repo, {"image_bottleneck": {"head_units": 8}})
    # The features do not depend on the head, so DVC finds them unchanged and skips combine.
    assert set(ran) == {"image_bottleneck", "image_finetune"}


def test_input_size_change_reruns_no_language_stage(repo):
    ran = rerun_after(repo, {"image": {"input_size": 64}})
    assert set(ran) == {"image_bottleneck", "image_finetune", "combine"}


def test_language_param_change_reruns_no_image_stage(repo):
    ran = rerun_after(repo, {"language_prepare": {"max_vocabulary": 30}})
    assert set(ran) == {"language_prepare", "sentences", "language_train", "combine"}


def test_finetune_param_change_reruns_only_finetune(repo):
    assert rerun_after(repo, {"image_finetune": {"epochs": 2}}) == ["image_finetune"]


def test_metrics_diff_shows_old_and_new(repo):
    rerun_after(repo, {"combine": {"epochs": 2}})
    diff = json.loads(dvc(repo, "metrics", "diff", "--all", "--json").stdout)
    combine = diff["metrics/combine.json"]
    assert combine["epochs_run"]["old"] == 1
    assert combine["epochs_run"]["new"] == 2
    assert "test.accuracy" in combine
    assert "test_image_only.accuracy" in combine
    assert "test_text_only.accuracy" in combine


def test_params_diff_shows_changed_key(repo):
    update_params(repo, {"combine": {"epochs": 2}})
    diff = json.loads(dvc(repo, "params", "diff", "--json").stdout)
    assert diff["params.yaml"] == {"combine.epochs": {"old": 1, "new": 2, "diff": 1}}


def test_metrics_show_lists_every_stage(repo):
    metrics = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    files = metrics[""]["data"]  # DVC's JSON names the workspace ""
    assert set(files) == {f"metrics/{stage}.json" for stage in ALL_STAGES}


def test_exp_run_threshold_reruns_two_stages(repo):
    result = dvc(repo, "exp", "run", "-S", "sentences.happy_threshold=0.7")
    assert stages_run(result.stdout) == ["sentences", "combine"]
    experiments = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    assert len(experiments) >= 1


def test_metrics_are_finite_numbers(repo):
    def numbers(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from numbers(item)
        else:
            yield value

    for path in sorted((repo / "metrics").glob("*.json")):
        for value in numbers(json.loads(path.read_text())):
            assert isinstance(value, (int, float)), f"{path.name}: {value!r}"
            assert math.isfinite(value), f"{path.name}: {value!r}"


@pytest.mark.parametrize("name", MODEL_FILES)
def test_saved_model_loads_in_safe_mode(repo, name):
    model = keras.models.load_model(repo / "models" / f"{name}.keras", safe_mode=True)

    def layer_types(layer):
        yield type(layer).__name__
        for inner in getattr(layer, "layers", []):
            yield from layer_types(inner)

    assert "Lambda" not in set(layer_types(model))


def test_outputs_are_ignored_by_git(repo):
    tracked = git(repo, "ls-files").stdout.split()
    assert not [path for path in tracked if path.startswith(("data/png", "data/features", "models/", "data/raw"))
                and not path.endswith(".gitignore")]
    assert "dvc.lock" in tracked
    assert "metrics/combine.json" in tracked


@pytest.mark.parametrize("stage", ["images_prepare", "language_train", "combine"])
def test_forced_rerun_gives_same_metrics(repo, stage):
    before = (repo / "metrics" / f"{stage}.json").read_text()
    dvc(repo, "repro", "--force", "--single-item", stage)
    assert (repo / "metrics" / f"{stage}.json").read_text() == before


def test_forced_rerun_writes_same_pngs(repo):
    def png_hash():
        lock = yaml.safe_load((repo / "dvc.lock").read_text())
        outs = lock["stages"]["images_prepare"]["outs"]
        return next(out["md5"] for out in outs if out["path"] == "data/png")

    before = png_hash()
    dvc(repo, "repro", "--force", "--single-item", "images_prepare")
    assert png_hash() == before


def declared_plots(repo) -> dict[str, dict]:
    """The top-level plot definitions of dvc.yaml, by id."""
    definitions = {}
    for entry in yaml.safe_load((repo / "dvc.yaml").read_text())["plots"]:
        plot_id, props = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        definitions[plot_id] = props
    return definitions


def test_every_model_has_plots(repo):
    definitions = declared_plots(repo)
    plot_files = set()
    for props in definitions.values():
        if isinstance(props.get("y"), dict):
            plot_files.update(props["y"])
    for stage in TRAINING_STAGES:
        assert f"plots/{stage}/training.csv" in plot_files, stage
        assert definitions[f"plots/{stage}/predictions.csv"]["template"] == "confusion", stage
        assert f"plots/{stage}/roc.csv" in definitions, stage
    assert "plots/image_bottleneck/misclassified.png" in definitions
    assert "plots/image_finetune/misclassified.png" in definitions


def test_plots_show_renders_every_plot(repo, tmp_path):
    dvc(repo, "plots", "show", "-o", str(tmp_path))
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    for plot_id, props in declared_plots(repo).items():
        if plot_id.endswith(".png"):
            image = "static/workspace_" + re.sub(r"[/.]", "_", plot_id.removesuffix(".png")) + ".png"
            assert f'<img src="{image}">' in html, plot_id
            assert (tmp_path / image).stat().st_size > 0, plot_id
        else:
            assert json.dumps(props["title"]) in html, plot_id


def test_plots_show_json_has_data(repo):
    rendered = json.loads(dvc(repo, "plots", "show", "--json").stdout)
    assert "errors" not in rendered
    for plot_id in declared_plots(repo):
        (plot,) = rendered["data"][plot_id]
        if plot_id.endswith(".png"):
            assert plot["type"] == "image", plot_id
        else:
            assert plot["type"] == "vega", plot_id
            assert plot["content"]["data"]["values"], plot_id


def test_plots_diff_compares_commits(repo):
    rerun_after(repo, {"combine": {"epochs": 2}})
    rendered = json.loads(dvc(repo, "plots", "diff", "HEAD", "--json", "--targets", "combine_loss").stdout)
    (plot,) = rendered["data"]["combine_loss"]
    epochs = {(value["rev"], value["epoch"]) for value in plot["content"]["data"]["values"]}
    assert epochs == {("HEAD", "1"), ("workspace", "1"), ("workspace", "2")}
