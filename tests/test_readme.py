"""The README stays true: its release matrix is the verified table, its test command is CI's."""

from __future__ import annotations

import re

from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_release_matrix_matches_anchors() -> None:
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from readme_matrix import END, START, matrix
    finally:
        sys.path.pop(0)
    assert START in README and END in README, "README lost its generated matrix section"
    section = README.split(START, 1)[1].split(END, 1)[0].strip()
    assert section == matrix(), "run: python scripts/readme_matrix.py --write"


def test_ci_runs_the_readme_test_command() -> None:
    command = re.search(r"<!-- test-command -->\s*```(?:sh|bash)?\n(.+?)\n```", README, re.S)
    assert command, "README lost its marked test command"
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert command.group(1).strip() in ci


def test_every_exit_code_is_documented() -> None:
    from eagle3_patch import errors

    codes = {v for k, v in vars(errors).items() if k.startswith("EXIT_")}
    for code in codes:
        assert re.search(rf"^\| {code} \|", README, re.M), f"exit code {code} missing from the README table"
