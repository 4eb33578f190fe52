"""Every real sglang release from 0.5.8 to the newest on the index, through the CLI.

Wheels are downloaded with ``pip download --no-deps`` into the cache named by
$EAGLE3_PATCH_WHEEL_CACHE (default ~/.cache/eagle3-patch/wheels) and unpacked
into a temp site-packages. Verdicts are checked three ways: the facts file's
release matrix (expected_verdict), anchors/verified.toml, and the classifier.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from eagle3_patch.errors import EXIT_OK, EXIT_UNPATCHED, EXIT_UNSUPPORTED
from eagle3_patch.ledger import BACKUP_SUFFIX, LEDGER_NAME, sha256_hex
from eagle3_patch.verified import VerifiedRelease, load_verified
from tests.conftest import INDEX_PROBLEM, RELEASES, expected_verdict, run_json, snapshot, warn_unlisted

pytestmark = pytest.mark.corpus

_STATE_FOR_VERDICT = {"patch": "unpatched", "native": "native", "unsupported": "unsupported"}


def verified_row(version: str) -> VerifiedRelease | None:
    return next((r for r in load_verified() if r.version == version), None)


def test_index_lists_every_release_in_the_table() -> None:
    assert not INDEX_PROBLEM, INDEX_PROBLEM
    missing = {r.version for r in load_verified()} - set(RELEASES)
    assert not missing, f"releases in anchors/verified.toml but not on the index: {sorted(missing)}"


def test_table_agrees_with_the_release_matrix() -> None:
    for row in load_verified():
        assert row.verdict == expected_verdict(row.version), row.version


def test_release_round_trip(release: str, release_site: Callable[[str], Path], runner: CliRunner) -> None:
    site = release_site(release)
    models = site / "sglang" / "srt" / "models"
    root = ["--sglang-root", str(site)]
    expected = expected_verdict(release)
    row = verified_row(release)
    if row is None:
        warn_unlisted(release, expected)
    else:
        assert row.verdict == expected
        for file in row.files:
            assert sha256_hex((models / file.name).read_bytes()) == file.pristine_sha256, file.name
    pristine = snapshot(site)

    code, status = run_json(runner, "status", *root)
    assert status["state"] == _STATE_FOR_VERDICT[expected], status
    assert status["sglang"]["version"] == release
    assert status["sglang"]["layout"] == "wheel"

    code, applied = run_json(runner, "apply", *root)
    if expected == "unsupported":
        assert code == EXIT_UNSUPPORTED, applied
        assert snapshot(site) == pristine
        assert run_json(runner, "check", *root)[0] == EXIT_UNSUPPORTED
        return
    assert code == EXIT_OK, applied
    if expected == "native":
        assert applied["state"] == "native"
        assert snapshot(site) == pristine
        assert run_json(runner, "check", *root)[0] == EXIT_OK
        assert run_json(runner, "revert", *root)[0] == EXIT_OK
        assert snapshot(site) == pristine
        return

    assert applied["state"] == "patched"
    changed = {f["name"] for f in applied["files"] if f["changed"]}
    expected_files = {"qwen3_5.py"} | ({"qwen3_5_text.py"} if (models / "qwen3_5_text.py").exists() else set())
    assert changed == expected_files
    if row is not None:
        assert {f.name for f in row.files if f.patched_sha256} == expected_files
        for file in row.files:
            assert sha256_hex((models / file.name).read_bytes()) == file.patched_sha256, file.name
    for name in expected_files:
        assert (models / (name + BACKUP_SUFFIX)).read_bytes() == pristine[f"sglang/srt/models/{name}"][0]
    assert run_json(runner, "check", *root)[0] == EXIT_OK

    patched = snapshot(site)
    code, again = run_json(runner, "apply", *root)
    assert code == EXIT_OK and not any(f["changed"] for f in again["files"])
    assert snapshot(site) == patched  # bytes and mtimes

    code, reverted = run_json(runner, "revert", *root)
    assert code == EXIT_OK and reverted["state"] == "unpatched"
    after = snapshot(site)
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in pristine.items()}
    assert not list(models.glob(f"*{BACKUP_SUFFIX}")) and not (models / LEDGER_NAME).exists()
    assert run_json(runner, "check", *root)[0] == EXIT_UNPATCHED
