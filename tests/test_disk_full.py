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
    # interesting fill levels up, and 8 KiB steps through it would take minutes.
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


def _levels(site: Path, originals: dict[str, bytes], step: int) -> list[int]:
    """From a full disk to room for copies of everything, every ``step`` bytes.

    8 KiB steps always land in the window where the first file is replaced and the
    second does not fit, whatever the records cost (backups are copies or links;
    pip's RECORD is rewritten to list our files).
    """
    record = next(site.glob("sglang-*.dist-info")) / "RECORD"
    needed = 2 * sum(len(data) for data in originals.values()) + record.stat().st_size + 64 * 1024
    return list(range(0, needed + step, step))


def _sweep(disk: Path, release: Path, trial: Callable[[int], str]) -> list[str]:
    """The outcome at fill levels from a full disk to enough: every 64 KiB, then every 8 KiB inside each
    64 KiB interval whose two ends differ, so each place where the behaviour switches (nothing changed,
    rolled back, ok) is still tested at 8 KiB resolution, as the full 8 KiB sweep did, in half the runs.
    The outcome only moves one way as free space grows, so a window cannot hide between equal ends."""
    coarse = _levels(*_prepare(disk, release), 64 * 1024)
    outcomes = {leave: trial(leave) for leave in coarse}
    for low, high in itertools.pairwise(coarse):
        if outcomes[low] != outcomes[high]:
            outcomes.update({leave: trial(leave) for leave in range(low + 8192, high, 8192)})
    return [outcomes[leave] for leave in sorted(outcomes)]


def test_apply_on_a_full_disk_never_loses_a_hotfixed_original(disk: Path, release_site: object) -> None:
    release = release_site("0.5.21")  # type: ignore[operator]

    def trial(leave: int) -> str:
        site, originals = _prepare(disk, release)
        _fill(disk, leave)
        outcome = _assert_nothing_lost(site, disk, originals, originals, run(site, "apply"))
        _finish_and_revert(site, disk, originals)
        return outcome

    outcomes = _sweep(disk, release, trial)
    assert {"ok", "nothing changed", "rolled back"} <= set(outcomes), outcomes


def test_revert_on_a_full_disk_never_loses_a_hotfixed_original(disk: Path, release_site: object) -> None:
    release = release_site("0.5.21")  # type: ignore[operator]

    def trial(leave: int) -> str:
        site, originals = _prepare(disk, release)
        assert run(site, "apply").returncode == EXIT_OK
        patched = {n: (models(site) / n).read_bytes() for n in TARGETS}
        _fill(disk, leave)
        outcome = _assert_nothing_lost(site, disk, originals, patched, run(site, "revert"))
        _finish_and_revert(site, disk, originals)
        return outcome

    outcomes = _sweep(disk, release, trial)
    # Revert relinks the originals: the space it needs is RECORD's, written first; never a partial write.
    assert "ok" in outcomes and "partly written" not in outcomes, outcomes
