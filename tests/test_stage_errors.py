"""Stage entry points: a user error ends the stage with one message, no traceback and exit status 1."""

import os
import subprocess
import sys

import pytest
import yaml

from conftest import write_trees
from pipeline import dvc, environment, make_repository, stages_run, update_params, write_tiny_faces


@pytest.fixture
def repo(tmp_path):
    return make_repository(tmp_path / "project")


def run_stage(repo, name, extra_env=None):
    env = environment(repo)
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, f"stages/{name}.py"], cwd=repo, env=env, capture_output=True, text=True
    )


def error_lines(result):
    return [line for line in result.stderr.splitlines() if " ERROR " in line]


def test_crossed_thresholds_fail_before_work(repo):
    update_params(repo, {"sentences": {"happy_threshold": 0.4, "angry_threshold": 0.6}})
    result = run_stage(repo, "sentences")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(error_lines(result)) == 1
    assert "sentences.angry_threshold (0.6) is above sentences.happy_threshold (0.4)" in result.stderr
    assert not (repo / "data" / "sentences").exists()


def test_unknown_param_key_named(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["language_train"]["epocs"] = 3
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_stage(repo, "language_train")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "language_train.epocs: unknown key; known keys: train_on, embedding_dim" in result.stderr


def test_missing_sst_folder_named(repo):
    result = run_stage(repo, "language_prepare")
    assert result.returncode == 1
    assert "data/raw/sst/trees: SST folder not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_tree_threshold_off_boundary_rejected(repo):
    write_trees(repo / "data/raw/sst/trees")
    assert run_stage(repo, "language_prepare").returncode == 0
    update_params(repo, {"sentences": {"happy_threshold": 0.7, "angry_threshold": 0.4}})
    result = run_stage(repo, "sentences")
    assert result.returncode == 1
    assert "sentences.happy_threshold: 0.7 is not a label boundary" in result.stderr
    assert "set language_prepare.format to release or csv and language_prepare.source" in result.stderr


@pytest.mark.slow
def test_imagenet_download_failure_is_one_message(repo, tmp_path):
    update_params(repo, {"image": {"weights": "imagenet"}})
    proxy = {"KERAS_HOME": str(tmp_path / "keras"), "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    result = run_stage(repo, "image_bottleneck", proxy)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(error_lines(result)) == 1
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in result.stderr
    assert "set image.weights" in result.stderr


FAIL_IN_SECOND_OUTPUT = '''
from PIL import Image

_save = Image.Image.save
_calls = {"count": 0}


def _failing_save(self, *args, **kwargs):
    _calls["count"] += 1
    if _calls["count"] > 5:
        raise RuntimeError("simulated crash while writing the PNG folder")
    return _save(self, *args, **kwargs)


Image.Image.save = _failing_save
'''
"""A ``sitecustomize`` module that makes Pillow fail on the sixth image save, inside images_prepare's second output."""


def test_crash_in_second_output_leaves_nothing_partial(repo, tmp_path):
    write_tiny_faces(repo / "data/raw/fer2013", per_class=4)
    crash = tmp_path / "crash"
    crash.mkdir()
    (crash / "sitecustomize.py").write_text(FAIL_IN_SECOND_OUTPUT)
    env = environment(repo)
    env["PYTHONPATH"] = f"{crash}{os.pathsep}{env['PYTHONPATH']}"

    failed = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "images_prepare"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert failed.returncode != 0
    assert "simulated crash" in failed.stderr + failed.stdout
    assert not (repo / "data" / "png").exists()
    assert not list((repo / "data").glob(".tmp-*"))
    assert not (repo / "dvc.lock").exists()

    status = dvc(repo, "status", "images_prepare").stdout
    assert "changed outs" in status or "deleted" in status
    assert stages_run(dvc(repo, "repro", "images_prepare").stdout) == ["images_prepare"]
    assert len(list((repo / "data/png/train/happy").glob("*.png"))) == 4
