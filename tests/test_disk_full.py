"""A real full disk, with the targets hard-linked into a package cache and carrying a local hotfix.

The hard link is what makes this hard: the old inode stays allocated (the cache
holds it), so replacing a file frees nothing, and writing an original's bytes
back needs space the disk does not have. The user's hotfixed original must
survive every fill level, for apply and for revert, and the message must say
what happened. A tmpfs is mounted for each test (skipped where mounting is refused).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from eagle3_patch.errors import EXIT_CANNOT_WRITE, EXIT_OK
from eagle3_patch.ledger import BACKUP_SUFFIX, LEDGER_NAME
from eagle3_patch.marker import MARKER
from eagle3_patch.spec import load_spec
from tests.test_reliability import TARGETS, leftovers, models, run

HOTFIX = b"\n# a local hotfix the user made before patching\n"
#: The target the writer replaces second (it follows targets.toml's order).
SECOND = [f.name for f in load_spec().files if f.name in TARGETS][1]


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"this machine refuses to mount a tmpfs: {mounted.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _free(folder: Path) -> int:
    status = os.statvfs(folder)
    return status.f_bavail * status.f_frsize


def _fill(disk: Path, leave: int) -> None:
    """Leave ``leave`` bytes free (to the page)."""
    with (disk / "filler").open("wb") as handle:
        chunk = b"\0" * 65536
        try:
            while _free(disk) - leave >= len(chunk):
                handle.write(chunk)
                handle.flush()
            handle.write(b"\0" * max(0, _free(disk) - leave))
        except OSError:
            pass


def _prepare(disk: Path, release: Path) -> tuple[Path, dict[str, bytes]]:
    """A fresh install on the disk, each target hotfixed and hard-linked into a cache folder."""
    for name in ("site", "cache", "filler"):
        path = disk / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    site = disk / "site"
    shutil.copytree(release, site)
    (disk / "cache").mkdir()
    # pip's RECORD, cut to the model files' lines: the real one (590 kB) would only move the
    # interesting fill levels up, and the sweep through it would take longer.
    record = next(site.glob("sglang-*.dist-info")) / "RECORD"
    lines = record.read_text().splitlines(keepends=True)
    record.write_text(
        "".join(line for line in lines if line.startswith(("sglang/srt/models/qwen3_5", record.parent.name)))
    )
    originals = {}
    for name in TARGETS:
        target = models(site) / name
        target.write_bytes(target.read_bytes() + HOTFIX)
        os.link(target, disk / "cache" / name)
        originals[name] = target.read_bytes()
    return site, originals


def _assert_nothing_lost(
    site: Path,
    disk: Path,
    originals: dict[str, bytes],
    before: dict[str, bytes],
    completed: subprocess.CompletedProcess[str],
) -> str:
    """Each hotfixed original is in its file or in a backup the ledger vouches for; the message is true."""
    assert completed.returncode in (EXIT_OK, EXIT_CANNOT_WRITE), completed.stderr
    for name in TARGETS:
        assert (disk / "cache" / name).read_bytes() == originals[name], "the cache is never written"
        current = (models(site) / name).read_bytes()
        if current != originals[name]:
            assert MARKER.encode() in current, f"{name} is neither the original nor patched"
            backup = models(site) / (name + BACKUP_SUFFIX)
            assert backup.read_bytes() == originals[name], f"{name}: patched, and its original is gone"
            assert (models(site) / LEDGER_NAME).exists(), f"{name}: patched, and no ledger vouches for its backup"
    if completed.returncode == EXIT_OK:
        return "ok"
    error = json.loads(completed.stdout)["error"]
    if "nothing was changed" in error:
        assert {n: (models(site) / n).read_bytes() for n in TARGETS} == before, error
        # Failing on the second file written means the first was replaced, then put back.
        return "rolled back" if error.startswith(str(models(site) / SECOND)) else "nothing changed"
    assert "nothing is lost" in error and "run the same command again" in error, error
    return "partly written"


def _finish_and_revert(site: Path, disk: Path, originals: dict[str, bytes]) -> None:
    (disk / "filler").unlink(missing_ok=True)
    reverted = run(site, "revert")
    assert reverted.returncode == EXIT_OK, reverted.stdout
    assert {n: (models(site) / n).read_bytes() for n in TARGETS} == originals, "the hotfix is back"
    assert leftovers(site) == []


def _needed(site: Path, originals: dict[str, bytes]) -> int:
    """Room for copies of everything: the fill level where nothing can run out of space any more.

    (Backups are copies or links; pip's RECORD is rewritten to list our files.)
    """
    record = next(site.glob("sglang-*.dist-info")) / "RECORD"
    return 2 * sum(len(data) for data in originals.values()) + record.stat().st_size + 64 * 1024


Outcome = tuple[str, str, tuple[str, ...]]


def _outcome(label: str, site: Path, before: dict[str, bytes], completed: subprocess.CompletedProcess[str]) -> Outcome:
    """What a run at one fill level did: the label, the file it failed on, the targets it left changed."""
    failed_on = "" if completed.returncode == EXIT_OK else json.loads(completed.stdout)["error"].split(":", 1)[0]
    changed = tuple(n for n in TARGETS if (models(site) / n).read_bytes() != before[n])
    return label, Path(failed_on).name, changed


def _sweep(needed: int, at_level: Callable[[int], Outcome], coarse: int = 64 * 1024, fine: int = 8192) -> list[str]:
    """Run ``at_level`` from a full disk (0 free) to ``needed``: coarsely, then finely wherever the outcome changes.

    Every ``coarse`` bytes first; then each interval whose two ends differ in
    outcome (exit code and message, the file the run failed on, the targets left
    changed) is halved, down to ``fine`` bytes, keeping each half whose ends still
    differ. So every place where the outcome switches is pinned to two levels
    ``fine`` bytes apart, both run (the last level that fails one way and the
    first that does not), as a sweep of every ``fine`` step would; the levels in
    between, where the outcome is the same at both ends, are left out. That is
    sound because the writer writes in a fixed order, each write needing more
    room, so more free space only ever moves a run on to a later outcome: a
    narrow window of its own (the first target replaced, the second not fitting,
    about one small file wide) lies between two different outcomes and is found.
    Returns the labels of all levels run.
    """
    outcomes: dict[int, Outcome] = {}

    def run_at(level: int) -> Outcome:
        if level not in outcomes:
            outcomes[level] = at_level(level)
        return outcomes[level]

    levels = list(range(0, needed + coarse, coarse))
    pending = list(itertools.pairwise(levels))
    for level in levels:
        run_at(level)
    while pending:
        low, high = pending.pop()
        if high - low <= fine or run_at(low) == run_at(high):
            continue
        middle = low + (high - low) // 2 // fine * fine
        run_at(middle)
        pending += [(low, middle), (middle, high)]
    return [outcomes[level][0] for level in sorted(outcomes)]


@pytest.mark.slow
def test_apply_on_a_full_disk_never_loses_a_hotfixed_original(disk: Path, release_site: object) -> None:
    release = release_site("0.5.21")  # type: ignore[operator]

    def at_level(leave: int) -> Outcome:
        site, originals = _prepare(disk, release)
        _fill(disk, leave)
        completed = run(site, "apply")
        label = _assert_nothing_lost(site, disk, originals, originals, completed)
        outcome = _outcome(label, site, originals, completed)
        _finish_and_revert(site, disk, originals)
        return outcome

    outcomes = _sweep(_needed(*_prepare(disk, release)), at_level)
    assert {"ok", "nothing changed", "rolled back"} <= set(outcomes), outcomes


@pytest.mark.slow
def test_revert_on_a_full_disk_never_loses_a_hotfixed_original(disk: Path, release_site: object) -> None:
    release = release_site("0.5.21")  # type: ignore[operator]

    def at_level(leave: int) -> Outcome:
        site, originals = _prepare(disk, release)
        assert run(site, "apply").returncode == EXIT_OK
        patched = {n: (models(site) / n).read_bytes() for n in TARGETS}
        _fill(disk, leave)
        completed = run(site, "revert")
        label = _assert_nothing_lost(site, disk, originals, patched, completed)
        outcome = _outcome(label, site, patched, completed)
        _finish_and_revert(site, disk, originals)
        return outcome

    outcomes = _sweep(_needed(*_prepare(disk, release)), at_level)
    # Revert relinks the originals: the space it needs is RECORD's, written first; never a partial write.
    assert "ok" in outcomes and "partly written" not in outcomes, outcomes


def test_the_sweep_pins_every_switch_to_the_fine_step() -> None:
    """A window narrower than the coarse step, between two coarse levels, is found and bounded at 8 KiB."""
    window = range(139264, 147456 + 1)  # two 8 KiB levels, both off the 64 KiB grid

    def at_level(leave: int) -> Outcome:
        label = "nothing changed" if leave < window.start else "rolled back" if leave in window else "ok"
        return label, "", ()

    run_levels: list[int] = []
    labels = _sweep(320 * 1024, lambda leave: run_levels.append(leave) or at_level(leave))
    assert labels.count("rolled back") == 2
    assert {131072, 139264, 147456, 155648} <= set(run_levels), "both sides of each switch, 8 KiB apart"
    assert len(run_levels) < 40 // 2, "far fewer runs than every 8 KiB step"
