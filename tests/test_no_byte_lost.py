"""Reliability round 3: edits, races, refused links, upgrades and leftovers never cost a byte the user had.

One test (or a parametrised family) per way a tester broke the invariant on
2026-12-03 (issue 20, items 1-3, 5-9, 11 and 12; item 4 is in test_overlay.py,
item 10 in test_odd_files.py). Each runs the CLI on a real release's files where
the shape matters (pip's RECORD, a hotfixed original) and on fixtures where it
does not.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from eagle3_patch import write
from eagle3_patch.commands import _install
from eagle3_patch.errors import EXIT_CANNOT_WRITE, EXIT_DRIFT, EXIT_OK, EXIT_UNPATCHED
from eagle3_patch.fetch import extract_release, fetch_wheel
from eagle3_patch.ledger import BACKUP_SUFFIX, EDITED_SUFFIX, KEPT_SUFFIX, LEDGER_NAME
from eagle3_patch.marker import MARKER
from tests.conftest import MakeInstall, run_cli, run_json, snapshot

HOTFIX = b"\n\ndef _local_hotfix():\n    return 'a fix only this deployment has'\n"


def models(site: Path) -> Path:
    return site / "sglang" / "srt" / "models"


@pytest.fixture
def hotfixed(release_site: Callable[[str], Path]) -> tuple[Path, bytes, bytes]:
    """0.5.21 whose qwen3_5.py carries a local hotfix, patched: the site, the hotfixed original, the patch."""
    site = release_site("0.5.21")
    target = models(site) / "qwen3_5.py"
    target.write_bytes(target.read_bytes() + HOTFIX)
    original = target.read_bytes()
    result = CliRunner().invoke(_cli(), ["apply", "--sglang-root", str(site)])
    assert result.exit_code == EXIT_OK, result.output
    return site, original, target.read_bytes()


def _cli() -> object:
    from eagle3_patch.cli import cli

    return cli


def _without_marker_lines(data: bytes) -> bytes:
    return b"".join(line for line in data.splitlines(keepends=True) if MARKER.encode() not in line)


def _methods_commented_out(data: bytes) -> bytes:
    """Every line of our methods (from the marker comment to the next blank line) turned into a comment."""
    out, inside = [], False
    for line in data.splitlines(keepends=True):
        if MARKER.encode() in line:
            inside = True
        elif inside and not line.strip():
            inside = False
        out.append(b"# " + line if inside and line.strip() else line)
    return b"".join(out)


def _half_saved(data: bytes) -> bytes:
    return data[: len(data) // 2] + b"    def broken(:\n"


EDITS = {
    "marker-lines-deleted": _without_marker_lines,
    "methods-commented-out": _methods_commented_out,
    "half-saved-unparsable": _half_saved,
}


# --- 1 and 5: an edited patch never loses the original ---


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edited_patch_is_drifted_and_keeps_the_original(
    runner: CliRunner, hotfixed: tuple[Path, bytes, bytes], edit: str
) -> None:
    """Whatever the edit makes the blocks look like, the file is drifted while the ledger's backup exists."""
    site, original, patched = hotfixed
    target = models(site) / "qwen3_5.py"
    edited = EDITS[edit](patched)
    target.write_bytes(edited)
    for command in ("check", "status"):
        code, payload = run_json(runner, command, "--sglang-root", str(site))
        assert code == EXIT_DRIFT and payload["state"] == "drifted", (command, payload)
    before = snapshot(site)
    for command in ("apply", "revert"):
        code, payload = run_json(runner, command, "--sglang-root", str(site))
        assert code == EXIT_DRIFT, (command, payload)
        assert snapshot(site) == before, f"{command} refused, so nothing changed"
    code, payload = run_json(runner, "revert", "--force", "--sglang-root", str(site))
    assert code == EXIT_OK, payload
    assert target.read_bytes() == original, "the hotfixed original is back"
    assert (models(site) / ("qwen3_5.py" + EDITED_SUFFIX)).read_bytes() == edited, "and the edit is kept"
    assert b"[EAGLE3-PATCH]" not in (models(site) / "qwen3_5_text.py").read_bytes()


def test_a_second_apply_never_overwrites_the_backup_of_an_edited_patch(
    runner: CliRunner, hotfixed: tuple[Path, bytes, bytes]
) -> None:
    """The tester's 1b: methods commented out, apply again, then revert said "restored" with the wrong bytes."""
    site, original, patched = hotfixed
    target = models(site) / "qwen3_5.py"
    target.write_bytes(_methods_commented_out(patched))
    assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_DRIFT
    assert (models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)).read_bytes() == original
    reverted = run_cli(runner, "revert", "--force", "--sglang-root", str(site))
    assert reverted.exit_code == EXIT_OK
    assert "restored: qwen3_5.py has its original bytes again" in reverted.stdout
    assert target.read_bytes() == original, "every 'restored' line is true of the disk"


def test_a_file_saved_under_our_backup_name_is_kept_not_deleted(
    runner: CliRunner, hotfixed: tuple[Path, bytes, bytes]
) -> None:
    """revert restores from our blocks removed and would delete the backup: its other bytes are kept instead."""
    site, original, _ = hotfixed
    backup = models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)
    notes = b"# the user's own notes, saved under the backup's name\n"
    backup.write_bytes(notes)
    code, payload = run_json(runner, "revert", "--sglang-root", str(site))
    assert code == EXIT_OK, payload
    assert (models(site) / "qwen3_5.py").read_bytes() == original
    kept = models(site) / ("qwen3_5.py" + KEPT_SUFFIX)
    assert payload["kept"] == {str(backup): str(kept)} and kept.read_bytes() == notes


# --- 2: a concurrent edit is never lost, and never exit 70 ---


def test_an_edit_landing_in_the_old_file_after_the_hash_is_put_back(
    runner: CliRunner, release_site: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An append that lands in the displaced file between the hash and the rename (the hard-linked backup)."""
    site = release_site("0.5.21")
    target = models(site) / "qwen3_5.py"
    pristine = target.read_bytes()
    appended = b"\n# appended by another process\n"
    real_hash = write.sha256_hex
    landed = []

    def hash_then_edit(data: bytes) -> str:
        digest = real_hash(data)
        if not landed and data == pristine and (models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)).exists():
            with open(target, "ab") as handle:  # the open file: the inode about to be displaced
                handle.write(appended)
            landed.append(True)
        return digest

    monkeypatch.setattr(write, "sha256_hex", hash_then_edit)
    code, payload = run_json(runner, "apply", "--sglang-root", str(site))
    monkeypatch.undo()
    assert landed, "the edit was injected"
    assert code == EXIT_DRIFT, payload
    assert target.read_bytes() == pristine + appended, "the edit is in place"
    assert not (models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)).exists(), "this run's records were rolled back"
    assert not (models(site) / LEDGER_NAME).exists()


def test_an_edit_right_after_the_write_is_drift_not_an_internal_error(
    runner: CliRunner, release_site: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = release_site("0.5.21")
    target = models(site) / "qwen3_5.py"
    pristine = target.read_bytes()
    real_classify = _install.classify_install

    def edit_then_classify(*args: object, **kwargs: object) -> object:
        with open(target, "ab") as handle:
            handle.write(b"\n# edited the moment after\n")
        return real_classify(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_install, "classify_install", edit_then_classify)
    code, payload = run_json(runner, "apply", "--sglang-root", str(site))
    monkeypatch.undo()
    assert code == EXIT_DRIFT, payload
    assert "right after eagle3-patch wrote it" in payload["error"]
    code, payload = run_json(runner, "revert", "--force", "--sglang-root", str(site))
    assert code == EXIT_OK, payload
    assert target.read_bytes() == pristine


# --- 3: a copy wherever a link is refused ---


@pytest.mark.parametrize(
    "error",
    [errno.EPERM, errno.EACCES, errno.EXDEV, errno.EMLINK, errno.ENOTSUP],
    ids=["EPERM", "EACCES", "EXDEV", "EMLINK", "ENOTSUP"],
)
def test_revert_copies_where_the_backup_cannot_be_linked_back(
    runner: CliRunner, hotfixed: tuple[Path, bytes, bytes], monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    """exFAT (no links), protected_hardlinks (another user's backup: EPERM), an immutable backup."""
    site, original, _ = hotfixed

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(os, "link", refuse)
    code, payload = run_json(runner, "revert", "--sglang-root", str(site))
    assert code == EXIT_OK, payload
    assert (models(site) / "qwen3_5.py").read_bytes() == original
    assert not (models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)).exists()


def test_a_symlinked_target_comes_back_as_a_copy_where_links_are_refused(
    runner: CliRunner, make_install: MakeInstall, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_install("capture_no_hook", "text_wrapper", version="0.5.21")
    cache = tmp_path / "cache" / "qwen3_5.py"
    cache.parent.mkdir()
    target = models(site) / "qwen3_5.py"
    shutil.move(target, cache)
    target.symlink_to(cache)
    assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "symlink", refuse)
    monkeypatch.setattr(os, "link", refuse)
    code, payload = run_json(runner, "revert", "--sglang-root", str(site))
    assert code == EXIT_OK, payload
    assert target.read_bytes() == cache.read_bytes(), "the original's bytes, as a copy"


# --- 6: earlier versions' leftovers ---


def test_an_older_template_patch_edited_since_still_reverts_to_the_hotfix(
    runner: CliRunner, hotfixed: tuple[Path, bytes, bytes]
) -> None:
    """Blocks of an older template (v1) on a hotfixed original, edited since: the ledger's backup is trusted."""
    site, original, patched = hotfixed
    target = models(site) / "qwen3_5.py"
    older = patched.replace(b"decoder-v2", b"decoder-v1").replace(b"wrapper-v2", b"wrapper-v1")
    assert older != patched
    target.write_bytes(older)
    ledger_path = models(site) / LEDGER_NAME
    ledger = json.loads(ledger_path.read_text())
    entry = ledger["files"]["qwen3_5.py"]
    entry["patched_sha256"] = hashlib.sha256(older).hexdigest()
    entry["classes"] = {k: v.replace("-v2", "-v1") for k, v in entry["classes"].items()}
    ledger_path.write_text(json.dumps(ledger))
    assert run_json(runner, "check", "--sglang-root", str(site))[0] == EXIT_UNPATCHED, "older blocks: patched-old"
    edited = older + b"\n# edited after the older eagle3-patch wrote it\n"
    target.write_bytes(edited)
    code, payload = run_json(runner, "revert", "--force", "--sglang-root", str(site))
    assert code == EXIT_OK, payload
    assert target.read_bytes() == original, "the hotfix is back"
    assert (models(site) / ("qwen3_5.py" + EDITED_SUFFIX)).read_bytes() == edited


@pytest.mark.parametrize("command", ["apply", "revert"])
def test_an_earlier_versions_lock_in_the_models_folder_is_swept(
    runner: CliRunner, release_site: Callable[[str], Path], command: str
) -> None:
    """It was in no RECORD, so pip uninstall left sglang/ behind as a namespace package."""
    site = release_site("0.5.21")
    if command == "revert":
        assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    old_lock = models(site) / ".eagle3-patch.lock"
    old_lock.write_bytes(b"")
    assert run_cli(runner, command, "--sglang-root", str(site)).exit_code == EXIT_OK
    assert not old_lock.exists()


# --- 7: two dist-infos after pip install --target --upgrade ---


def test_an_upgrade_that_left_two_dist_infos_reads_as_the_installed_release(
    runner: CliRunner, release_site: Callable[[str], Path]
) -> None:
    """pip install --target D --upgrade replaces sglang/ but keeps the old dist-info beside the new one."""
    site = release_site("0.5.16")
    shutil.rmtree(site / "sglang")
    extract_release(fetch_wheel("0.5.21"), site)
    assert (site / "sglang-0.5.16.dist-info").is_dir() and (site / "sglang-0.5.21.dist-info").is_dir()
    stale_record = (site / "sglang-0.5.16.dist-info" / "RECORD").read_bytes()
    code, payload = run_json(runner, "check", "--sglang-root", str(site))
    assert payload["sglang"]["version"] == "0.5.21", payload
    code, payload = run_json(runner, "apply", "--sglang-root", str(site))
    assert code == EXIT_OK, payload
    assert (site / "sglang-0.5.16.dist-info" / "RECORD").read_bytes() == stale_record, "the stale RECORD is not ours"
    assert LEDGER_NAME.encode() in (site / "sglang-0.5.21.dist-info" / "RECORD").read_bytes()
    ledger = json.loads((models(site) / LEDGER_NAME).read_text())
    assert ledger["sglang_version"] == "0.5.21"


def test_two_dist_infos_neither_matching_are_refused_naming_both(
    runner: CliRunner, release_site: Callable[[str], Path]
) -> None:
    site = release_site("0.5.21")
    twin = site / "sglang-0.5.16.dist-info"
    shutil.copytree(site / "sglang-0.5.21.dist-info", twin)
    before = snapshot(site)
    code, payload = run_json(runner, "apply", "--sglang-root", str(site))
    assert code == 3, payload
    assert "sglang-0.5.16.dist-info and sglang-0.5.21.dist-info" in payload["error"]
    assert snapshot(site) == before


# --- 8: temp files a killed run left in the dist-info ---


@pytest.mark.parametrize("command", ["apply", "revert"])
def test_a_record_temp_file_left_by_a_kill_is_swept(
    runner: CliRunner, release_site: Callable[[str], Path], command: str
) -> None:
    site = release_site("0.5.21")
    assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    dist_info = site / "sglang-0.5.21.dist-info"
    orphan = dist_info / f".RECORD.k1ll3d{write.TEMP_SUFFIX}"
    orphan.write_bytes((dist_info / "RECORD").read_bytes())
    assert run_cli(runner, command, "--sglang-root", str(site)).exit_code == EXIT_OK
    assert not orphan.exists()


# --- 9: bytecode under PYTHONPYCACHEPREFIX ---


def test_stale_bytecode_under_the_pycache_prefix_is_removed(
    runner: CliRunner, release_site: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = release_site("0.5.21")
    prefix = tmp_path / "pycache-prefix"
    monkeypatch.setattr(sys, "pycache_prefix", str(prefix))
    mirrored = prefix / models(site).resolve().relative_to("/")
    mirrored.mkdir(parents=True)
    stale = mirrored / f"qwen3_5.{sys.implementation.cache_tag}.pyc"
    stale.write_bytes(b"stale bytecode")
    assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert not stale.exists()
    stale.write_bytes(b"stale bytecode of the patch")
    assert run_cli(runner, "revert", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert not stale.exists()


def test_the_pycache_prefix_of_another_interpreter_is_the_one_used(
    release_site: Callable[[str], Path], tmp_path: Path
) -> None:
    """--python PY: the probe reports PY's sys.pycache_prefix, and that is where its bytecode is removed."""
    site = release_site("0.5.21")
    prefix = tmp_path / "prefix"
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONPYCACHEPREFIX": str(prefix)}
    subprocess.run(
        [sys.executable, "-c", f"import py_compile; py_compile.compile({str(models(site) / 'qwen3_5.py')!r})"],
        env=env,
        capture_output=True,
        check=True,
    )
    compiled = list(prefix.rglob("qwen3_5.*.pyc"))
    assert compiled, "Python wrote its bytecode under the prefix"
    repo = Path(__file__).resolve().parent.parent
    applied = subprocess.run(
        [sys.executable, "-m", "eagle3_patch", "apply", "--python", sys.executable],
        env={**env, "PYTHONPATH": f"{site}{os.pathsep}{repo}"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert applied.returncode == EXIT_OK, applied.stderr
    assert not any(path.exists() for path in compiled)


# --- 11: a folder where a record goes ---


@pytest.mark.parametrize("where", ["ledger", "backup"])
@pytest.mark.parametrize("command", ["apply", "revert"])
def test_a_folder_where_a_record_goes_is_refused_before_any_change(
    runner: CliRunner, release_site: Callable[[str], Path], where: str, command: str
) -> None:
    site = release_site("0.5.21")
    if command == "revert":
        assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    record = models(site) / (LEDGER_NAME if where == "ledger" else "qwen3_5_text.py" + BACKUP_SUFFIX)
    if record.exists():
        record.unlink()
    record.mkdir()
    (record / "someone's file").write_bytes(b"not ours\n")
    before = snapshot(site)
    code, payload = run_json(runner, command, "--sglang-root", str(site))
    assert code == EXIT_CANNOT_WRITE, payload
    assert f"{record}: is a folder where eagle3-patch keeps its" in payload["error"]
    assert "nothing was changed" in payload["error"]
    assert snapshot(site) == before, "and that is true"


# --- 12: RECORD byte for byte, whatever its newlines ---


@pytest.mark.parametrize(
    "shape",
    ["lf", "lf-no-final", "crlf", "crlf-no-final", "cr", "mixed"],
)
def test_record_is_byte_identical_after_revert_for_every_newline_shape(
    runner: CliRunner, release_site: Callable[[str], Path], shape: str
) -> None:
    site = release_site("0.5.21")
    record = site / "sglang-0.5.21.dist-info" / "RECORD"
    lines = record.read_bytes().splitlines()
    ending = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}.get(shape.split("-")[0], b"\n")
    data = b"".join(line + ending for line in lines)
    if shape == "mixed":
        data = b"".join(line + (b"\r\n" if i % 2 else b"\n") for i, line in enumerate(lines))
    if shape.endswith("no-final"):
        data = data[: -len(ending)]
    record.write_bytes(data)
    assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert record.read_bytes() != data, "our files are listed"
    assert run_cli(runner, "revert", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert record.read_bytes() == data


def test_protected_hard_links_fall_back_to_a_copy_for_real(make_install: MakeInstall) -> None:
    """fs.protected_hardlinks=1 (the default): root applied on nobody's install whose files are root's, and
    nobody, the folders' owner, reverts; linking root's backup back is EPERM, so the original is copied."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another user")
    if Path("/proc/sys/fs/protected_hardlinks").read_text().strip() != "1":
        pytest.skip("fs.protected_hardlinks is off here: every link is allowed")
    import pwd
    import tempfile

    from tests.conftest import REPO

    nobody = pwd.getpwnam("nobody")
    shared = Path(tempfile.mkdtemp(prefix="eagle3-patch-protected-", dir="/tmp"))  # traversable by nobody
    try:
        shared.chmod(0o755)
        site = shutil.copytree(make_install("capture_no_hook", "text_wrapper", version="0.5.21"), shared / "site")
        pristine = {p.name: p.read_bytes() for p in models(site).glob("*.py")}
        for path in [site, *site.rglob("*")]:
            if path.is_dir():
                os.chown(path, nobody.pw_uid, nobody.pw_gid)  # nobody's folders, root's files (mode 0644)
        launcher = [sys.executable, str(REPO / "tests" / "fault_injection.py")]
        env = {**os.environ, "HOME": str(shared), "PYTHONPATH": str(REPO)}  # this checkout's code, as nobody too
        applied = subprocess.run(
            [*launcher, "apply", "--sglang-root", str(site)], capture_output=True, timeout=120, env=env, check=False
        )
        assert applied.returncode == EXIT_OK, applied.stderr
        backup = models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)
        assert backup.stat().st_uid == 0, "the backup is root's file: nobody may not link it"
        as_nobody = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
        reverted = subprocess.run(
            [*as_nobody, *launcher, "revert", "--sglang-root", str(site), "--json"],
            capture_output=True,
            text=True,
            env=env,
            cwd=shared,
            timeout=120,
            check=False,
        )
        assert reverted.returncode == EXIT_OK, reverted.stdout + reverted.stderr
        assert {p.name: p.read_bytes() for p in models(site).glob("*.py")} == pristine
    finally:
        shutil.rmtree(shared, ignore_errors=True)


# --- the model card's one-shot script ---


def test_revert_restores_a_file_the_one_shot_script_patched(
    runner: CliRunner, release_site: Callable[[str], Path]
) -> None:
    """Its blocks sit beside a class it leaves unpatched, so the file reads as unpatched: revert said
    "nothing to revert" and left the blocks. The script's own .eagle3-bak is vouched for by pip's RECORD."""
    from tests.stateful_walk import one_shot_script

    site = release_site("0.5.16")
    target = models(site) / "qwen3_5.py"
    pristine = target.read_bytes()
    assert one_shot_script(models(site)).startswith("patched")
    scripted = target.read_bytes()
    code, payload = run_json(runner, "revert", "--sglang-root", str(site))
    assert code == EXIT_OK, payload
    assert target.read_bytes() == pristine
    assert (models(site) / ("qwen3_5.py" + EDITED_SUFFIX)).read_bytes() == scripted, "not ours as recorded: kept"


def test_apply_keeps_an_edit_inside_the_one_shot_scripts_block(
    runner: CliRunner, release_site: Callable[[str], Path]
) -> None:
    """apply refreshes the script's blocks in place; the file as it was (with the edit) is kept first."""
    from tests.stateful_walk import one_shot_script

    site = release_site("0.5.21")
    target = models(site) / "qwen3_5.py"
    pristine = target.read_bytes()
    one_shot_script(models(site))
    edited = target.read_bytes().replace(
        b"self.capture_aux_hidden_states = True", b"self.capture_aux_hidden_states = 1"
    )
    assert edited != target.read_bytes()
    target.write_bytes(edited)
    applied = run_cli(runner, "apply", "--sglang-root", str(site))
    assert applied.exit_code == EXIT_OK, applied.output
    assert "kept: qwen3_5.py as qwen3_5.py.eagle3-edited" in applied.stdout
    assert (models(site) / ("qwen3_5.py" + EDITED_SUFFIX)).read_bytes() == edited
    assert run_cli(runner, "revert", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert target.read_bytes() == pristine


def test_apply_lists_our_files_again_after_a_killed_revert_took_them_out_of_record(
    runner: CliRunner, release_site: Callable[[str], Path]
) -> None:
    """A revert killed after rewriting RECORD: the install is still patched, and apply said "nothing to do"
    while pip uninstall would now leave the ledger, backups and lock behind."""
    site = release_site("0.5.16")
    record = site / "sglang-0.5.16.dist-info" / "RECORD"
    installer = record.read_bytes()
    assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    listed = record.read_bytes()
    record.write_bytes(installer)  # what the killed revert left
    assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert record.read_bytes() == listed


def test_a_backup_holding_another_releases_file_is_not_this_files_original(
    runner: CliRunner, release_site: Callable[[str], Path]
) -> None:
    """The one-shot script's backup left from 0.5.21, a pip downgrade to 0.5.16, the script again (keeping that
    backup): the backup is a true release file, but of another release; revert gave 0.5.21's file to 0.5.16."""
    import zipfile

    from tests.stateful_walk import one_shot_script

    site = release_site("0.5.16")
    target = models(site) / "qwen3_5.py"
    pristine = target.read_bytes()
    with zipfile.ZipFile(fetch_wheel("0.5.21")) as wheel:
        (models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)).write_bytes(wheel.read("sglang/srt/models/qwen3_5.py"))
    assert one_shot_script(models(site), keep_existing_backup=True).startswith("patched")
    code, payload = run_json(runner, "revert", "--sglang-root", str(site))
    assert code == EXIT_OK, payload
    assert target.read_bytes() == pristine, "0.5.16's own original, not 0.5.21's file"


def test_apply_finishes_a_revert_killed_before_it_removed_the_ledger(
    runner: CliRunner, release_site: Callable[[str], Path]
) -> None:
    """Files restored, RECORD unlisted, the ledger and a backup still there (killed after the replace):
    apply on the now-native files said "nothing to do" with the ledger in no RECORD (found by the walk)."""
    site = release_site("0.5.23")
    record = site / "sglang-0.5.23.dist-info" / "RECORD"
    installer = record.read_bytes()
    target = models(site) / "qwen3_5.py"
    (models(site) / LEDGER_NAME).write_text(
        json.dumps(
            {
                "format": 1,
                "tool_version": "0.1.0",
                "sglang_version": "0.5.23",
                "targets_sha256": "",
                "untouched": {},
                "files": {
                    "qwen3_5.py": {
                        "pristine_sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
                        "patched_sha256": "0" * 64,
                        "classes": {},
                    }
                },
            }
        )
    )
    shutil.copyfile(target, models(site) / ("qwen3_5.py" + BACKUP_SUFFIX))
    code, payload = run_json(runner, "apply", "--sglang-root", str(site))
    assert code == EXIT_OK and payload["state"] == "native", payload
    assert not (models(site) / LEDGER_NAME).exists() and not (models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)).exists()
    assert record.read_bytes() == installer
