"""The README's two Docker recipes, built for real with `docker build` and run with `docker run --read-only`.

The base image is made from Debian packages by scripts/docker_daemon.sh (no
image registry is reachable here), which .ci/run calls before the tests. Two
things differ from a user's build, each for a reason: the base is that Debian
image instead of a CUDA one, and sglang is installed with `--no-deps` in a step
of its own (its GPU dependencies include one that downloads from a host outside
the package index). Everything else is the recipe's own text: examples/Dockerfile
for the build-time patch, the README's overlay snippet for read-only images.

Where no Docker daemon can start, the tests skip and say why; under CI they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

BASE = os.environ.get("EAGLE3_PATCH_DOCKER_BASE", "eagle3-patch-test-base:bookworm")
SGLANG = "0.5.21"
RECIPE_INSTALL = '"sglang[all]==${SGLANG_VERSION}" '
_BUILD_TIMEOUT_S = 1200


def docker_problem() -> str:
    """Why the Docker tests cannot run here, or "" when they can."""
    if shutil.which("docker") is None:
        return "no docker client on PATH (scripts/docker_daemon.sh installs Debian's docker.io)"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "docker info did not answer in 30 s"
    if info.returncode != 0:
        return "no Docker daemon answers (as root: bash scripts/docker_daemon.sh)"
    image = subprocess.run(["docker", "image", "inspect", BASE], capture_output=True, timeout=30, check=False)
    if image.returncode != 0:
        return f"no base image {BASE} (bash scripts/docker_daemon.sh makes it)"
    return ""


@pytest.fixture(scope="module")
def docker() -> None:
    problem = docker_problem()
    if problem and os.environ.get("CI"):
        pytest.fail(f"CI must run the Docker tests: {problem}")
    if problem:
        pytest.skip(problem)


def docker_run(image: str, *command: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """``docker run --rm --read-only [options] image command...``: the image's root file system read-only."""
    return subprocess.run(
        ["docker", "run", "--rm", "--read-only", *options, image, *command],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def build(context: Path, dockerfile: str, tag: str, *build_args: str) -> None:
    (context / "Dockerfile").write_text(dockerfile, encoding="utf-8")
    words = ["docker", "build", "--tag", tag, *(f"--build-arg={arg}" for arg in build_args), str(context)]
    built = subprocess.run(words, capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S, check=False)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]


@pytest.fixture(scope="module")
def context(built_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build context laid out as the README says: the wheel in wheels/."""
    folder = tmp_path_factory.mktemp("docker-context")
    (folder / "wheels").mkdir()
    shutil.copy2(built_wheel, folder / "wheels")
    return folder


def _remove(tag: str) -> None:
    subprocess.run(["docker", "image", "rm", "--force", tag], capture_output=True, timeout=120, check=False)
    subprocess.run(["docker", "image", "prune", "--force"], capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def patched_image(docker: None, context: Path) -> Iterator[str]:
    """examples/Dockerfile, built: install, `apply`, `check` and the launch script in one RUN."""
    recipe = (REPO / "examples" / "Dockerfile").read_text(encoding="utf-8")
    assert recipe.count(RECIPE_INSTALL) == 1, "the recipe installs sglang in its patch RUN"
    run_line = next(
        line for line in recipe.splitlines() if line.startswith("RUN pip install") and RECIPE_INSTALL in line
    )
    dockerfile = recipe.replace(
        run_line,
        'RUN pip install --no-cache-dir --no-deps "sglang==${SGLANG_VERSION}"\n' + run_line.replace(RECIPE_INSTALL, ""),
    )
    tag = "eagle3-patch-test-patched:latest"
    build(context, dockerfile, tag, f"BASE_IMAGE={BASE}", f"SGLANG_VERSION={SGLANG}")
    yield tag
    _remove(tag)


def overlay_snippet() -> str:
    """The README's Dockerfile lines for a read-only image (the block that runs `eagle3-patch overlay`)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```dockerfile\n(.+?)```", readme, re.S) if "eagle3-patch overlay" in b]
    assert len(blocks) == 1, "the README has one overlay recipe"
    return blocks[0]


@pytest.fixture(scope="module")
def overlay_image(docker: None, context: Path) -> Iterator[str]:
    """An image with sglang installed, then the README's overlay lines as written."""
    dockerfile = (
        f"FROM {BASE}\n"
        "RUN python3 -m venv /opt/venv\n"
        "ENV PATH=/opt/venv/bin:$PATH\n"
        f'RUN pip install --no-cache-dir --no-deps "sglang=={SGLANG}"\n' + overlay_snippet()
    )
    tag = "eagle3-patch-test-overlay:latest"
    build(context, dockerfile, tag)
    yield tag
    _remove(tag)


def test_the_build_time_recipe_gives_a_patched_image(patched_image: str) -> None:
    """`check` passes in the image, also read-only; `apply` there has nothing to do and writes nothing."""
    tool = ("--entrypoint", "eagle3-patch")
    checked = docker_run(patched_image, "check", "--json", options=tool)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["state"] == "patched"
    assert json.loads(checked.stdout)["sglang"]["version"] == SGLANG
    again = docker_run(patched_image, "apply", options=tool)
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr
    helped = docker_run(patched_image, "doctor", "--help", options=tool)
    assert helped.returncode == 0 and "--launch-only" in helped.stdout, helped.stderr


def test_the_build_time_image_launches_with_flags_its_release_knows(patched_image: str) -> None:
    """The entry point is the command doctor wrote for the installed release, with CMD's arguments after it.

    A stand-in `python` (on a tmpfs, first on PATH) prints what it was started
    with, so the launch is seen without SGLang's GPU stack.
    """
    inspected = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Entrypoint}} {{json .Config.Cmd}}", patched_image],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    entrypoint, cmd = (json.loads(part) for part in inspected.stdout.split(" ", 1))
    assert entrypoint == ["serve-eagle3"] and cmd == ["--host", "0.0.0.0", "--port", "30000"]
    fake = 'printf "#!/bin/sh\\necho \\"SPEC_V2=\\$SGLANG_ENABLE_SPEC_V2 \\$0 \\$*\\"\\n" > /fake/python'
    shown = docker_run(
        patched_image,
        "-c",
        f"{fake} && chmod +x /fake/python && PATH=/fake:$PATH serve-eagle3 --host 0.0.0.0 --port 30000",
        options=("--tmpfs", "/fake:exec", "--entrypoint", "sh"),
    )
    assert shown.returncode == 0, shown.stderr
    words = shown.stdout.split()
    assert words[:3] == ["SPEC_V2=", "/fake/python", "-m"], shown.stdout  # 0.5.21 reads no SGLANG_ENABLE_SPEC_V2
    assert words[3] == "sglang.launch_server"
    assert "--mamba-radix-cache-strategy" in words and "--mamba-scheduler-strategy" not in words
    assert words[-4:] == ["--host", "0.0.0.0", "--port", "30000"]
    assert words[words.index("--model-path") + 1] == "/models/target"
    assert words[words.index("--speculative-draft-model-path") + 1] == "/models/draft"


def test_the_overlay_recipe_enables_capture_on_a_read_only_image(overlay_image: str) -> None:
    """With the recipe's variables the image reads as overlaid; without them as unpatched; apply is refused."""
    checked = docker_run(overlay_image, "eagle3-patch", "check", "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["state"] == "overlaid"
    bare = docker_run(
        overlay_image,
        "env",
        "-u",
        "PYTHONPATH",
        "-u",
        "SGLANG_EXTERNAL_MODEL_PACKAGE",
        "eagle3-patch",
        "check",
        "--json",
    )
    assert bare.returncode == 1, bare.stdout + bare.stderr
    assert json.loads(bare.stdout)["state"] == "unpatched"
    applied = docker_run(overlay_image, "eagle3-patch", "apply")
    assert applied.returncode == 6, applied.stdout + applied.stderr
    assert "read-only" in applied.stderr and "eagle3-patch overlay --out DIR" in applied.stderr, applied.stderr
    ours = docker_run(overlay_image, "find", "/opt/venv", "-name", "*.eagle3-*", "-o", "-name", ".eagle3-patch*")
    assert ours.returncode == 0 and ours.stdout == "", "the overlay wrote nothing inside the install"
