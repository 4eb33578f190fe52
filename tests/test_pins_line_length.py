"""pins on one 1 MB pathological line of each shape: it must answer, never hang.

Only a generous timeout guards here (no timing assertion: the machine may be
loaded); ``benchmarks/pins_line_length.py`` measures that the time is linear.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from eagle3_patch.errors import EXIT_INTERNAL
from tests.test_pins_inputs import pins

MB = 1024 * 1024
#: Seconds one `pins` run may take: linear reading of 1 MB takes well under one on a loaded machine.
HANG = 60


def line(prefix: str, fragment: str, suffix: str = "\n") -> str:
    """``prefix + fragment * n + suffix``, about 1 MB."""
    return prefix + fragment * ((MB - len(prefix) - len(suffix)) // len(fragment)) + suffix


SHAPES = {
    "git+ run": ("requirements.txt", line("", "git+")),
    "git+/sglang run": ("requirements.txt", line("sglang @ ", "git+/sglang")),
    "sglang run": ("requirements.txt", line("", "sglang")),
    "== run": ("requirements.txt", line("sglang", "==")),
    "@ run": ("requirements.txt", line("sglang ", "@")),
    "spaces": ("requirements.txt", line("sglang", " ", "x\n")),
    "marker spaces": ("requirements.txt", line("sglang==0.5.8 ; python_version", " ", "x\n")),
    "continuations": ("requirements.txt", line("sglang", " \\\n", "==0.5.8\n")),
    "unknown name, spaces": ("deps.list", line("sglang", " ", "x\n")),
    "RUN continuations": ("Dockerfile", line("FROM python:3.11\nRUN pip install", " a \\\n", " sglang==0.5.8\n")),
    "RUN ${ defaults": ("Dockerfile", line("FROM python:3.11\nRUN pip install ", "${a:-")),
    "RUN $ names": ("Dockerfile", line("ARG a=sglang\nFROM python:3.11\nRUN pip install ", "$a")),
    "RUN long word": ("Dockerfile", line('FROM python:3.11\nRUN pip install "', "a")),
    "RUN git+ run": ("Dockerfile", line("FROM python:3.11\nRUN pip install ", "git+")),
    "RUN checkout installs": (
        "Dockerfile",
        line("FROM python:3.11\nRUN git clone -b v0.5.8 https://x/sglang && pip install", " python"),
    ),
    "pyproject git+ run": ("pyproject.toml", line('[project]\nname = "x"\ndependencies = ["', "git+", '"]\n')),
    "pyproject many pins on a line": ("pyproject.toml", line("[project]\ndependencies = [", '"sglang",', "]\n")),
    "setup.cfg option spaces": ("setup.cfg", line("[options]\na", " ", "x\n")),
    "setup.cfg value spaces": ("setup.cfg", line("[options]\ninstall_requires = sglang", " ", "x\n")),
    "setup.py git+ run": ("setup.py", line('from setuptools import setup\nsetup(install_requires=["', "git+", '"])\n')),
}


def run_pins(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return pins(folder, *args, timeout=HANG)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_1_mb_pathological_line_gets_an_answer(tmp_path: Path, shape: str) -> None:
    name, text = SHAPES[shape]
    (tmp_path / name).write_text(text, encoding="utf-8")
    done = run_pins(tmp_path, name)
    assert done.returncode in (0, 1, 2), done.stderr[-2000:]
    assert done.returncode != EXIT_INTERNAL and "Traceback" not in done.stderr


def test_a_variable_doubled_on_every_line_stops_growing(tmp_path: Path) -> None:
    """``ENV A=$A$A`` forty times would be a value of terabytes; past the budget a reference stays as written."""
    lines = ["ARG A=sglang", *["ENV A=$A$A"] * 40, "FROM python:3.11", "RUN pip install ${A}==0.5.8"]
    (tmp_path / "Dockerfile").write_text("\n".join(lines) + "\n")
    done = run_pins(tmp_path, "Dockerfile")
    assert done.returncode in (0, 1), done.stderr[-2000:]


def test_setup_py_lists_of_names_of_lists_cost_their_size_not_its_product(tmp_path: Path) -> None:
    """Three lists of 400 names each (9 KB) were 64 million strings to visit; each name is now followed once."""
    names = ", ".join(["B"] * 400), ", ".join(["C"] * 400), ", ".join(['"x"'] * 399 + ['"sglang==0.5.10"'])
    source = f"A = [{names[0]}]\nB = [{names[1]}]\nC = [{names[2]}]\nsetup(install_requires=A)\n"
    (tmp_path / "setup.py").write_text(source)
    done = run_pins(tmp_path, "setup.py")
    assert done.returncode == 1 and "setup.py:3: sglang==0.5.10: unsupported" in done.stdout


def test_setup_py_a_long_chain_of_additions_is_read(tmp_path: Path) -> None:
    """2000 lists added: ast reads it, and following it no longer overflows Python's recursion limit (exit 70)."""
    chain = " + ".join(['["x"]'] * 1999 + ['["sglang==0.5.10"]'])
    (tmp_path / "setup.py").write_text(f"from setuptools import setup\nsetup(install_requires={chain})\n")
    done = run_pins(tmp_path, "setup.py")
    assert done.returncode == 1 and "setup.py:2: sglang==0.5.10: unsupported" in done.stdout


# The patterns that were replaced by plain scanning, kept here as the reference for what they matched.
OLD_GIT_URL = r"(?i)git\+\S*?/sglang(?:\.git)?/?(?:@(?P<ref>[^#&\s]+))?(?=$|[#&\s])"


def test_git_url_scanning_agrees_with_the_pattern_it_replaced() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from eagle3_patch.pins.requirement import git_reference

    pieces = st.sampled_from(
        ["git+", "GIT+", "https://github.com/sgl-project", "/sglang", "/SGLang", ".git", ".GIT", "/", "@", "#",
         "&", " ", "\t", "\n", "v0.5.8", "main", "x", "sglang", "git", "+", "#subdirectory=python", "&egg=sglang"]
    )  # fmt: skip

    @settings(max_examples=1500, deadline=None, database=None)
    @given(st.lists(pieces, max_size=10).map("".join))
    def agree(text: str) -> None:
        old = re.search(OLD_GIT_URL, text)
        ours = git_reference(text)
        assert (None if ours is None else ours.ref) == (None if old is None else old["ref"] or "")

    agree()


def test_word_splitting_agrees_with_shlex() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from eagle3_patch.pins.dockerfile import split_words

    pieces = st.sampled_from(["a", "b c", " ", "\t", "\n", "\r", "'", '"', "\\", "\\\\", '\\"', "x'y z'", '"$A"', "#"])

    @settings(max_examples=1500, deadline=None, database=None)
    @given(st.lists(pieces, max_size=10).map("".join))
    def agree(text: str) -> None:
        try:
            expected: list[str] | None = shlex.split(text)
        except ValueError:
            expected = None
        try:
            ours: list[str] | None = split_words(text)
        except ValueError:
            ours = None
        assert ours == expected

    agree()
