"""Output: rich on a terminal, plain text when piped or when NO_COLOR is set, nothing with --quiet."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import MakeInstall

ESCAPE = b"\x1b["


def in_terminal(args: list[str], *, no_color: bool, columns: int = 200) -> tuple[int, bytes]:
    """Run the CLI with a pseudo-terminal as stdout and stderr."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update({"TERM": "xterm-256color", "COLUMNS": str(columns)})
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


def screen_lines(output: bytes) -> list[str]:
    """What a terminal shows, line by line, without colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", output.decode())
    return [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]


def test_status_at_80_columns_keeps_whole_class_names(release_site: Callable[[str], Path]) -> None:
    """tmux's 80x24: the detail column wraps, the file, class and state columns stay whole."""
    site = release_site("0.5.21")
    code, output = in_terminal(["status", "--sglang-root", str(site)], no_color=False, columns=80)
    assert code == 0
    lines = screen_lines(output)
    assert all(len(line) <= 80 or len(line.split()) == 1 for line in lines), lines  # a long path stays whole
    shown = "\n".join(lines)
    for name in (
        "Qwen3_5ForCausalLM",
        "Qwen3_5ForConditionalGeneration",
        "Qwen3_5MoeForConditionalGeneration",
        "qwen3_5_text.py",
    ):
        assert re.search(rf"(^|\s){name}(\s|$)", shown, re.M), f"{name} not shown whole:\n{shown}"
    assert "…" not in shown


def test_long_lines_on_a_terminal_break_at_spaces(release_site: Callable[[str], Path]) -> None:
    """verify's failed checks and doctor's problems: the same words as piped, each whole, within 80 columns."""
    site = release_site("0.5.21")
    fixtures = Path(__file__).resolve().parent.parent / "fixtures" / "doctor"
    for args in (
        ["verify", "--sglang-root", str(site)],
        [
            "doctor",
            "--target",
            str(fixtures / "target"),
            "--draft",
            str(fixtures / "draft"),
            "--sglang-root",
            str(site),
        ],
    ):
        _, output = in_terminal(args, no_color=True, columns=80)
        lines = screen_lines(output)
        assert all(len(line) <= 80 or len(line.split()) == 1 for line in lines), lines
        flat = piped(args)
        assert " ".join(lines).split() == (flat.stdout + flat.stderr).decode().split() or sorted(
            " ".join(lines).split()
        ) == sorted((flat.stdout + flat.stderr).decode().split()), args
