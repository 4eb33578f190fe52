"""Planning: what apply and revert would write, decided from a classified install."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from eagle3_patch.errors import DriftError, UnsupportedError
from eagle3_patch.ledger import BACKUP_SUFFIX, parse_ledger, sha256_hex
from eagle3_patch.plan import plan_apply, plan_revert, unified_diff
from eagle3_patch.spec import load_spec
from tests.conftest import FIXTURES, MakeInstall, classify_site, patch_site


def models(site: Path) -> Path:
    return site / "sglang" / "srt" / "models"


def test_apply_plan_backs_up_and_records_every_changed_file(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook", "text_wrapper")
    plan = plan_apply(classify_site(site), load_spec())
    assert plan.write is not None
    assert [c.path.name for c in plan.write.changes] == ["qwen3_5.py", "qwen3_5_text.py"]
    for change in plan.write.changes:
        assert change.backup == change.path.read_bytes()
        assert change.backup_path == change.path.with_name(change.path.name + BACKUP_SUFFIX)
    ledger = parse_ledger(plan.write.ledger or b"")
    entry = ledger.get("qwen3_5.py")
    assert entry is not None
    assert entry.pristine_sha256 == sha256_hex((models(site) / "qwen3_5.py").read_bytes())
    assert entry.patched_sha256 == sha256_hex(plan.files[0].new_content)
    assert dict(entry.classes) == {
        "Qwen3_5ForCausalLM": "decoder-v2",
        "Qwen3_5ForConditionalGeneration": "wrapper-v2",
        "Qwen3_5MoeForConditionalGeneration": "wrapper-v2",
    }


def test_nothing_to_write_when_patched_or_native(make_install: MakeInstall, tmp_path: Path) -> None:
    assert plan_apply(patch_site(make_install("capture_no_hook")), load_spec()).write is None
    native = classify_site(make_install("native", name="native-site"))
    assert plan_apply(native, load_spec()).write is None
    assert plan_revert(native, load_spec()).write is None


def test_matching_backup_is_not_rewritten(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    shutil.copyfile(FIXTURES / "capture_no_hook" / "qwen3_5.py", models(site) / ("qwen3_5.py" + BACKUP_SUFFIX))
    plan = plan_apply(classify_site(site), load_spec())
    assert plan.write is not None and plan.write.changes[0].backup is None


def test_unsupported_and_drifted_are_refused(make_install: MakeInstall) -> None:
    with pytest.raises(UnsupportedError, match="0.5.11-0.5.21 can be patched"):
        plan_apply(classify_site(make_install("pre_capture")), load_spec())
    site = make_install("capture_no_hook")
    patch_site(site)
    target = models(site) / "qwen3_5.py"
    target.write_bytes(target.read_bytes() + b"# edit\n")
    report = classify_site(site)
    with pytest.raises(DriftError, match="revert --force"):
        plan_apply(report, load_spec())
    with pytest.raises(DriftError, match="revert --force"):
        plan_revert(report, load_spec())
    forced = plan_revert(report, load_spec(), force=True)
    assert forced.write is not None and forced.write.changes[0].keep_as is not None


def test_revert_restores_only_files_that_carry_our_blocks(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook", "text_wrapper")
    patch_site(site)
    shutil.copyfile(FIXTURES / "text_wrapper" / "qwen3_5_text.py", models(site) / "qwen3_5_text.py")
    plan = plan_revert(classify_site(site), load_spec())
    assert plan.write is not None
    assert [c.path.name for c in plan.write.changes] == ["qwen3_5.py"]
    assert plan.write.changes[0].new_content == (FIXTURES / "capture_no_hook" / "qwen3_5.py").read_bytes()
    assert plan.write.ledger is None, "no file carries our blocks afterwards: the ledger goes"


def test_unified_diff_names_the_file_and_shows_only_additions(make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    plan = plan_apply(classify_site(site), load_spec())
    diff = unified_diff(plan.files[0])
    assert diff.startswith(f"--- a{models(site) / 'qwen3_5.py'}")
    removed = [line for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    assert removed == []


def test_revert_cleans_up_what_an_interrupted_revert_left(make_install: MakeInstall) -> None:
    """Files already original, but their backups (identical to them) and the ledger still there."""
    site = make_install("capture_no_hook")
    patch_site(site)
    for name in ("qwen3_5.py",):
        shutil.copyfile(models(site) / (name + BACKUP_SUFFIX), models(site) / name)
    plan = plan_revert(classify_site(site), load_spec())
    assert plan.files == ()
    assert plan.write is not None and plan.write.changes == () and plan.write.ledger is None
    assert plan.write.remove == (models(site) / ("qwen3_5.py" + BACKUP_SUFFIX),)
