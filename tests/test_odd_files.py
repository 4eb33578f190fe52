"""Nothing hangs: a FIFO, socket or device in place of any file eagle3-patch reads gets a documented code at once.

Opening a FIFO for reading blocks until a writer comes, and a device such as
/dev/zero never ends; today every read opens non-blocking and checks that it
has a regular file first (``eagle3_patch/reading.py``). Each case runs the real
CLI in a subprocess with a timeout of a few seconds, which a blocked read hits.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from eagle3_patch.errors import EXIT_CANNOT_WRITE, EXIT_DRIFT, EXIT_NOT_FOUND, EXIT_OK, EXIT_UNPATCHED
from eagle3_patch.ledger import BACKUP_SUFFIX, LEDGER_NAME
from eagle3_patch.write import LOCK_NAME
from tests.conftest import REPO, MakeInstall

DOCUMENTED = {EXIT_OK, EXIT_UNPATCHED, 2, 3, EXIT_DRIFT, EXIT_NOT_FOUND, EXIT_CANNOT_WRITE}
TIMEOUT_S = 8

#: Where each file lies in a 0.5.21 site, and whether the case needs a patched install (backups, ledger).
FILES = {
    "target": ("sglang/srt/models/qwen3_5.py", False),
    "second-target": ("sglang/srt/models/qwen3_5_text.py", False),
    "reference-file": ("sglang/srt/models/qwen3_vl.py", False),
    "backup": ("sglang/srt/models/qwen3_5.py" + BACKUP_SUFFIX, True),
    "ledger": ("sglang/srt/models/" + LEDGER_NAME, True),
    "record": ("sglang-0.5.21.dist-info/RECORD", True),
    "metadata": ("sglang-0.5.21.dist-info/METADATA", False),
    "lock": (LOCK_NAME, True),
    "version-file": ("sglang/version.py", False),
}


@contextmanager
def odd_file(path: Path, kind: str) -> Iterator[None]:
    """Put a FIFO, a listening UNIX socket or a link to /dev/zero at ``path`` for the block's duration."""
    if path.exists() or path.is_symlink():
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
        yield
    elif kind == "socket":
        here = Path.cwd()
        os.chdir(path.parent)  # a socket's path is limited to about 108 bytes: bind the bare name
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(path.name)
            server.listen(1)
        finally:
            os.chdir(here)
        try:
            yield
        finally:
            server.close()
    else:
        path.symlink_to("/dev/zero")
        yield


def run(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eagle3_patch", *args, "--sglang-root", str(site), "--json"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
        cwd=REPO,
    )


@pytest.mark.parametrize("kind", ["fifo", "socket", "device"])
@pytest.mark.parametrize("where", sorted(FILES))
def test_an_odd_file_in_place_of_any_read_file_never_hangs(make_install: MakeInstall, where: str, kind: str) -> None:
    site = make_install("capture_no_hook", "text_wrapper", version="0.5.21")
    (site / "sglang" / "version.py").write_text('__version__ = "0.5.21"\n')
    (site / "sglang" / "srt" / "models" / "qwen3_vl.py").write_text("class Qwen3VLModel:\n    pass\n")
    relative, patched = FILES[where]
    if patched:
        assert run(site, "apply").returncode == EXIT_OK
    path = site / relative
    with odd_file(path, kind):
        for command in (("status",), ("check",), ("apply",), ("revert",)):
            try:
                result = run(site, *command)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{' '.join(command)} hung on {kind} at {relative}")
            assert result.returncode in DOCUMENTED, (command, result.returncode, result.stderr)
            assert "Traceback" not in result.stderr and "please report" not in result.stderr, result.stderr
        mode = os.lstat(path).st_mode
        expected = {"fifo": stat.S_ISFIFO, "socket": stat.S_ISSOCK, "device": stat.S_ISLNK}[kind]
        assert expected(mode), f"the {kind} itself was never replaced or removed"
