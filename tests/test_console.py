"""Output: rich on a terminal, plain text when piped or when NO_COLOR is set, nothing with --quiet."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.conftest import MakeInstall

ESCAPE = b"\x1b["


def in_terminal(args: list[str], *, no_color: bool) -> tuple[int, bytes]:
    """Run the CLI with a pseudo-terminal as stdout and stderr."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update({"TERM": "xterm-256color", "COLUMNS": "200"})
    if no_color:
        env["NO_COLOR"] = "1"
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "eagle3_patch", *args], stdin=follower, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return process.wait(), output


def piped(args: list[str]) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    return subprocess.run([sys.executable, "-m", "eagle3_patch", *args], capture_output=True, env=env, check=False)


def test_terminal_gets_colour_and_no_color_turns_it_off(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    for command in (["status"], ["apply", "--dry-run"], ["check"]):
        code, coloured = in_terminal([*command, "--sglang-root", str(site)], no_color=False)
        assert ESCAPE in coloured, command
        code_plain, plain = in_terminal([*command, "--sglang-root", str(site)], no_color=True)
        assert ESCAPE not in plain, command
        assert code == code_plain
    _, diff = in_terminal(["apply", "--dry-run", "--sglang-root", str(site)], no_color=True)
    assert b"+    def set_eagle3_layers_to_capture(self, layers_to_capture):" in diff


def test_piped_output_is_plain(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    for command in (["status"], ["apply", "--dry-run"], ["check"], ["verify"], ["--version"]):
        completed = piped([*command, "--sglang-root", str(site)] if command != ["--version"] else command)
        assert ESCAPE not in completed.stdout + completed.stderr, command
        assert completed.stdout.strip(), command


def test_quiet_prints_only_errors(make_install: MakeInstall, tmp_path: Path) -> None:
    site = make_install("capture_no_hook")
    quiet = piped(["apply", "--quiet", "--sglang-root", str(site)])
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, b"", b"")
    missing = piped(["check", "--quiet", "--sglang-root", str(tmp_path / "nothing")])
    assert missing.returncode == 5 and missing.stdout == b"" and b"no SGLang here" in missing.stderr
