"""The ledger's format: round trip, and refusal of anything damaged."""

from __future__ import annotations

import pytest

from eagle3_patch.ledger import Ledger, LedgerEntry, LedgerError, parse_ledger, render_ledger, sha256_hex
from tests.conftest import MakeInstall

ENTRY = LedgerEntry(
    "qwen3_5.py", sha256_hex(b"a"), sha256_hex(b"b"), (("Qwen3_5ForCausalLM", "decoder-v1"), ("Other", "native"))
)


def test_round_trip() -> None:
    ledger = Ledger("0.1.0", "0.5.21", (ENTRY,))
    assert parse_ledger(render_ledger(ledger)) == ledger
    assert ledger.get("qwen3_5.py") == ENTRY and ledger.get("other.py") is None


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b'{"format": 1, "files": {', id="truncated"),
        pytest.param(b'{"format": 2, "files": {}}', id="future format"),
        pytest.param(b'{"format": 1}', id="no files"),
        pytest.param(
            b'{"format": 1, "files": {"x.py": {"pristine_sha256": "zz", "patched_sha256": "zz"}}}', id="bad hash"
        ),
        pytest.param(b"\xff\xfe", id="not utf-8"),
        pytest.param(b"[]", id="not an object"),
    ],
)
def test_damaged_ledger_is_refused(data: bytes) -> None:
    with pytest.raises(LedgerError):
        parse_ledger(data)


def test_ledger_vouches_for_a_patched_install_and_nothing_else(make_install: MakeInstall) -> None:
    """check's no-parse path: any doubt (a changed, new or vanished file, other targets) means classify."""
    import shutil

    from eagle3_patch.ledger import LEDGER_NAME, targets_sha256, vouched_patched
    from tests.conftest import FIXTURES, patch_site

    site = make_install("capture_no_hook")
    models = site / "sglang" / "srt" / "models"
    digest = targets_sha256()
    assert not vouched_patched(models, digest), "nothing written yet"
    patch_site(site)
    assert vouched_patched(models, digest)
    assert not vouched_patched(models, "0" * 64), "written under other targets"

    target = models / "qwen3_5.py"
    patched = target.read_bytes()
    target.write_bytes(patched + b"# edit\n")
    assert not vouched_patched(models, digest)
    target.write_bytes(patched)

    shutil.copyfile(FIXTURES / "text_wrapper" / "qwen3_5_text.py", models / "qwen3_5_text.py")
    assert not vouched_patched(models, digest), "a target file appeared (an upgrade) since"
    (models / "qwen3_5_text.py").unlink()
    assert vouched_patched(models, digest)

    ledger = models / LEDGER_NAME
    ledger.write_bytes(ledger.read_bytes()[:50])
    assert not vouched_patched(models, digest)
