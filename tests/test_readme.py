"""The README and docs/ stay true: the release matrix is the verified table, the test command is CI's, links resolve."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
DOCS = REPO / "docs"


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


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section, re.S)


def test_quick_start_is_two_setup_commands_and_the_test_command() -> None:
    commands = quick_start_commands()
    assert len(commands) == 3, commands
    assert "pip install --no-deps" in commands[0] and "sglang==" in commands[0]
    assert "eagle3-patch apply" in commands[0] and "eagle3-patch check" in commands[0]
    assert commands[1].endswith("python -m pytest") and commands[2] == "python -m pytest"


@pytest.mark.slow
def test_quick_start_patches_and_checks_a_real_release(tmp_path: Path) -> None:
    """The first set-up command, run as written in a copy of the project."""
    import subprocess

    from tests.conftest import copy_project

    project = copy_project(tmp_path / "clone")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "NO_COLOR")}
    completed = subprocess.run(
        ["bash", "-c", quick_start_commands()[0]], cwd=project, capture_output=True, text=True, env=env, check=False
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert "patched: qwen3_5.py: Qwen3_5ForCausalLM" in completed.stdout
    assert "patched: EAGLE-3 aux hidden-state capture is in place" in completed.stdout


def test_docs_list_every_cpu_workaround() -> None:
    """The runtime proof's workarounds are named in docs/runtime-proof.md, each one."""
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import cpu_workarounds
    finally:
        sys.path.pop(0)
    page = (DOCS / "runtime-proof.md").read_text(encoding="utf-8")
    heading = "### Workarounds: what SGLang needs on a CPU"
    assert heading in page, "docs/runtime-proof.md lost its workaround section"
    section = page.split(heading, 1)[1].split("\n## ", 1)[0]
    names = [w.__name__ for w in cpu_workarounds.RUNTIME_WORKAROUNDS]
    names += [*cpu_workarounds.EXCLUDED_REQUIREMENTS, *cpu_workarounds.ADDED_REQUIREMENTS, *cpu_workarounds.ENGINE_ENV]
    missing = [name for name in names if f"`{name}" not in section]
    assert not missing, f"docs/runtime-proof.md's workaround list lacks {missing}"


def test_runtime_results_table_is_kept() -> None:
    page = (DOCS / "runtime-proof.md").read_text(encoding="utf-8")
    table = re.search(r"<!-- runtime-results -->\n(.+?)\n<!-- /runtime-results -->", page, re.S)
    assert table, "docs/runtime-proof.md lost its marked results table"
    assert table.group(1).startswith("| sglang | target |"), table.group(1)[:200]


def test_readme_is_the_front_door() -> None:
    lines = len(README.splitlines())
    assert lines < 300, f"README.md has {lines} lines; move depth into docs/"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    pages = sorted(DOCS.glob("*.md"))
    assert pages, "docs/ has no pages"
    linked = {target.split("#", 1)[0] for target in relative_links(README)}
    unlinked = [page.name for page in pages if f"docs/{page.name}" not in linked]
    assert not unlinked, f"README.md does not link {unlinked}"
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert text.startswith("# "), f"docs/{page.name} does not start with a title"
        assert "../README.md" in relative_links(text), f"docs/{page.name} does not link back to the README"


def relative_links(text: str) -> list[str]:
    """Targets of the Markdown links in text that are not URLs or in-page anchors."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # links inside code blocks are not links
    targets = re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", text)
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t, re.I) and not t.startswith("#")]


@pytest.mark.parametrize("page", ["README.md", *sorted(f"docs/{p.name}" for p in DOCS.glob("*.md"))])
def test_relative_links_point_to_existing_files(page: str) -> None:
    path = REPO / page
    text = path.read_text(encoding="utf-8")
    broken = [t for t in relative_links(text) if not (path.parent / t.split("#", 1)[0]).exists()]
    assert not broken, f"{page} links to missing files: {broken}"
