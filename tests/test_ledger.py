"""The ledger's format: round trip, and refusal of anything damaged."""

from __future__ import annotations

import pytest

from eagle3_patch.ledger import Ledger, LedgerEntry, LedgerError, parse_ledger, render_ledger, sha256_hex

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
