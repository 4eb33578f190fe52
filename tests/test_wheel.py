"""The built wheel in a fresh venv, run from outside the checkout; and the Docker recipe's sequence."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from eagle3_patch import __version__
from eagle3_patch.fetch import extract_release, fetch_wheel
from eagle3_patch.spec import load_spec
from eagle3_patch.verified import anchors_version, load_verified
from tests.conftest import REPO, copy_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel built from this working tree installed; its bin folder."""
    source = copy_project(tmp_path_factory.mktemp("source"))
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(source)],
        check=True,
    )
    (wheel,) = dist.glob("eagle3_patch-*.whl")
    folder = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(folder)
    subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], check=True)
    return folder / "bin"


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, check=False)


def test_wheel_runs_from_any_directory(installed: Path, tmp_path: Path) -> None:
    version = run(installed, "eagle3-patch", "--version", cwd=tmp_path)
    assert version.returncode == 0
    assert version.stdout.startswith(f"eagle3-patch {__version__} (anchors data {anchors_version()}; verified sglang")
    assert "patch 0.5.11-0.5.21" in version.stdout
    helped = run(installed, "python", "-m", "eagle3_patch", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "apply" in helped.stdout and "pins" in helped.stdout
    site = tmp_path / "site"
    extract_release(fetch_wheel("0.5.21"), site)
    applied = run(installed, "eagle3-patch", "apply", "--json", "--sglang-root", str(site), cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["state"] == "patched"
    checked = run(installed, "eagle3-patch", "check", "--json", "--sglang-root", str(site), cwd=tmp_path)
    assert (checked.returncode, json.loads(checked.stdout)["state"]) == (0, "patched")
    anchors = run(
        installed,
        "python",
        "-c",
        "from importlib import resources; from eagle3_patch.spec import load_spec; "
        "from eagle3_patch.verified import load_verified; "
        "print(resources.files('eagle3_patch.anchors').joinpath('targets.toml'), len(load_spec().files), "
        "len(load_verified()))",
        cwd=tmp_path,
    )
    assert anchors.returncode == 0, anchors.stderr
    where, files, releases = anchors.stdout.split()
    assert where.startswith(str(installed.parent)) and "site-packages" in where, where
    assert (int(files), int(releases)) == (len(load_spec().files), len(load_verified()))


def test_docker_recipe_builds_as_written_in_a_fresh_venv(tmp_path: Path) -> None:
    """examples/Dockerfile, step by step: build the wheel into the context, COPY it, the RUN as written.

    Only two things differ from a real build: sglang is installed from its wheel
    without its (GPU) dependencies, and COPY's destination is a folder here.
    """
    dockerfile = (REPO / "examples" / "Dockerfile").read_text()
    pinned = re.search(r"^ARG SGLANG_VERSION=(\S+)$", dockerfile, re.M)
    assert pinned, "the recipe pins sglang in one ARG"
    build = re.search(r"^#\s+(pip wheel .+ /path/to/eagle3-patch)$", dockerfile, re.M)
    assert build, "the recipe says how to put eagle3-patch's wheel in the build context"
    copied = re.search(r"^COPY (\S+) (\S+)$", dockerfile, re.M)
    assert copied, "the recipe copies the wheel from the build context"
    run_step = next(step for step in re.split(r"\n(?=[A-Z]+ )", dockerfile) if step.startswith("RUN pip install"))
    assert '"sglang[all]==${SGLANG_VERSION}"' in run_step, "the patch runs in the same layer as the install"
    assert "eagle3-patch==" not in run_step, "eagle3-patch is not on the package index"

    context = tmp_path / "context"
    context.mkdir()
    source = copy_project(tmp_path / "clone")
    words = build.group(1).replace("/path/to/eagle3-patch", str(source)).split()
    assert subprocess.run([sys.executable, "-m", *words], cwd=context, check=False).returncode == 0
    image = tmp_path / "image"
    shutil.copytree(context / copied.group(1), image / copied.group(2).strip("/"))
    folder = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(folder)
    bin_dir = folder / "bin"
    sglang = subprocess.run(
        [str(bin_dir / "pip"), "install", "--quiet", "--no-deps", str(fetch_wheel(pinned.group(1)))]
    )
    assert sglang.returncode == 0
    command = run_step.removeprefix("RUN ").replace("\\\n", " ")
    command = command.replace('"sglang[all]==${SGLANG_VERSION}"', "")  # installed above, without its dependencies
    command = command.replace(copied.group(2), f"{image}/{copied.group(2).strip('/')}/")
    completed = subprocess.run(
        ["sh", "-c", command],
        cwd=tmp_path,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "NO_COLOR": "1", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert "patched: qwen3_5.py" in completed.stdout
    assert "patched: EAGLE-3 aux hidden-state capture is in place" in completed.stdout


def test_a_non_editable_install_runs_from_the_checkout_root(installed: Path, tmp_path: Path) -> None:
    """From the checkout's root, `python -m eagle3_patch` imports the source folder: anchors/ still loads."""
    version = run(installed, "python", "-m", "eagle3_patch", "--version", cwd=REPO)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith(f"eagle3-patch {__version__} (anchors data {anchors_version()}")
    site = tmp_path / "site"
    extract_release(fetch_wheel("0.5.21"), site)
    checked = run(installed, "python", "-m", "eagle3_patch", "check", "--json", "--sglang-root", str(site), cwd=REPO)
    assert (checked.returncode, json.loads(checked.stdout)["state"]) == (1, "unpatched"), checked.stderr
