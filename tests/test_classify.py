"""Structural classification of fixture installs: per class, per file, per install."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from eagle3_patch.classify import InstallReport, classify_install
from eagle3_patch.ledger import LEDGER_NAME
from eagle3_patch.locate import locate_root
from eagle3_patch.spec import PatchSpec, load_spec
from eagle3_patch.states import ABSENT, DRIFTED, NATIVE, PATCHED, PATCHED_OLD, UNPATCHED, UNSUPPORTED
from tests.conftest import FIXTURES, MakeInstall, classify_site, patch_site


def states(report: InstallReport) -> dict[str, str]:
    return {f"{f.spec.name}:{c.name}": c.state for f in report.files for c in f.classes}


def models(site: Path) -> Path:
    return site / "sglang" / "srt" / "models"


def test_capture_without_hook_is_unpatched(make_install: MakeInstall) -> None:
    report = classify_site(make_install("capture_no_hook"))
    assert report.state == UNPATCHED
    assert states(report) == {
        "qwen3_5.py:Qwen3_5ForCausalLM": UNPATCHED,
        "qwen3_5.py:Qwen3_5ForConditionalGeneration": UNPATCHED,
        "qwen3_5.py:Qwen3_5MoeForConditionalGeneration": UNPATCHED,
        "qwen3_5_text.py:Qwen3_5ForCausalLM": ABSENT,
    }
    wrapper = report.files[0].classes[1]
    assert wrapper.detail == "no working set_eagle3_layers_to_capture of its own"


@pytest.mark.parametrize("text_shape", ["text_wrapper", "text_wrapper_plain"])
def test_text_wrapper_is_a_target(make_install: MakeInstall, text_shape: str) -> None:
    report = classify_site(make_install("capture_no_hook", text_shape))
    assert states(report)["qwen3_5_text.py:Qwen3_5ForCausalLM"] == UNPATCHED


def test_pre_capture_decoder_is_unsupported(make_install: MakeInstall) -> None:
    report = classify_site(make_install("pre_capture"))
    assert report.state == UNSUPPORTED
    assert "_is_layer_to_capture" in report.reason
    assert "qwen3_5.py" in report.reason


def test_no_qwen3_5_is_unsupported(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    (models(site) / "qwen3_5.py").unlink()
    report = classify_site(site)
    assert report.state == UNSUPPORTED
    assert "no Qwen3.5 model file" in report.reason


def test_native_release_is_native(make_install: MakeInstall) -> None:
    report = classify_site(make_install("native"))
    assert report.state == NATIVE
    assert set(states(report).values()) == {NATIVE}


def test_native_decoder_with_broken_base_hook_needs_wrappers(make_install: MakeInstall) -> None:
    site = make_install("native")
    shutil.copyfile(FIXTURES / "capture_no_hook" / "qwen3_vl.py", models(site) / "qwen3_vl.py")
    report = classify_site(site)
    assert states(report)["qwen3_5.py:Qwen3_5ForCausalLM"] == NATIVE
    assert states(report)["qwen3_5.py:Qwen3_5ForConditionalGeneration"] == UNPATCHED
    assert report.state == UNPATCHED


def test_delegating_base_without_decoder_hook_is_not_native(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    shutil.copyfile(FIXTURES / "native" / "qwen3_vl.py", models(site) / "qwen3_vl.py")
    report = classify_site(site)
    assert states(report)["qwen3_5.py:Qwen3_5ForConditionalGeneration"] == UNPATCHED


def test_foreign_hook_that_does_not_work_is_refused(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    path = models(site) / "qwen3_5.py"
    path.write_text(
        path.read_text().replace(
            "    def get_input_embeddings(self):",
            "    def set_eagle3_layers_to_capture(self, ids):\n"
            "        self.ids = ids\n\n"
            "    def get_input_embeddings(self):",
        )
    )
    report = classify_site(site)
    assert report.state == UNSUPPORTED
    assert "refusing to add a second one" in report.reason


def test_missing_required_class_is_unsupported(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    path = models(site) / "qwen3_5.py"
    path.write_text(path.read_text().replace("class Qwen3_5MoeForConditionalGeneration(", "class Renamed("))
    report = classify_site(site)
    assert report.state == UNSUPPORTED
    assert "Qwen3_5MoeForConditionalGeneration: class not found" in report.reason


def test_unparsable_file_is_unsupported(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    (models(site) / "qwen3_5.py").write_text("class Broken(:\n")
    assert classify_site(site).state == UNSUPPORTED


def test_patched_install_reads_patched(make_install: MakeInstall) -> None:
    report = patch_site(make_install("capture_no_hook", "text_wrapper"))
    assert report.state == PATCHED
    assert {s for s in states(report).values()} == {PATCHED}
    assert report.ledger is not None and report.ledger.get("qwen3_5.py") is not None


def test_edit_after_patch_is_drifted(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    patch_site(site)
    path = models(site) / "qwen3_5.py"
    path.write_text(path.read_text() + "\n# my edit\n")
    report = classify_site(site)
    assert report.state == DRIFTED
    assert "changed since eagle3-patch wrote it" in report.reason
    assert report.files[0].original is not None
    assert report.files[0].original.content == (FIXTURES / "capture_no_hook" / "qwen3_5.py").read_bytes()


def test_reinstalled_file_with_stale_backup_is_unpatched(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    patch_site(site)
    shutil.copyfile(FIXTURES / "capture_no_hook" / "qwen3_5.py", models(site) / "qwen3_5.py")
    assert (models(site) / "qwen3_5.py.eagle3-bak").exists()
    assert classify_site(site).state == UNPATCHED


def test_older_blocks_without_record_are_drifted(make_install: MakeInstall) -> None:
    report = classify_site(make_install("capture_no_hook", "patched_old"))
    assert report.state == DRIFTED
    assert "nothing vouches" in report.reason


def test_older_blocks_with_matching_backup_are_patched_old(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook", "patched_old")
    shutil.copyfile(FIXTURES / "capture_no_hook" / "qwen3_5.py", models(site) / "qwen3_5.py.eagle3-bak")
    report = classify_site(site)
    assert report.state == UNPATCHED
    assert states(report) == {
        "qwen3_5.py:Qwen3_5ForCausalLM": PATCHED_OLD,
        "qwen3_5.py:Qwen3_5ForConditionalGeneration": PATCHED_OLD,
        "qwen3_5.py:Qwen3_5MoeForConditionalGeneration": UNPATCHED,
        "qwen3_5_text.py:Qwen3_5ForCausalLM": ABSENT,
    }


def test_lost_ledger_falls_back_to_the_backup(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    patch_site(site)
    (models(site) / LEDGER_NAME).unlink()
    report = classify_site(site)
    assert report.state == PATCHED
    assert report.files[0].detail == "no ledger entry"


def test_corrupt_ledger_is_reported_and_ignored(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    patch_site(site)
    ledger = models(site) / LEDGER_NAME
    ledger.write_bytes(ledger.read_bytes()[:40])
    report = classify_site(site)
    assert report.ledger is None
    assert any(note.startswith(str(ledger)) for note in report.notes)
    assert report.state == PATCHED  # vouched for by the backup instead


def write_record(site: Path, version: str, content: bytes) -> None:
    """A RECORD as pip writes it, listing qwen3_5.py with ``content``'s hash."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    record = site / f"sglang-{version}.dist-info" / "RECORD"
    record.write_text(f"sglang/__init__.py,,\nsglang/srt/models/qwen3_5.py,sha256={digest},{len(content)}\n")


def test_older_blocks_plus_other_edits_are_drifted(make_install: MakeInstall) -> None:
    """pip's RECORD vouches for the backup, but the file differs from it beyond our blocks."""
    site = make_install("capture_no_hook", "patched_old", version="0.5.11")
    original = (FIXTURES / "capture_no_hook" / "qwen3_5.py").read_bytes()
    write_record(site, "0.5.11", original)
    shutil.copyfile(FIXTURES / "capture_no_hook" / "qwen3_5.py", models(site) / "qwen3_5.py.eagle3-bak")
    path = models(site) / "qwen3_5.py"
    path.write_text(path.read_text().replace("return set()", "return {'mine'}"))
    report = classify_site(site)
    assert report.state == DRIFTED
    assert "changed outside its [EAGLE3-PATCH] blocks" in report.reason
    assert report.files[0].original is not None
    assert report.files[0].original.content == (FIXTURES / "capture_no_hook" / "qwen3_5.py").read_bytes()


# --- the data's order does not matter ---------------------------------------------------

#: Every install shape the fixtures make, each also patched once (a ledger, our blocks).
FIXTURE_SHAPES = (
    ("native",),
    ("capture_no_hook",),
    ("capture_no_hook", "text_wrapper"),
    ("capture_no_hook", "text_wrapper_plain"),
    ("capture_no_hook", "patched_old"),
    ("pre_capture",),
)


def shuffled_specs(seed: int, count: int = 4) -> list[PatchSpec]:
    """The shipped spec reversed, then shuffled: files, and classes within each file."""
    spec = load_spec()
    reversed_files = tuple(dataclasses.replace(f, classes=f.classes[::-1]) for f in spec.files[::-1])
    variants = [dataclasses.replace(spec, files=reversed_files)]
    generator = random.Random(seed)
    for _ in range(count - 1):
        files = [dataclasses.replace(f, classes=tuple(generator.sample(f.classes, len(f.classes)))) for f in spec.files]
        variants.append(dataclasses.replace(spec, files=tuple(generator.sample(files, len(files)))))
    return variants


def decided(report: InstallReport) -> tuple[str, dict[tuple[str, str], str]]:
    return report.state, {(f.spec.name, c.name): c.state for f in report.files for c in f.classes}


def assert_order_free(site: Path) -> None:
    install = locate_root(site, found_by="test")
    expected = decided(classify_install(install, load_spec()))
    for spec in shuffled_specs(seed=len(str(site))):
        assert decided(classify_install(install, spec)) == expected


@pytest.mark.parametrize("shape", FIXTURE_SHAPES, ids="+".join)
def test_classification_ignores_the_order_of_files_and_classes(make_install: MakeInstall, shape: tuple) -> None:
    site = make_install(*shape)
    assert_order_free(site)
    if classify_site(site).state == UNPATCHED:
        patch_site(site)
        assert_order_free(site)


@pytest.mark.corpus
def test_every_release_classifies_the_same_in_any_order(release: str, release_site: Callable[[str], Path]) -> None:
    assert_order_free(release_site(release))
