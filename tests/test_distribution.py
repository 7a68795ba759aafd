"""The ``distribution`` param: the image_bottleneck stage under tf.distribute matches the one-device run.

Without a GPU, ``mirrored`` runs over two logical CPU devices and ``multi_worker`` as two
worker processes on 127.0.0.1, each process with its own working folder and a copy of the
same tiny faces. Each run keeps the global batch size of params.yaml. The head trains on one
batch of all 12 training faces per epoch, split evenly across the replicas, so the mean
gradient does not depend on the shuffled order, which tf.distribute changes because it
rebuilds the dataset. So the updates equal the one-device ones up to float32 rounding
(summation order in the all-reduce and in the per-replica loss means).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import PROJECT_ROOT, write_face
from eslp.errors import ESLPError
from eslp.training import make_strategy

STAGE = PROJECT_ROOT / "stages" / "image_bottleneck.py"
TIMEOUT_S = 180
LOSS_TOLERANCE = 1e-4
"""Largest difference allowed in a loss between a distributed and the one-device run.

By estimate, not measurement: float32 rounding moves these losses by about 1e-6 over three
steps, while a replica that trains on only its half of the batch, or faces and features out
of order, would move them by more than 1e-2.
"""

SPLIT_CPU = (
    "import runpy, sys\n"
    "import tensorflow as tf\n"
    "cpu = tf.config.list_physical_devices('CPU')[0]\n"
    "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
    "runpy.run_path(sys.argv[1], run_name='__main__')\n"
)
"""Run a stage on two logical CPU devices; the split must happen before TensorFlow initialises."""


def write_run_folder(folder: Path, distribution: str) -> Path:
    """Write params.yaml and tiny faces whose batches of 12 split evenly over two replicas."""
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["distribution"] = distribution
    params["image"].update({"weights": "none", "validation_fraction": 0.25})
    params["image_bottleneck"].update({"batch_size": 12, "head_units": 8, "dropout": 0.0, "epochs": 3, "patience": 3})
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    # 8 training faces per class: 2 held out for validation, 6 trained on; 4 test faces per class.
    for split, count in (("train", 8), ("test", 4)):
        for label_index, label in enumerate(("angry", "happy")):
            for index in range(count):
                write_face(folder / "data" / "png" / split / label / f"{label}{index}.png", 7919 * label_index + index)
    return folder


def start_stage(folder: Path, prefix: list[str], tf_config: dict | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen(
        [sys.executable, *prefix, str(STAGE)], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(process: subprocess.Popen) -> str:
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"stage timed out after {TIMEOUT_S} s:\n{output[-4000:]}") from None
    assert process.returncode == 0, f"stage exited with {process.returncode}:\n{output[-4000:]}"
    return output


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for entry in sockets:
            entry.bind(("127.0.0.1", 0))
        return [entry.getsockname()[1] for entry in sockets]
    finally:
        for entry in sockets:
            entry.close()


def read_results(folder: Path) -> tuple[dict, np.ndarray]:
    metrics = json.loads((folder / "metrics" / "image_bottleneck.json").read_text(encoding="utf-8"))
    return metrics, np.load(folder / "data" / "features" / "train" / "features.npy")


@pytest.fixture(scope="module")
def one_device(tmp_path_factory) -> tuple[dict, np.ndarray]:
    folder = write_run_folder(tmp_path_factory.mktemp("distribution") / "none", "none")
    finish(start_stage(folder, []))
    return read_results(folder)


def assert_same_results(results: tuple[dict, np.ndarray], expected: tuple[dict, np.ndarray]) -> None:
    metrics, features = results
    expected_metrics, expected_features = expected
    np.testing.assert_allclose(features, expected_features, rtol=1e-5, atol=1e-5 * np.abs(expected_features).max())
    assert metrics["epochs_run"] == expected_metrics["epochs_run"]
    assert metrics["test"]["count"] == expected_metrics["test"]["count"]
    assert metrics["best_val_loss"] == pytest.approx(expected_metrics["best_val_loss"], abs=LOSS_TOLERANCE)
    assert metrics["test"]["loss"] == pytest.approx(expected_metrics["test"]["loss"], abs=LOSS_TOLERANCE)
    assert metrics["test"]["accuracy"] == expected_metrics["test"]["accuracy"]


@pytest.mark.slow
def test_mirrored_matches_one_device(tmp_path, one_device):
    folder = write_run_folder(tmp_path / "mirrored", "mirrored")

    output = finish(start_stage(folder, ["-c", SPLIT_CPU]))

    assert "distribution mirrored: 2 replicas in sync" in output
    assert_same_results(read_results(folder), one_device)


@pytest.mark.slow
def test_multi_worker_matches_one_device(tmp_path, one_device):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    folders = [write_run_folder(tmp_path / f"worker{index}", "multi_worker") for index in range(2)]

    processes = [
        start_stage(folder, [], {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        for index, folder in enumerate(folders)
    ]
    outputs = [finish(process) for process in processes]

    for output, folder in zip(outputs, folders):
        assert "distribution multi_worker: 2 replicas in sync" in output
        assert_same_results(read_results(folder), one_device)


def test_multi_worker_without_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)

    with pytest.raises(ESLPError, match="multi_worker needs the TF_CONFIG environment variable, which is unset"):
        make_strategy("multi_worker")


@pytest.mark.parametrize(
    ("tf_config", "message"),
    [
        ('{"cluster": {}}', "TF_CONFIG: no cluster.worker list in "),
        ('{"cluster": ["h:1"], "task": {"type": "worker", "index": 0}}', "TF_CONFIG: no cluster.worker list in "),
        ('{"cluster": {"worker": ["h:1"]}}', "TF_CONFIG: task must be {\"type\": \"worker\", \"index\": N}, found None"),
        ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "chief", "index": 0}}', "found {'type': 'chief', 'index': 0}"),
        ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 1}}',
         "TF_CONFIG: task index 1 is not one of the 1 workers"),
    ],
)
def test_multi_worker_invalid_tf_config(monkeypatch, tf_config, message):
    monkeypatch.setenv("TF_CONFIG", tf_config)

    with pytest.raises(ESLPError) as error:
        make_strategy("multi_worker")

    assert message in str(error.value)
