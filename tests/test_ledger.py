"""The ledger: its format (round trip, refusal of anything damaged), and what it vouches for."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eagle3_patch import __version__
from eagle3_patch.errors import LedgerError
from eagle3_patch.ledger import (
    LEDGER_NAME,
    Ledger,
    LedgerEntry,
    parse_ledger,
    render_ledger,
    sha256_hex,
    targets_sha256,
    vouches_for_patched,
)
from eagle3_patch.states import PATCHED
from tests.conftest import FIXTURES, MakeInstall, classify_site, patch_site

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


def _rewrite_ledger(models: Path, **changes: object) -> None:
    path = models / LEDGER_NAME
    raw = json.loads(path.read_text())
    raw.update(changes)
    path.write_text(json.dumps(raw))


@pytest.mark.parametrize(
    ("shapes", "change", "vouches"),
    [
        (("capture_no_hook",), "none", True),
        (("capture_no_hook", "text_wrapper"), "none", True),
        (("capture_no_hook",), "edited", False),
        (("capture_no_hook",), "a target file appeared", False),
        (("capture_no_hook",), "other targets", False),
        (("capture_no_hook",), "another eagle3-patch", False),
        (("capture_no_hook",), "ledger cut", False),
        (("capture_no_hook",), "not patched", False),
        (("native",), "not patched", False),
    ],
)
def test_the_ledger_vouches_only_where_classify_says_patched_without_notes(
    make_install: MakeInstall, shapes: tuple[str, ...], change: str, vouches: bool
) -> None:
    """check's shortcut skips parsing, not rules: whenever it vouches, classify agrees in every word."""
    site = make_install(*shapes)
    models = site / "sglang" / "srt" / "models"
    if change != "not patched":
        patch_site(site)
    target = models / "qwen3_5.py"
    if change == "edited":
        target.write_bytes(target.read_bytes() + b"# edit\n")
    elif change == "a target file appeared":
        shutil.copyfile(FIXTURES / "text_wrapper" / "qwen3_5_text.py", models / "qwen3_5_text.py")
    elif change == "other targets":
        _rewrite_ledger(models, targets_sha256="0" * 64)
    elif change == "another eagle3-patch":
        _rewrite_ledger(models, tool_version="0.0.9")
    elif change == "ledger cut":
        (models / LEDGER_NAME).write_bytes((models / LEDGER_NAME).read_bytes()[:50])
    vouched = vouches_for_patched(models, targets_digest=targets_sha256(), tool_version=__version__)
    assert vouched == vouches
    if vouched:
        report = classify_site(site)
        assert (report.state, report.notes) == (PATCHED, ())
        assert all(f.tree is None for f in report.files), "classify, too, settled every file without parsing"
