"""A real pre-commit run of the eagle3-patch-pins hook in a scratch deployment repository.

pre-commit clones this project (its working tree, committed into a scratch
repository so uncommitted work is what gets tested), builds the hook's virtual
environment with pip, and runs the hook on the files it is given.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_project

pytestmark = pytest.mark.slow

GIT = ["git", "-c", "user.name=eagle3-patch tests", "-c", "user.email=tests@eagle3-patch.invalid"]


def git(folder: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=folder, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This project as pre-commit will clone it: a git repository and a commit."""
    folder = copy_project(tmp_path_factory.mktemp("hook-repo"))
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "eagle3-patch under test")
    return folder, git(folder, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, hook_repo: tuple[Path, str]) -> Path:
    """A deployment repository whose .pre-commit-config.yaml points at the hook repository."""
    folder = tmp_path_factory.mktemp("deployment")
    repo, rev = hook_repo
    (folder / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {repo}\n    rev: {rev}\n    hooks:\n      - id: eagle3-patch-pins\n        verbose: true\n"
    )
    git(folder, "init", "-q")
    return folder


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def run_hook(deployment: Path, home: Path, name: str, text: str) -> subprocess.CompletedProcess[str]:
    path = deployment / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--files", name],
        cwd=deployment,
        capture_output=True,
        text=True,
        env={**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1"},
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "text", "code", "expected"),
    [
        pytest.param(
            "requirements.txt", "sglang[all]==0.5.21\n", 0, "requirements.txt:1: sglang==0.5.21: patch", id="verified"
        ),
        pytest.param(
            "requirements-native.txt", "sglang==0.5.23\n", 0, "requirements-native.txt:1: sglang==0.5.23: native",
            id="native",
        ),
        pytest.param(
            "requirements-old.txt", "sglang==0.5.10\n", 1, "requirements-old.txt:1: sglang==0.5.10: unsupported",
            id="0.5.10",
        ),
        pytest.param(
            "constraints.txt", "sglang==0.5.99\n", 1, "constraints.txt:1: sglang==0.5.99: unknown", id="unknown"
        ),
        pytest.param(
            "requirements-range.in", "sglang>=0.5.11\n", 1, "requirements-range.in:1: sglang>=0.5.11: unpinned",
            id="unpinned",
        ),
        pytest.param(
            "docker/Dockerfile",
            "ARG SGLANG_VERSION=0.5.21\nFROM python:3.11\nRUN pip install \"sglang==${SGLANG_VERSION}\" \\\n"
            "    && eagle3-patch apply && eagle3-patch check\n",
            0,
            "docker/Dockerfile:3: sglang==0.5.21 (version from SGLANG_VERSION set on line 1): patch",
            id="dockerfile",
        ),
        pytest.param(
            "docker/gpu.DockerFile", "FROM lmsysorg/sglang:v0.5.10.post1-cu129\n", 1,
            "docker/gpu.DockerFile:1: sglang==0.5.10.post1 (the base image): unsupported", id="any case, base image",
        ),
        pytest.param(
            "setup.py", "from setuptools import setup\nsetup(install_requires=['sglang==0.5.21'])\n", 0,
            "setup.py:2: sglang==0.5.21: patch", id="setup.py",
        ),
        pytest.param("notes.txt", "sglang==0.5.10\n", 0, "(no files to check)", id="not a pin file"),
    ],
)  # fmt: skip
def test_pins_hook(deployment: Path, pre_commit_home: Path, name: str, text: str, code: int, expected: str) -> None:
    completed = run_hook(deployment, pre_commit_home, name, text)
    output = completed.stdout + completed.stderr
    assert completed.returncode == code, output
    assert expected in output, output
    if code:
        assert "- exit code: 1" in output
