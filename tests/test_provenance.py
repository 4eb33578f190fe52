"""provenance.py: which candidate original is accepted, and which witness vouches for it."""

from __future__ import annotations

import shutil
from pathlib import Path

from eagle3_patch.ledger import BACKUP_SUFFIX, LEDGER_NAME, parse_ledger, sha256_hex
from eagle3_patch.locate import locate_root
from eagle3_patch.provenance import BACKUP, BLOCKS_REMOVED, Original, find_original, record_sha256
from eagle3_patch.spec import load_spec
from tests.conftest import FIXTURES, MakeInstall, patch_site
from tests.test_classify import write_record

SPEC = load_spec()
QWEN3_5 = next(f for f in SPEC.files if f.name == "qwen3_5.py")
ORIGINAL = (FIXTURES / "capture_no_hook" / "qwen3_5.py").read_bytes()


def models(site: Path) -> Path:
    return site / "sglang" / "srt" / "models"


def original_of(site: Path, *, with_ledger: bool) -> Original | None:
    install = locate_root(site, found_by="test")
    ledger = parse_ledger((models(site) / LEDGER_NAME).read_bytes()) if with_ledger else None
    content = (models(site) / "qwen3_5.py").read_bytes()
    return find_original(install, QWEN3_5, content, ledger.get("qwen3_5.py") if ledger else None, SPEC)


def test_record_sha256_reads_pips_record(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook", version="0.5.11")
    write_record(site, "0.5.11", ORIGINAL)
    install = locate_root(site, found_by="test")
    assert record_sha256(install, "qwen3_5.py") == sha256_hex(ORIGINAL)
    assert record_sha256(install, "qwen3_5_text.py") is None


def test_the_backup_vouched_by_the_ledger_comes_first(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    patch_site(site)
    assert original_of(site, with_ledger=True) == Original(ORIGINAL, BACKUP, "ledger")


def test_a_damaged_backup_gives_way_to_our_blocks_removed(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    patch_site(site)
    backup = models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)
    backup.write_bytes(backup.read_bytes()[:100])
    assert original_of(site, with_ledger=True) == Original(ORIGINAL, BLOCKS_REMOVED, "ledger")


def test_without_a_ledger_pips_record_vouches(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook", "patched_old", version="0.5.11")
    write_record(site, "0.5.11", ORIGINAL)
    assert original_of(site, with_ledger=False) == Original(ORIGINAL, BLOCKS_REMOVED, "pip RECORD")


def test_without_any_witness_backup_and_blocks_removed_must_agree(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook", "patched_old")
    assert original_of(site, with_ledger=False) is None, "nothing vouches for the file with our blocks removed"
    shutil.copyfile(FIXTURES / "capture_no_hook" / "qwen3_5.py", models(site) / ("qwen3_5.py" + BACKUP_SUFFIX))
    assert original_of(site, with_ledger=False) == Original(ORIGINAL, BLOCKS_REMOVED, BACKUP)
