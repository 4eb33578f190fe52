"""pins on inputs that are not plain text files: FIFOs, sockets, devices; other encodings; deep nesting.

Each answer is a documented exit code and one line naming the file, at once: never
a hang, never exit 70. The pins command runs as a process, so a hang is a timeout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from eagle3_patch.errors import EXIT_OK, EXIT_UNPATCHED, EXIT_USAGE

#: A refusal is at once; a few seconds leave room for a loaded machine, and a FIFO read would block forever.
AT_ONCE = 10


def pins(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "eagle3_patch", "pins", *args],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=AT_ONCE,
            env={**os.environ, "NO_COLOR": "1"},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"pins {' '.join(args)} did not answer within {AT_ONCE} s")


def refused(done: subprocess.CompletedProcess[str], name: str, kind: str) -> None:
    assert done.returncode == EXIT_USAGE, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]  # one line
    assert f"{name}: not a regular file but {kind}; pins reads only regular files" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    path = tmp_path / "requirements-fifo.txt"
    os.mkfifo(path)
    return path


def test_a_fifo_named_on_the_command_line_is_refused_at_once(tmp_path: Path, fifo: Path) -> None:
    refused(pins(tmp_path, fifo.name), fifo.name, "a FIFO")


def test_a_fifo_included_by_a_requirements_file_is_refused(tmp_path: Path, fifo: Path) -> None:
    (tmp_path / "requirements.txt").write_text(f"-r {fifo.name}\nsglang==0.5.21\n")
    refused(pins(tmp_path, "requirements.txt"), fifo.name, "a FIFO")


def test_a_fifo_found_where_pins_looks_is_refused(tmp_path: Path, fifo: Path) -> None:
    (tmp_path / "constraints.txt").write_text("sglang==0.5.21\n")
    refused(pins(tmp_path), fifo.name, "a FIFO")


def test_a_fifo_behind_a_setup_cfg_file_reference_is_refused(tmp_path: Path, fifo: Path) -> None:
    (tmp_path / "setup.cfg").write_text(f"[options]\ninstall_requires = file: {fifo.name}\n")
    refused(pins(tmp_path, "setup.cfg"), fifo.name, "a FIFO")


def test_a_socket_is_refused(tmp_path: Path) -> None:
    if not hasattr(socket, "AF_UNIX"):
        pytest.skip("no UNIX sockets here")
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listening.bind(str(tmp_path / "Dockerfile"))
        refused(pins(tmp_path, "Dockerfile"), "Dockerfile", "a socket")
        refused(pins(tmp_path), "Dockerfile", "a socket")
    finally:
        listening.close()


@pytest.mark.parametrize("how", ["named", "included"])
def test_a_link_to_dev_zero_is_refused(tmp_path: Path, how: str) -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    (tmp_path / "requirements-zero.txt").symlink_to("/dev/zero")
    (tmp_path / "requirements.txt").write_text("-r requirements-zero.txt\n")
    name = "requirements-zero.txt" if how == "named" else "requirements.txt"
    refused(pins(tmp_path, name), "requirements-zero.txt", "a character device")


def test_a_folder_named_like_a_requirements_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").mkdir()
    refused(pins(tmp_path, "requirements.txt"), "requirements.txt", "a folder")


def test_a_link_to_a_regular_file_is_read_and_a_missing_include_has_none(tmp_path: Path) -> None:
    (tmp_path / "pins.txt").write_text("-r missing.txt\nsglang==0.5.21\n")
    (tmp_path / "requirements.txt").symlink_to("pins.txt")
    done = pins(tmp_path, "requirements.txt")
    assert done.returncode == EXIT_OK and "requirements.txt:2: sglang==0.5.21: patch" in done.stdout
    (tmp_path / "constraints.txt").write_text("sglang==0.5.10\n")
    assert pins(tmp_path, "constraints.txt").returncode == EXIT_UNPATCHED


def test_a_fifo_put_in_place_after_the_first_look_is_refused_without_blocking(tmp_path: Path, fifo: Path) -> None:
    """The open uses O_NONBLOCK and the open file is looked at again: a swap after the first look cannot hang."""
    script = f"""
import os, sys
from eagle3_patch import reading
regular = os.stat(sys.executable)
real_stat = os.stat
os.stat = lambda path, *a, **k: regular if str(path) == {str(fifo)!r} else real_stat(path, *a, **k)
try:
    reading.read_regular_file({str(fifo)!r})
except reading.NotRegularFile as exc:
    print(exc.kind)
"""
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=AT_ONCE)
    except subprocess.TimeoutExpired:
        pytest.fail("reading a FIFO blocked")
    assert done.stdout.strip() == "a FIFO", done.stderr
