"""pins.setup_files: setup.py read with ast (never run) and setup.cfg, each pin at its own line."""

from __future__ import annotations

from pathlib import Path

from eagle3_patch.pins import find_pins, judge
from eagle3_patch.pins.setup_files import setup_cfg_pins, setup_py_pins
from tests.conftest import FIXTURES

SETUPTOOLS = FIXTURES / "pins" / "setuptools"


def test_setup_py_install_requires_and_extras_require() -> None:
    findings = [judge(p) for p in find_pins(SETUPTOOLS / "setup.py")]
    assert [(f.pin.line, f.pin.text, f.pin.version, f.verdict, f.pin.source) for f in findings] == [
        # install_requires=REQUIRED + [...]: the list bound at module level, followed
        (7, "sglang[all]==0.5.21", "0.5.21", "patch", "setup.py"),
        # extras_require={...}
        (16, "sglang==0.5.10", "0.5.10", "unsupported", "setup.py"),
        (
            17,
            "sglang @ git+https://github.com/sgl-project/sglang.git@v0.5.16#subdirectory=python",
            "0.5.16",
            "patch",
            "setup.py",
        ),
    ]


def test_setup_cfg_install_requires_and_extras_require() -> None:
    findings = [judge(p) for p in find_pins(SETUPTOOLS / "setup.cfg")]
    assert [(f.pin.line, f.pin.version, f.verdict, f.pin.source) for f in findings] == [
        (9, "0.5.23", "native", "setup.cfg"),  # an indented continuation line, trailing comment dropped
        (12, "0.5.9", "unsupported", "setup.cfg"),  # [options.extras_require] legacy = ...
    ]


def test_setup_cfg_follows_file_references(tmp_path: Path) -> None:
    (tmp_path / "setup.cfg").write_text("[options]\ninstall_requires = file: requirements/base.txt\n")
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "base.txt").write_text("torch\nsglang==0.5.21\n")
    assert [(Path(p.path).name, p.line, p.version) for p in setup_cfg_pins(str(tmp_path / "setup.cfg"))] == [
        ("base.txt", 2, "0.5.21")
    ]


def test_setup_py_is_never_run(tmp_path: Path) -> None:
    witness = tmp_path / "ran"
    path = tmp_path / "setup.py"
    path.write_text(
        f"open({str(witness)!r}, 'w').close()\n"
        "from setuptools import setup\nsetup(install_requires=['sglang==0.5.21'])\n"
    )
    assert [(p.line, p.version) for p in setup_py_pins(str(path))] == [(3, "0.5.21")]
    assert not witness.exists()


def test_setup_py_other_keywords_and_broken_files_give_nothing(tmp_path: Path) -> None:
    path = tmp_path / "setup.py"
    path.write_text("from setuptools import setup\nsetup(name='sglang', tests_require=['sglang==0.5.10'])\n")
    assert setup_py_pins(str(path)) == []
    path.write_text("setup(install_requires=['sglang==0.5.21'\n")
    assert setup_py_pins(str(path)) == []


def test_setup_py_follows_names_through_a_dict_held_in_a_variable(tmp_path: Path) -> None:
    """``extras_require=extras`` whose values are lists bound above (verl's setup.py has this shape)."""
    path = tmp_path / "setup.py"
    path.write_text(
        "from setuptools import setup\n"
        "SGLANG_REQUIRES = [\n    'torch==2.9.1',\n    'sglang[srt,openai]==0.5.6',\n]\n"
        "extras_require = {'sglang': SGLANG_REQUIRES, 'test': ['pytest']}\n"
        "LOOP = LOOP\n"
        "setup(name='x', extras_require=extras_require, install_requires=LOOP)\n"
    )
    assert [(p.line, p.version) for p in setup_py_pins(str(path))] == [(4, "0.5.6")]
