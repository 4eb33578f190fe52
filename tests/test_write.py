"""The writer: atomic replacement, metadata, transactions, bytecode, refusals."""

from __future__ import annotations

import os
import py_compile
from pathlib import Path

import pytest

from eagle3_patch import write
from eagle3_patch.errors import DriftError, PartialWriteError, WriteError
from eagle3_patch.ledger import backup_path_for, sha256_hex
from eagle3_patch.write import TEMP_SUFFIX, FileChange, WritePlan, atomic_write, execute


def change(path: Path, new: bytes, **extra: object) -> FileChange:
    return FileChange(path=path, expected_sha256=sha256_hex(path.read_bytes()), new_content=new, **extra)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(TEMP_SUFFIX))


@pytest.mark.parametrize("mode", [0o644, 0o755, 0o640])
def test_atomic_write_keeps_mode_under_strict_umask(tmp_path: Path, mode: int) -> None:
    target = tmp_path / "m.py"
    target.write_bytes(b"old\n")
    target.chmod(mode)
    previous = os.umask(0o077)
    try:
        atomic_write(target, b"new\n")
    finally:
        os.umask(previous)
    assert target.read_bytes() == b"new\n"
    assert target.stat().st_mode & 0o777 == mode
    assert leftovers(tmp_path) == []


def test_hard_link_is_broken_not_written_through(tmp_path: Path) -> None:
    cache = tmp_path / "cache.py"
    cache.write_bytes(b"shared\n")
    target = tmp_path / "m.py"
    os.link(cache, target)
    atomic_write(target, b"patched\n")
    assert cache.read_bytes() == b"shared\n"
    assert target.read_bytes() == b"patched\n"


def test_plan_writes_backup_ledger_and_file(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_bytes(b"original\n")
    backup = tmp_path / "m.py.eagle3-bak"
    ledger = tmp_path / ".eagle3-patch.json"
    outcome = execute(
        WritePlan((change(target, b"patched\n", backup=b"original\n", backup_path=backup),), ledger, b"{}\n")
    )
    assert outcome.written == (target,)
    assert (target.read_bytes(), backup.read_bytes(), ledger.read_bytes()) == (b"patched\n", b"original\n", b"{}\n")


def test_symlinked_target_gets_a_private_copy_and_revert_puts_the_link_back(tmp_path: Path) -> None:
    """A link into a package cache: the cache file is never written, and revert restores the very link."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "m.py").write_bytes(b"original\n")
    install = tmp_path / "models"
    install.mkdir()
    link = install / "m.py"
    link.symlink_to(cache / "m.py")
    backup = backup_path_for(link)
    assert backup == install / "m.py.eagle3-bak"
    execute(
        WritePlan((change(link, b"patched\n", backup=b"original\n", backup_path=backup),), install / "l.json", b"{}")
    )
    assert not link.is_symlink() and link.read_bytes() == b"patched\n"
    assert (cache / "m.py").read_bytes() == b"original\n" and sorted(p.name for p in cache.iterdir()) == ["m.py"]
    assert backup.read_bytes() == b"original\n" and not backup.is_symlink()
    restore = change(link, b"original\n", backup_path=backup, remove_backup=True, restore_link=str(cache / "m.py"))
    execute(WritePlan((restore,), install / "l.json", None))
    assert link.is_symlink() and os.readlink(link) == str(cache / "m.py")
    assert sorted(p.name for p in install.iterdir()) == ["m.py"] and leftovers(cache) == []


def test_backup_is_the_original_inode_and_revert_relinks_it(tmp_path: Path) -> None:
    """A hard link into a cache stays a hard link to the same inode after apply and revert."""
    cache = tmp_path / "cache.py"
    cache.write_bytes(b"original\n")
    target = tmp_path / "m.py"
    os.link(cache, target)
    backup = tmp_path / "m.py.eagle3-bak"
    execute(WritePlan((change(target, b"patched\n", backup=b"original\n", backup_path=backup),), tmp_path / "l", b"{}"))
    assert backup.stat().st_ino == cache.stat().st_ino and target.read_bytes() == b"patched\n"
    execute(WritePlan((change(target, b"original\n", backup_path=backup, remove_backup=True),), tmp_path / "l", None))
    assert target.stat().st_ino == cache.stat().st_ino and cache.stat().st_nlink == 2
    assert not backup.exists() and cache.read_bytes() == b"original\n"


def test_failure_on_second_file_restores_the_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_bytes(b"a\n")
    second.write_bytes(b"b\n")
    ledger = tmp_path / ".eagle3-patch.json"
    real_replace = os.replace

    def failing_replace(src: str, dst: str | os.PathLike[str]) -> None:
        if Path(dst) == second:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(write.os, "replace", failing_replace)
    plan = WritePlan(
        (
            change(first, b"A\n", backup=b"a\n", backup_path=tmp_path / "a.py.eagle3-bak"),
            change(second, b"B\n", backup=b"b\n", backup_path=tmp_path / "b.py.eagle3-bak"),
        ),
        ledger,
        b"{}\n",
    )
    with pytest.raises(WriteError) as caught:
        execute(plan)
    assert "No space left on device" in str(caught.value) and str(second) in str(caught.value)
    assert (first.read_bytes(), second.read_bytes()) == (b"a\n", b"b\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py", "b.py"]


@pytest.mark.parametrize("verb", ["apply", "revert"])
def test_a_rollback_that_fails_keeps_every_record_and_says_which_file_is_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verb: str
) -> None:
    """The second file cannot be written, and the first cannot be put back: nothing is deleted, nothing claimed."""
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    originals, patched = {first: b"a\n", second: b"b\n"}, {first: b"A\n", second: b"B\n"}
    ledger = tmp_path / ".eagle3-patch.json"
    backups = {path: tmp_path / (path.name + ".eagle3-bak") for path in (first, second)}
    if verb == "apply":
        before, after = originals, patched
        for path, data in originals.items():
            path.write_bytes(data)
        changes = tuple(change(p, patched[p], backup=originals[p], backup_path=backups[p]) for p in (first, second))
        new_ledger: bytes | None = b"{}\n"
    else:
        before, after = patched, originals
        for path in (first, second):
            path.write_bytes(patched[path])
            backups[path].write_bytes(originals[path])
        ledger.write_bytes(b"{}\n")
        changes = tuple(change(p, originals[p], backup_path=backups[p], remove_backup=True) for p in (first, second))
        new_ledger = None
    real_replace, landed = os.replace, []

    def failing_replace(src: str, dst: str | os.PathLike[str]) -> None:
        if Path(dst) == second or (Path(dst) == first and landed):
            raise OSError(5, "Input/output error")
        real_replace(src, dst)
        if Path(dst) == first:
            landed.append(dst)

    monkeypatch.setattr(write.os, "replace", failing_replace)
    with pytest.raises(PartialWriteError) as caught:
        execute(WritePlan(changes, ledger, new_ledger))
    message = str(caught.value)
    assert "Input/output error" in message and "nothing was changed" not in message
    assert "a.py stays as this run wrote it" in message and "nothing is lost" in message
    assert (first.read_bytes(), second.read_bytes()) == (after[first], before[second])
    assert all(backups[p].read_bytes() == originals[p] for p in (first, second)), "every backup is kept"
    assert ledger.exists(), "the ledger that vouches for the backups is kept"


def test_fsync_failure_never_renames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "m.py"
    target.write_bytes(b"original\n")

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(write.os, "fsync", failing_fsync)
    with pytest.raises(WriteError, match="Input/output error"):
        atomic_write(target, b"patched\n")
    assert target.read_bytes() == b"original\n"
    assert leftovers(tmp_path) == []


def test_read_only_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_bytes(b"original\n")
    target.chmod(0o444)
    with pytest.raises(WriteError, match="read-only"):
        execute(WritePlan((change(target, b"patched\n"),), tmp_path / "l.json", b"{}"))
    assert target.read_bytes() == b"original\n"
    assert target.stat().st_mode & 0o777 == 0o444


def test_file_changed_since_planning_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_bytes(b"original\n")
    planned = change(target, b"patched\n")
    target.write_bytes(b"someone else\n")
    with pytest.raises(DriftError):
        execute(WritePlan((planned,), tmp_path / "l.json", b"{}"))
    assert target.read_bytes() == b"someone else\n"


@pytest.mark.parametrize(
    ("step", "edited"),
    [(step, name) for step in ("backup", "ledger", "bytecode-before") for name in ("a.py", "b.py")]
    + [("replace", "b.py")],  # after a.py was replaced, before b.py is
)
def test_an_edit_after_the_preflight_is_kept_and_the_run_rolled_back(tmp_path: Path, step: str, edited: str) -> None:
    """Compare and swap: each file is hashed again right before its replace, not only before the backups."""
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_bytes(b"a\n")
    second.write_bytes(b"b\n")
    plan = WritePlan(
        (
            change(first, b"A\n", backup=b"a\n", backup_path=tmp_path / "a.py.eagle3-bak"),
            change(second, b"B\n", backup=b"b\n", backup_path=tmp_path / "b.py.eagle3-bak"),
        ),
        tmp_path / ".eagle3-patch.json",
        b"{}\n",
    )
    target = tmp_path / edited

    def editor(done: str) -> None:  # another process saves the file between two of the writer's steps
        if done == step and target.read_bytes().islower():
            target.write_bytes(target.read_bytes() + b"# edit\n")

    with pytest.raises(DriftError) as caught:
        execute(plan, on_step=editor)
    assert str(target) in str(caught.value) and "rolled back" in str(caught.value)
    untouched = second if edited == "a.py" else first
    assert target.read_bytes().endswith(b"# edit\n"), "the edit is kept"
    assert untouched.read_bytes() in (b"a\n", b"b\n"), "the other file is as it was"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py", "b.py"], "backups and ledger rolled back"


def test_stale_bytecode_is_removed(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_bytes(b"X = 1\n")
    other = tmp_path / "other.py"
    other.write_bytes(b"Y = 1\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    for name in ("m.cpython-310.pyc", "m.cpython-311.pyc", "m.cpython-311.opt-1.pyc", "other.cpython-311.pyc"):
        (cache / name).write_bytes(b"stale")
    py_compile.compile(str(target))
    outcome = execute(WritePlan((change(target, b"X = 2\n"),), tmp_path / "l.json", b"{}"))
    assert sorted(p.name for p in cache.iterdir()) == ["other.cpython-311.pyc"]
    assert len(outcome.removed_bytecode) == 3


def test_revert_plan_keeps_copy_and_removes_backup_and_ledger(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_bytes(b"edited\n")
    backup = tmp_path / "m.py.eagle3-bak"
    backup.write_bytes(b"original\n")
    ledger = tmp_path / ".eagle3-patch.json"
    ledger.write_bytes(b"{}")
    keep = tmp_path / "m.py.eagle3-edited"
    execute(
        WritePlan((change(target, b"original\n", backup_path=backup, remove_backup=True, keep_as=keep),), ledger, None)
    )
    assert target.read_bytes() == b"original\n"
    assert keep.read_bytes() == b"edited\n"
    assert not backup.exists() and not ledger.exists()


def test_steps_are_reported_in_order_after_they_happen(tmp_path: Path) -> None:
    """The step callback sees each step once it is done: the backup exists before the file changes."""
    target = tmp_path / "m.py"
    target.write_bytes(b"original\n")
    backup = tmp_path / "m.py.eagle3-bak"
    seen: list[tuple[str, bool, bytes]] = []

    def on_step(step: str) -> None:
        seen.append((step, backup.exists(), target.read_bytes()))

    plan = WritePlan((change(target, b"patched\n", backup=b"original\n", backup_path=backup),), tmp_path / "l", b"{}")
    execute(plan, on_step=on_step)
    assert [step for step, _, _ in seen] == ["backup", "ledger", "bytecode-before", "replace", "bytecode"]
    assert seen[0][1:] == (True, b"original\n") and seen[3][2] == b"patched\n"


def test_the_product_carries_no_fault_injection() -> None:
    """Kill and delay hooks live in tests/fault_injection.py, not in the package."""
    package = Path(write.__file__).parent
    readers = [p.name for p in package.rglob("*.py") if "EAGLE3_PATCH_TEST" in p.read_text(encoding="utf-8")]
    assert readers == []
