"""Shared fixtures: fake installs built from fixtures/, real releases from the index."""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from packaging.version import Version

from eagle3_patch.classify import InstallReport, classify_install
from eagle3_patch.cli import cli
from eagle3_patch.fetch import FetchError, extract_release, fetch_wheel, index_versions
from eagle3_patch.locate import locate_root
from eagle3_patch.plan import plan_apply
from eagle3_patch.spec import load_spec
from eagle3_patch.verified import load_verified
from eagle3_patch.write import LOCK_NAME, execute

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
FIRST_RELEASE = "0.5.8"

# SGLANG_FACTS.md's release matrix: what eagle3-patch must do, by version. An
# oracle independent of the classifier and of anchors/verified.toml.
_FIRST_QWEN3_5 = Version("0.5.9")
_FIRST_CAPTURE = Version("0.5.11")
_FIRST_NATIVE = Version("0.5.22")


def expected_verdict(version: str) -> str:
    parsed = Version(version)
    if parsed < _FIRST_CAPTURE:
        return "unsupported"
    return "patch" if parsed < _FIRST_NATIVE else "native"


def _release_versions() -> tuple[tuple[str, ...], str]:
    """Releases to run the corpus on: the index's, else the table's (with the reason)."""
    try:
        return index_versions(FIRST_RELEASE), ""
    except FetchError as exc:
        return tuple(r.version for r in load_verified()), str(exc)


RELEASES, INDEX_PROBLEM = _release_versions()
PATCH_RELEASES = tuple(v for v in RELEASES if expected_verdict(v) == "patch")
SERVED_RELEASES = tuple(v for v in RELEASES if expected_verdict(v) != "unsupported")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "release" in metafunc.fixturenames:
        metafunc.parametrize("release", RELEASES)
    if "served_release" in metafunc.fixturenames:
        metafunc.parametrize("served_release", SERVED_RELEASES)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests pick their install explicitly; never the developer's own sglang."""
    monkeypatch.delenv("EAGLE3_PATCH_SGLANG_ROOT", raising=False)
    monkeypatch.delenv("SGLANG_EXTERNAL_MODEL_PACKAGE", raising=False)  # an overlay only where a test sets one
    monkeypatch.setenv("NO_COLOR", "1")


def run_cli(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(cli, list(args), catch_exceptions=False)


def run_json(runner: CliRunner, *args: str) -> tuple[int, dict]:
    result = run_cli(runner, *args, "--json")
    return result.exit_code, json.loads(result.stdout)


MakeInstall = Callable[..., Path]


@pytest.fixture
def make_install(tmp_path: Path) -> MakeInstall:
    """Build ``<tmp>/site/sglang`` from fixture folders (later ones win); returns site-packages."""

    def build(*shapes: str, version: str | None = None, name: str = "site") -> Path:
        site = tmp_path / name
        models = site / "sglang" / "srt" / "models"
        models.mkdir(parents=True, exist_ok=True)
        (site / "sglang" / "__init__.py").write_text("")
        (site / "sglang" / "srt" / "__init__.py").write_text("")
        for shape in shapes:
            for source in sorted((FIXTURES / shape).glob("*.py")):
                shutil.copyfile(source, models / source.name)
        if version is not None:
            dist_info = site / f"sglang-{version}.dist-info"
            dist_info.mkdir(exist_ok=True)
            (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: sglang\nVersion: {version}\n\n")
            (dist_info / "RECORD").write_text("")
        return site

    return build


@pytest.fixture
def release_site(tmp_path: Path) -> Callable[[str], Path]:
    """Unpack a real release wheel (downloaded once, cached) into a temp site-packages."""

    def unpack(version: str) -> Path:
        site = tmp_path / f"site-{version}"
        site.mkdir()
        extract_release(fetch_wheel(version), site)
        return site

    return unpack


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder``: its bytes and mtime, to prove nothing was written.

    The lock file is left out: it is created by the first write and, by design,
    never deleted (tests/test_reliability.py checks it separately).
    """
    return {
        str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != LOCK_NAME
    }


def warn_unlisted(version: str, state: str) -> None:
    warnings.warn(
        f"sglang {version} is not in anchors/verified.toml; classified from its code as {state}. "
        "Add it with: python scripts/verified_rows.py",
        stacklevel=2,
    )


def classify_site(site: Path) -> InstallReport:
    return classify_install(locate_root(site, found_by="test"), load_spec())


def patch_site(site: Path) -> InstallReport:
    """Apply through the library stages (what `eagle3-patch apply` runs); returns the new report."""
    plan = plan_apply(classify_site(site), load_spec())
    assert plan.write is not None
    execute(plan.write)
    return classify_site(site)


def needs(module: str) -> object:
    """Import an optional test dependency (torch, transformers): skip without it, unless CI
    sets EAGLE3_PATCH_REQUIRE_EXTRAS=1, where its absence is a failure, not a skip."""
    import importlib
    import os

    if os.environ.get("EAGLE3_PATCH_REQUIRE_EXTRAS") == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module)


#: What a source distribution of eagle3-patch needs: enough to build the wheel.
SHIPPED = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "eagle3_patch")


def copy_project(destination: Path) -> Path:
    """The project's buildable files (the working tree, committed or not) copied into ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """eagle3-patch's wheel, built once per session from a copy of this working tree (outside the checkout)."""
    import subprocess
    import sys

    source = copy_project(tmp_path_factory.mktemp("source"))
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(source)],
        check=True,
    )
    (wheel,) = dist.glob("eagle3_patch-*.whl")
    return wheel


@pytest.fixture(scope="session")
def wheel_venv(built_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the checkout with only the wheel (and its dependencies) installed; its bin folder.

    Shared by the session: tests run commands from it but never install into it.
    """
    import subprocess
    import venv

    folder = tmp_path_factory.mktemp("wheel-venv")
    venv.EnvBuilder(with_pip=True).create(folder)
    subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", str(built_wheel)], check=True)
    return folder / "bin"
