"""examples/Dockerfile launches with what the release it installs accepts, for each release it may be built with.

The image's launch command is written at build time by the Dockerfile's own
`eagle3-patch doctor --launch-only ...` line; here that line runs on each
release's real files, and every flag in the result (and in CMD) is looked up in
that release's `ServerArgs` (read from the wheel with `ast`, as the cuda level's
Engine arguments are), and every variable it sets must be read somewhere in that
release's source. The facts that differ between releases are asserted as well.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from eagle3_patch.cli import cli
from eagle3_patch.locate import locate_root
from eagle3_patch.verify.engine_args import read_server_args
from tests.conftest import REPO

pytestmark = pytest.mark.corpus

DOCKERFILE = (REPO / "examples" / "Dockerfile").read_text(encoding="utf-8")


def server_args_fields(site: Path) -> frozenset[str]:
    """The release's ``ServerArgs`` fields (the class, and from 0.5.21 its ``arg_groups`` namespaces)."""
    return read_server_args(locate_root(site, found_by="test")).fields


def reads_variable(package: Path, name: str) -> bool:
    """Whether any module of the release names the variable (``envs.NAME`` or a string), outside messages."""
    pattern = re.compile(rf"envs\.{name}\b|[\"']{name}[\"']".encode())
    return any(pattern.search(path.read_bytes()) for path in (package / "srt").rglob("*.py"))


def launch_line() -> list[str]:
    found = re.search(r'launch="\$\((eagle3-patch doctor --launch-only [^)]*)\)"', DOCKERFILE)
    assert found, "examples/Dockerfile writes its launch command with doctor --launch-only"
    return shlex.split(found.group(1))


def cmd_arguments() -> list[str]:
    found = re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.M)
    assert found, "examples/Dockerfile has an exec-form CMD"
    return list(ast.literal_eval(found.group(1)))


@pytest.mark.parametrize("version", ["0.5.12", "0.5.16", "0.5.21", "0.5.23"])
def test_the_dockerfile_launch_uses_only_what_the_release_knows(
    version: str, release_site: Callable[[str], Path]
) -> None:
    site = release_site(version)
    package = site / "sglang"
    words = launch_line()
    assert words[:2] == ["eagle3-patch", "doctor"]
    result = CliRunner().invoke(cli, [*words[1:], "--sglang-root", str(site)])
    assert result.exit_code == 0, result.output
    launch = shlex.split(result.stdout.strip())
    env = {}
    while "=" in launch[0]:
        key, _, value = launch.pop(0).partition("=")
        env[key] = value
    assert launch[:3] == ["python", "-m", "sglang.launch_server"], launch
    fields = server_args_fields(site)
    flags = [w for w in [*launch, *cmd_arguments()] if w.startswith("--")]
    unknown = [f for f in flags if f.removeprefix("--").replace("-", "_") not in fields]
    assert not unknown, f"sglang {version} has no {unknown}"
    assert "--speculative-algorithm" in flags
    assert sum(f in flags for f in ("--mamba-radix-cache-strategy", "--mamba-scheduler-strategy")) == 1, flags
    unread = [name for name in env if not reads_variable(package, name)]
    assert not unread, f"sglang {version} never reads {unread}"
    if version == "0.5.12":  # the model cards' variable, which this release needs for EAGLE-3 with mamba layers
        assert env == {"SGLANG_ENABLE_SPEC_V2": "1"} and "--mamba-scheduler-strategy" in flags
    if version in ("0.5.21", "0.5.23"):
        assert env == {} and "--mamba-scheduler-strategy" not in flags
