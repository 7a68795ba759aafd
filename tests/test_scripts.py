"""The README's shell commands check for a git checkout before any set-up or DVC call."""

import os
import shutil
import subprocess

import pytest

from conftest import PROJECT_ROOT


def copy_scripts(destination):
    shutil.copytree(PROJECT_ROOT / "scripts", destination / "scripts")
    return destination


def run_script(project, name):
    # GIT_CEILING_DIRECTORIES stops git from finding a repository above the temporary folder.
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(project.parent)}
    return subprocess.run(
        ["bash", str(project / "scripts" / name), "-S", "sentences.happy_threshold=0.8"],
        capture_output=True, text=True, env=env, timeout=60,
    )


@pytest.mark.parametrize("name", ["pipeline.sh", "experiment.sh"])
def test_script_outside_git_says_git_init(tmp_path, name):
    project = copy_scripts(tmp_path / "copy")

    result = run_script(project, name)

    assert result.returncode == 1
    assert f"ESLP: {project} is not a git repository" in result.stderr
    assert 'git init && git add -A && git commit -m "Start"' in result.stderr
    assert not (project / ".venv").exists()


def test_experiment_without_commit_says_commit(tmp_path):
    project = copy_scripts(tmp_path / "copy")
    subprocess.run(["git", "init", "-q", str(project)], check=True)

    result = run_script(project, "experiment.sh")

    assert result.returncode == 1
    assert "has no commit yet, and `dvc exp run` needs one" in result.stderr
    assert 'git add -A && git commit -m "Start"' in result.stderr
    assert not (project / ".venv").exists()
