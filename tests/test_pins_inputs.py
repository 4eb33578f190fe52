"""pins on inputs that are not plain text files: FIFOs, sockets, devices; other encodings; deep nesting.

Each answer is a documented exit code and one line naming the file, at once: never
a hang, never exit 70. The pins command runs as a process, so a hang is a timeout.
"""

from __future__ import annotations

import codecs
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from eagle3_patch.errors import EXIT_OK, EXIT_UNPATCHED, EXIT_USAGE

#: A refusal is at once; a few seconds leave room for a loaded machine, and a FIFO read would block forever.
AT_ONCE = 10


def pins(folder: Path, *args: str, timeout: float = AT_ONCE) -> subprocess.CompletedProcess[str]:
    """``eagle3-patch pins ARGS`` in ``folder``; a run that outlasts ``timeout`` fails the test as a hang."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "eagle3_patch", "pins", *args],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "NO_COLOR": "1"},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"pins {' '.join(args)} did not answer within {timeout:g} s")


def refused(done: subprocess.CompletedProcess[str], name: str, kind: str) -> None:
    assert done.returncode == EXIT_USAGE, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]  # one line
    assert f"{name}: it is {kind}" in done.stderr and "not a regular file; pins reads only regular files" in done.stderr
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
    reading.read_regular_bytes({str(fifo)!r})
except reading.NotRegularFileError as exc:
    print(exc.kind)
"""
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=AT_ONCE)
    except subprocess.TimeoutExpired:
        pytest.fail("reading a FIFO blocked")
    assert done.stdout.strip().startswith("a FIFO"), done.stderr


# Encodings: a requirements file is decoded as pip decodes it; the other kinds as their own tools do.

BOMS = {
    "utf-8": codecs.BOM_UTF8,
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
    "utf-32-le": codecs.BOM_UTF32_LE,
    "utf-32-be": codecs.BOM_UTF32_BE,
}
#: What `pip freeze > requirements.txt` writes in Windows PowerShell 5: UTF-16 LE, a byte order mark, CRLF.
FROZEN = "sglang==0.5.8\r\ntorch==2.9.1\r\n"


@pytest.mark.parametrize("codec", list(BOMS))
def test_a_requirements_file_with_a_byte_order_mark_reads_like_its_utf_8_twin(tmp_path: Path, codec: str) -> None:
    (tmp_path / "requirements.txt").write_bytes(BOMS[codec] + FROZEN.encode(codec))
    (tmp_path / "requirements-utf8.txt").write_bytes(FROZEN.encode())
    marked, plain = pins(tmp_path, "requirements.txt"), pins(tmp_path, "requirements-utf8.txt")
    assert marked.returncode == plain.returncode == EXIT_UNPATCHED, marked.stderr
    assert marked.stdout.startswith("requirements.txt:1: sglang==0.5.8: unsupported")
    assert marked.stdout == plain.stdout.replace("requirements-utf8.txt", "requirements.txt")


@pytest.mark.parametrize("codec", list(BOMS))
def test_decoding_agrees_with_pip(tmp_path: Path, codec: str) -> None:
    """pip's own auto_decode, where it gives the text: it checks UTF-16's mark before UTF-32 LE's, which begins
    with it, so it reads a UTF-32 LE file as UTF-16 (a NUL before each character); pins reads UTF-32 LE."""
    encoding = pytest.importorskip("pip._internal.utils.encoding")
    from eagle3_patch.pins.readers import read_requirements_text

    path = tmp_path / "requirements.txt"
    path.write_bytes(BOMS[codec] + FROZEN.encode(codec))
    ours = read_requirements_text(str(path))
    assert ours == FROZEN
    if codec != "utf-32-le":
        assert ours == encoding.auto_decode(path.read_bytes())


def test_utf_16_requirements_included_constrained_and_named_otherwise(tmp_path: Path) -> None:
    bom, data = codecs.BOM_UTF16_LE, "sglang==0.5.8\r\n".encode("utf-16-le")
    (tmp_path / "base.txt").write_bytes(bom + data)
    (tmp_path / "constraints.txt").write_bytes(bom + data)
    (tmp_path / "deps.list").write_bytes(bom + data)
    (tmp_path / "requirements.txt").write_text("-r base.txt\n-c constraints.txt\n")
    done = pins(tmp_path, "requirements.txt", "deps.list")
    assert done.returncode == EXIT_UNPATCHED
    assert [line.split(": ")[0] for line in done.stdout.splitlines()] == [
        "base.txt:1",
        "constraints.txt:1",
        "deps.list:1",
    ]


def test_a_coding_comment_names_the_requirements_encoding(tmp_path: Path) -> None:
    text = "# -*- coding: latin-1 -*-\nsglang==0.5.8 ; platform_release == 'café'\n"
    (tmp_path / "requirements.txt").write_bytes(text.encode("latin-1"))
    done = pins(tmp_path, "requirements.txt", "--json")
    assert json.loads(done.stdout)["findings"][0]["requirement"] == "sglang==0.5.8 ; platform_release == 'café'"


def test_a_coding_comment_naming_no_text_encoding_is_refused(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("# coding: klingon\nsglang==0.5.8\n")
    done = pins(tmp_path, "requirements.txt")
    assert done.returncode == EXIT_USAGE
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "requirements.txt: its coding comment names 'klingon'" in done.stderr


UTF_8_KINDS = {
    "Dockerfile": "FROM lmsysorg/sglang:v0.5.8\n",
    "pyproject.toml": '[project]\nname = "x"\ndependencies = ["sglang==0.5.8"]\n',
    "uv.lock": 'version = 1\n\n[[package]]\nname = "sglang"\nversion = "0.5.8"\n',
    "setup.cfg": "[options]\ninstall_requires = sglang==0.5.8\n",
    "setup.py": "from setuptools import setup\nsetup(install_requires=['sglang==0.5.8'])\n",
}


@pytest.mark.parametrize("name", list(UTF_8_KINDS))
def test_a_utf_8_byte_order_mark_is_dropped_from_every_kind(tmp_path: Path, name: str) -> None:
    """Docker and Python drop it; tomllib and setuptools' configparser refuse the file, so reading it is harmless."""
    (tmp_path / name).write_bytes(codecs.BOM_UTF8 + UTF_8_KINDS[name].encode())
    done = pins(tmp_path, name)
    assert done.returncode == EXIT_UNPATCHED and f"{name}:" in done.stdout and "sglang==0.5.8" in done.stdout, done
    assert ": unsupported — " in done.stdout


def test_setup_py_is_decoded_as_python_decodes_it(tmp_path: Path) -> None:
    """PEP 263: a coding comment in the first two lines names the encoding."""
    requirement = "sglang==0.5.8 ; platform_release == 'café'"
    text = f'# -*- coding: latin-1 -*-\nfrom setuptools import setup\nsetup(install_requires=["{requirement}"])\n'
    (tmp_path / "setup.py").write_bytes(text.encode("latin-1"))
    done = pins(tmp_path, "setup.py", "--json")
    assert json.loads(done.stdout)["findings"][0]["requirement"] == requirement


# Nesting deeper than Python's parsers follow: exit 2 and one line naming the file, never 70.

DEEP = 100_000
DEEP_FILES = {
    "arrays in pyproject.toml": (
        "pyproject.toml",
        '[project]\nname = "x"\ndependencies = ["sglang==0.5.21"]\n[tool.x]\ny = ' + "[" * DEEP + "]" * DEEP + "\n",
        "nested too deeply for Python's TOML reader",
    ),
    "inline tables in pyproject.toml": (
        "pyproject.toml",
        '[project]\nname = "x"\n[tool.x]\ny = ' + "{a = " * DEEP + "1" + "}" * DEEP + "\n",
        "nested too deeply for Python's TOML reader",
    ),
    "arrays in uv.lock": (
        "uv.lock",
        'version = 1\n[[package]]\nname = "sglang"\nversion = "0.5.21"\nx = ' + "[" * DEEP + "]" * DEEP + "\n",
        "nested too deeply for Python's TOML reader",
    ),
    "arrays in a TOML file named otherwise": (
        "deps.toml",
        "x = " + "[" * DEEP + "]" * DEEP + "\n",
        "nested too deeply for Python's TOML reader",
    ),
    "a chain of + in setup.py": (
        "setup.py",
        "from setuptools import setup\nsetup(install_requires=" + " + ".join(['"a"'] * DEEP) + ")\n",
        "nested too deeply for Python's parser",
    ),
    "a chain of unary minus in setup.py": (
        "setup.py",
        "from setuptools import setup\nx = " + "-" * DEEP + "1\nsetup(install_requires=['sglang==0.5.21'])\n",
        "nested too deeply for Python's parser",
    ),
    "a chain of + in a setup script named otherwise": (
        "build.py",
        "from setuptools import setup\nsetup(install_requires=" + " + ".join(['"a"'] * DEEP) + ")\n",
        "nested too deeply for Python's parser",
    ),
}


@pytest.mark.parametrize("shape", list(DEEP_FILES))
def test_nesting_too_deep_to_parse_is_exit_2_naming_the_file(tmp_path: Path, shape: str) -> None:
    name, text, reason = DEEP_FILES[shape]
    (tmp_path / name).write_text(text)
    done = pins(tmp_path, name)
    assert done.returncode == EXIT_USAGE, (done.returncode, done.stdout, done.stderr[-1000:])
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert f"{name}: {reason}" in done.stderr and "Traceback" not in done.stderr


def test_includes_chained_too_deep_to_follow_are_exit_2(tmp_path: Path) -> None:
    """pip follows -r recursively too, and fails on such a chain."""
    for number in range(1500):
        (tmp_path / f"requirements-{number}.txt").write_text(f"-r requirements-{number + 1}.txt\n")
    (tmp_path / "requirements-1500.txt").write_text("sglang==0.5.21\n")
    done = pins(tmp_path, "requirements-0.txt")
    assert done.returncode == EXIT_USAGE, (done.returncode, done.stdout, done.stderr[-1000:])
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "requirements-0.txt: its -r/-c includes nest too deeply" in done.stderr


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("project = 1\n", "`project`"),
        ('[project]\ndependencies = [1, "sglang==0.5.21"]\n', "`project.dependencies`"),
        ('[project]\ndependencies = "sglang==0.5.8"\n', "`project.dependencies`"),
        ("[project]\noptional-dependencies = 3\n", "`project.optional-dependencies`"),
        ("[project.optional-dependencies]\nserve = 3\n", "`project.optional-dependencies.serve`"),
        ("[tool.poetry]\ndependencies = 4\n", "`tool.poetry.dependencies`"),
        ("[tool.poetry.group]\nx = 1\n", "`tool.poetry.group.x`"),
        ("[tool.uv]\nsources = 3\n", "`tool.uv.sources`"),
        ("dependency-groups = 5\n", "`dependency-groups`"),
    ],
)
def test_a_pyproject_value_of_the_wrong_type_is_one_line_exit_2(tmp_path: Path, text: str, where: str) -> None:
    """pip and uv refuse these files; the hook names the key instead of crashing (exit 70 before)."""
    (tmp_path / "pyproject.toml").write_text(text)
    done = pins(tmp_path, "pyproject.toml")
    assert done.returncode == EXIT_USAGE, (done.returncode, done.stderr)
    assert f"pyproject.toml: {where} is " in done.stderr and "Traceback" not in done.stderr


def test_a_lock_file_whose_packages_are_not_an_array_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text("version = 1\npackage = 5\n")
    done = pins(tmp_path, "uv.lock")
    assert done.returncode == EXIT_USAGE and "uv.lock: `package` is int" in done.stderr, done.stderr
