"""Shared DVC storage and queued experiments on a tiny copy of the project: the default local remote, an S3 remote
served by moto on 127.0.0.1, and a threshold sweep through `dvc queue`."""

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from pipeline import dvc, git, make_tiny_pipeline, run, stages_run

pytestmark = pytest.mark.slow

BUCKET = "eslp-test"
FAKE_KEY_ID = "testing"
FAKE_SECRET = "testing"
QUEUE_TIMEOUT_S = 900
"""Limit for the two-experiment sweep. The two ran side by side in 84 and 87 s on 2 CPU cores under a load average of
8, so the limit leaves room for a slower machine."""


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    """A committed tiny pipeline after one full `dvc repro`, inside a folder that also contains its clones."""
    repo = make_tiny_pipeline(tmp_path_factory.mktemp("storage") / "project")
    dvc(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Run the tiny pipeline")
    return repo


@pytest.fixture(scope="module")
def aws_environment(tmp_path_factory):
    """Fake AWS credentials, no AWS config files and no instance metadata look-ups, so boto3 and DVC never read the
    user's AWS set-up nor contact an AWS host."""
    folder = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                     "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
        patch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("AWS_CONFIG_FILE", str(folder / "config"))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "credentials"))
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, server: subprocess.Popen, timeout_s: float = 60) -> bool:
    """Wait until something accepts connections on 127.0.0.1:``port``. Return False if ``server`` exits or the time
    runs out first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def s3_endpoint(aws_environment, tmp_path_factory):
    """The URL of a moto S3 server on 127.0.0.1 with an empty bucket. The server is stopped after the module."""
    log_path = tmp_path_factory.mktemp("moto") / "server.log"
    server = None
    for _ in range(3):  # another process may take the free port between the probe and the server's bind
        port = free_port()
        with open(log_path, "a") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log, stderr=subprocess.STDOUT,
            )
        if wait_for_port(port, server):
            break
        server.kill()
        server.wait()
        server = None
    if server is None:
        pytest.fail(f"moto server failed to start on 127.0.0.1 after 3 tries. Its output is in {log_path}:\n"
                    f"{log_path.read_text()}")

    endpoint = f"http://127.0.0.1:{port}"
    try:
        client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=FAKE_KEY_ID,
                        aws_secret_access_key=FAKE_SECRET, region_name="us-east-1")


def clone(repo: Path, name: str) -> Path:
    """Clone ``repo`` beside it and place the raw data by hand, as a user does in every checkout."""
    target = repo.parent / name
    run(repo.parent, "git", "clone", "-q", str(repo), str(target))
    shutil.copytree(repo / "data/raw", target / "data/raw")
    return target


def use_s3_remote(repo: Path, endpoint: str, prefix: str) -> None:
    """Point the default remote at the moto bucket in the git-ignored local config, as a user switches remotes."""
    dvc(repo, "remote", "modify", "--local", "storage", "url", f"s3://{BUCKET}/{prefix}")
    dvc(repo, "remote", "modify", "--local", "storage", "endpointurl", endpoint)
    dvc(repo, "remote", "modify", "--local", "storage", "access_key_id", FAKE_KEY_ID)
    dvc(repo, "remote", "modify", "--local", "storage", "secret_access_key", FAKE_SECRET)


def assert_up_to_date(repo: Path) -> None:
    """Check that `dvc status` is clean and `dvc repro` runs no stage."""
    status = dvc(repo, "status").stdout
    assert "Data and pipelines are up to date." in status, status
    repro = dvc(repo, "repro").stdout
    assert stages_run(repro) == [], repro
    assert "Running stage" not in repro


def test_default_remote_is_folder_beside_clone(pipeline):
    remotes = dvc(pipeline, "remote", "list").stdout.split()
    storage = pipeline.parent / "eslp-dvc-storage"
    assert remotes == ["storage", str(storage), "(default)"]


def test_default_remote_push_and_pull(pipeline):
    storage = pipeline.parent / "eslp-dvc-storage"
    assert not storage.exists()
    pushed = dvc(pipeline, "push").stdout
    assert "pushed" in pushed, pushed
    assert any(path.is_file() for path in storage.rglob("*"))

    copy = clone(pipeline, "local-clone")
    assert not (copy / "models/combined_model.keras").exists()
    dvc(copy, "pull")
    assert (copy / "models/combined_model.keras").is_file()
    assert_up_to_date(copy)


def test_s3_remote_push_pull_without_rerun(pipeline, s3_endpoint):
    use_s3_remote(pipeline, s3_endpoint, "cache")
    try:
        dvc(pipeline, "push")
    finally:
        (pipeline / ".dvc/config.local").unlink()
    keys = [item["Key"] for item in client(s3_endpoint).list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert any(key.startswith("cache/files/md5/") for key in keys), keys

    copy = clone(pipeline, "s3-clone")
    use_s3_remote(copy, s3_endpoint, "cache")
    assert not (copy / "models/combined_model.keras").exists()
    dvc(copy, "pull")
    assert (copy / "models/combined_model.keras").is_file()
    assert_up_to_date(copy)


def queue_status(repo: Path) -> str:
    return dvc(repo, "queue", "status").stdout


def wait_for_queue(repo: Path) -> str:
    """Poll `dvc queue status` until no task is queued or running, and return its last output."""
    deadline = time.monotonic() + QUEUE_TIMEOUT_S
    while True:
        status = queue_status(repo)
        tasks = [line.split()[-1] for line in status.splitlines() if line.split()[-1:] in (["Queued"], ["Running"])]
        if not tasks:
            return status
        if time.monotonic() > deadline:
            pytest.fail(f"queued experiments still {', '.join(tasks)} after {QUEUE_TIMEOUT_S} s:\n{status}")
        time.sleep(5)


def stop_queue(repo: Path, timeout_s: float = 120) -> None:
    """Kill any running experiment, stop the queue's workers and wait until `dvc queue status` lists none, so no worker
    outlives the test."""
    dvc(repo, "queue", "stop", "--kill")
    deadline = time.monotonic() + timeout_s
    while "Worker status: 0 active, 0 idle" not in (status := queue_status(repo)):
        if time.monotonic() > deadline:
            pytest.fail(f"queue workers still running {timeout_s} s after `dvc queue stop --kill`:\n{status}")
        time.sleep(2)


def experiment_results(repo: Path) -> dict[str, dict]:
    """Params and metrics of each experiment of the current commit, by experiment name, from `dvc exp show --json`."""
    results = {}
    for commit in json.loads(dvc(repo, "exp", "show", "--json").stdout):
        for experiment in commit.get("experiments") or []:
            for revision in experiment["revs"]:
                data = revision["data"]
                results[revision["name"]] = {
                    "params": data["params"]["params.yaml"]["data"],
                    "metrics": {path: value["data"] for path, value in data["metrics"].items()},
                }
    return results


def test_queued_threshold_sweep(pipeline):
    thresholds = {"sweep-happy-07": 0.7, "sweep-happy-08": 0.8}
    for name, value in thresholds.items():
        # The queue runs each experiment in a copy of the repository that lacks git-ignored files such as the raw
        # data, so --copy-paths brings it along.
        dvc(pipeline, "exp", "run", "--queue", "--copy-paths", "data/raw", "--name", name,
            "-S", f"sentences.happy_threshold={value}")
    queued = queue_status(pipeline)
    assert queued.count("Queued") == 2, queued

    try:
        dvc(pipeline, "queue", "start", "--jobs", "2")
        status = wait_for_queue(pipeline)
    finally:
        stop_queue(pipeline)
    logs = {name: dvc(pipeline, "queue", "logs", name, check=False).stdout for name in thresholds}
    assert status.count("Success") == 2, status + "".join(logs.values())
    for name in thresholds:
        assert stages_run(logs[name]) == ["sentences", "combine"], logs[name]

    results = experiment_results(pipeline)
    assert set(thresholds) <= set(results), results
    happy_training_sentences = {}
    for name, value in thresholds.items():
        params, metrics = results[name]["params"], results[name]["metrics"]
        assert params["sentences"]["happy_threshold"] == value
        assert "accuracy" in metrics["metrics/combine.json"]["test"]
        happy_training_sentences[name] = metrics["metrics/sentences.json"]["happy"]["train"]
    # The tiny training set has 20 happy sentences with scores between 0.65 and 0.95.
    assert 0 < happy_training_sentences["sweep-happy-08"] < happy_training_sentences["sweep-happy-07"] <= 20
