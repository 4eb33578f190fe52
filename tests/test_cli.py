"""The command line on fixture installs: exit codes, messages, JSON, drift and reinstall flows."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from eagle3_patch import reading, transform
from eagle3_patch.classify import classify_install
from eagle3_patch.cli import cli
from eagle3_patch.errors import (
    EXIT_CANNOT_WRITE,
    EXIT_DRIFT,
    EXIT_INTERNAL,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNPATCHED,
    EXIT_UNSUPPORTED,
    EXIT_USAGE,
)
from eagle3_patch.ledger import BACKUP_SUFFIX, EDITED_SUFFIX, KEPT_SUFFIX, LEDGER_NAME
from eagle3_patch.locate import locate_root
from eagle3_patch.plan import plan_apply
from eagle3_patch.spec import Template, load_spec
from eagle3_patch.write import execute
from tests.conftest import FIXTURES, MakeInstall, run_cli, run_json, snapshot


def models(site: Path) -> Path:
    return site / "sglang" / "srt" / "models"


@pytest.fixture
def site(make_install: MakeInstall) -> Path:
    return make_install("capture_no_hook", "text_wrapper", version="0.5.21")


def test_apply_check_revert_round_trip(runner: CliRunner, site: Path) -> None:
    before = snapshot(models(site))
    assert run_cli(runner, "check", "--sglang-root", str(site)).exit_code == EXIT_UNPATCHED
    applied = run_cli(runner, "apply", "--sglang-root", str(site))
    assert applied.exit_code == EXIT_OK, applied.output
    assert "patched: qwen3_5.py: Qwen3_5ForCausalLM (after set_dflash_layers_to_capture)" in applied.stdout
    assert (models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)).read_bytes() == before["qwen3_5.py"][0]
    assert run_cli(runner, "check", "--sglang-root", str(site)).exit_code == EXIT_OK
    after = snapshot(models(site))
    again = run_cli(runner, "apply", "--sglang-root", str(site))
    assert again.exit_code == EXIT_OK and "nothing to do" in again.stdout
    assert snapshot(models(site)) == after
    reverted = run_cli(runner, "revert", "--sglang-root", str(site))
    assert reverted.exit_code == EXIT_OK
    assert {k: v[0] for k, v in snapshot(models(site)).items()} == {k: v[0] for k, v in before.items()}
    assert run_cli(runner, "check", "--sglang-root", str(site)).exit_code == EXIT_UNPATCHED
    assert run_cli(runner, "revert", "--sglang-root", str(site)).exit_code == EXIT_OK  # nothing to do


def test_dry_run_prints_diff_and_writes_nothing(runner: CliRunner, site: Path) -> None:
    before = snapshot(site)
    result = run_cli(runner, "apply", "--dry-run", "--sglang-root", str(site))
    assert result.exit_code == EXIT_OK
    assert "+    def set_eagle3_layers_to_capture(self, layers_to_capture):" in result.stdout
    assert "+    # [EAGLE3-PATCH] decoder-v2:" in result.stdout
    assert "dry run: nothing was written" in result.stderr and "dry run" not in result.stdout
    assert snapshot(site) == before


def test_json_schema(runner: CliRunner, site: Path) -> None:
    code, payload = run_json(runner, "apply", "--sglang-root", str(site))
    assert code == EXIT_OK
    assert payload["state"] == "patched"
    assert payload["sglang"] == {
        "root": str((site / "sglang").resolve()),
        "version": "0.5.21",
        "layout": "wheel",
        "found_by": f"--sglang-root {site}",
    }
    files = {f["name"]: f for f in payload["files"]}
    assert files["qwen3_5.py"]["changed"] is True
    assert {c["state"] for c in files["qwen3_5.py"]["classes"]} == {"patched"}
    code, payload = run_json(runner, "check", "--sglang-root", str(site))
    assert (code, payload["state"], payload["exit_code"]) == (EXIT_OK, "patched", EXIT_OK)
    assert not any(f["changed"] for f in payload["files"])


def test_status_table(runner: CliRunner, site: Path) -> None:
    result = run_cli(runner, "status", "--sglang-root", str(site))
    assert result.exit_code == EXIT_OK
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["file", "class", "state", "detail"]
    assert any(line.split()[:3] == ["qwen3_5_text.py", "Qwen3_5ForCausalLM", "unpatched"] for line in lines)


def test_native_install_is_left_alone(runner: CliRunner, make_install: MakeInstall) -> None:
    site = make_install("native")
    before = snapshot(site)
    for command in ("apply", "check", "revert"):
        result = run_cli(runner, command, "--sglang-root", str(site))
        assert result.exit_code == EXIT_OK, (command, result.output)
    assert snapshot(site) == before


@pytest.mark.parametrize("command", ["apply", "check", "status"])
def test_unsupported_exits_3_and_writes_nothing(runner: CliRunner, make_install: MakeInstall, command: str) -> None:
    site = make_install("pre_capture")
    before = snapshot(site)
    result = run_cli(runner, command, "--sglang-root", str(site))
    assert result.exit_code == EXIT_UNSUPPORTED
    assert "qwen3_5.py" in result.stderr and "_is_layer_to_capture" in result.stderr
    assert snapshot(site) == before


@pytest.mark.parametrize("shape", ["pre_capture", "native"])
def test_revert_with_nothing_of_ours_is_done_whatever_the_layout(
    runner: CliRunner, make_install: MakeInstall, shape: str
) -> None:
    """The README's exit 0 for revert: "original restored or nothing to do", unsupported releases included."""
    site = make_install(shape)
    before = snapshot(site)
    result = run_cli(runner, "revert", "--sglang-root", str(site))
    assert result.exit_code == EXIT_OK, result.output
    assert "nothing to revert" in result.stdout
    assert snapshot(site) == before


@pytest.mark.parametrize("command", ["apply", "check", "revert", "status"])
def test_not_found_exits_5(runner: CliRunner, tmp_path: Path, command: str) -> None:
    result = run_cli(runner, command, "--sglang-root", str(tmp_path))
    assert result.exit_code == EXIT_NOT_FOUND
    assert str(tmp_path) in result.stderr and "--sglang-root" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2(runner: CliRunner, site: Path) -> None:
    assert run_cli(runner, "apply", "--sglang-root", str(site), "--python", sys.executable).exit_code == EXIT_USAGE
    assert run_cli(runner, "apply", "--no-such-flag").exit_code == EXIT_USAGE
    assert run_cli(runner, "frobnicate").exit_code == EXIT_USAGE


def test_environment_variable_names_the_root(runner: CliRunner, site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EAGLE3_PATCH_SGLANG_ROOT", str(site))
    code, payload = run_json(runner, "check")
    assert code == EXIT_UNPATCHED
    assert payload["sglang"]["found_by"] == f"EAGLE3_PATCH_SGLANG_ROOT={site}"


def test_drift_refused_everywhere_until_forced(runner: CliRunner, site: Path) -> None:
    run_cli(runner, "apply", "--sglang-root", str(site))
    target = models(site) / "qwen3_5.py"
    edited = target.read_bytes().replace(
        b"layer_ids = list(layers_to_capture)", b"layer_ids = sorted(layers_to_capture)"
    )
    target.write_bytes(edited)
    before = snapshot(site)
    for command in ("check", "apply", "revert"):
        result = run_cli(runner, command, "--sglang-root", str(site))
        assert result.exit_code == EXIT_DRIFT, command
        assert str(target) in result.stderr
    assert "revert --force" in result.stderr
    assert snapshot(site) == before
    forced = run_cli(runner, "revert", "--force", "--sglang-root", str(site))
    assert forced.exit_code == EXIT_OK, forced.output
    assert target.read_bytes() == (FIXTURES / "capture_no_hook" / "qwen3_5.py").read_bytes()
    assert (models(site) / ("qwen3_5.py" + EDITED_SUFFIX)).read_bytes() == edited
    assert not (models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)).exists()
    assert not (models(site) / LEDGER_NAME).exists()
    # A second forced round keeps the first kept copy too.
    run_cli(runner, "apply", "--sglang-root", str(site))
    target.write_bytes(target.read_bytes() + b"# second edit\n")
    assert run_cli(runner, "revert", "--force", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert (models(site) / ("qwen3_5.py" + EDITED_SUFFIX)).read_bytes() == edited
    assert (models(site) / ("qwen3_5.py" + EDITED_SUFFIX + ".1")).read_bytes().endswith(b"# second edit\n")


def test_reinstall_over_patched_file_is_simply_unpatched(runner: CliRunner, site: Path) -> None:
    """The file is its original again; the backup beside it holds other bytes, found nowhere else: kept, not lost."""
    run_cli(runner, "apply", "--sglang-root", str(site))
    backup = models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)
    stale = b"# a stale backup from another release\n"
    backup.write_bytes(stale)
    shutil.copyfile(FIXTURES / "capture_no_hook" / "qwen3_5.py", models(site) / "qwen3_5.py")
    checked = run_cli(runner, "check", "--sglang-root", str(site))
    assert checked.exit_code == EXIT_UNPATCHED
    assert f"{backup}: backup from before the file was reinstalled" in checked.stderr
    reverted = run_cli(runner, "revert", "--sglang-root", str(site))
    assert reverted.exit_code == EXIT_OK
    kept = models(site) / ("qwen3_5.py" + KEPT_SUFFIX)
    assert f"kept: {backup.name} as {kept.name}" in reverted.stdout
    assert not backup.exists(), "never restored over a reinstall"
    assert kept.read_bytes() == stale, "its bytes exist nowhere else: kept under the documented name"
    assert (models(site) / "qwen3_5.py").read_bytes() == (FIXTURES / "capture_no_hook" / "qwen3_5.py").read_bytes()
    assert "stale backup" not in run_cli(runner, "check", "--sglang-root", str(site)).stderr
    assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert backup.read_bytes() == (FIXTURES / "capture_no_hook" / "qwen3_5.py").read_bytes()
    assert run_cli(runner, "revert", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert (models(site) / "qwen3_5.py").read_bytes() == (FIXTURES / "capture_no_hook" / "qwen3_5.py").read_bytes()
    assert kept.read_bytes() == stale


def test_damaged_backup_falls_back_to_removing_blocks(runner: CliRunner, site: Path) -> None:
    run_cli(runner, "apply", "--sglang-root", str(site))
    backup = models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)
    backup.write_bytes(backup.read_bytes()[:100])
    assert run_cli(runner, "revert", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert (models(site) / "qwen3_5.py").read_bytes() == (FIXTURES / "capture_no_hook" / "qwen3_5.py").read_bytes()


def test_no_intact_original_refuses_revert_with_reinstall_hint(runner: CliRunner, site: Path) -> None:
    run_cli(runner, "apply", "--sglang-root", str(site))
    target = models(site) / "qwen3_5.py"
    target.write_bytes(target.read_bytes() + b"# edit\n")
    (models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)).unlink()
    before = snapshot(site)
    result = run_cli(runner, "revert", "--force", "--sglang-root", str(site))
    assert result.exit_code == EXIT_DRIFT
    assert f"pip install --upgrade --target {site} --force-reinstall --no-deps sglang==0.5.21" in result.stderr
    assert snapshot(site) == before


def test_truncated_ledger_is_named_and_the_backup_vouches_instead(runner: CliRunner, site: Path) -> None:
    run_cli(runner, "apply", "--sglang-root", str(site))
    ledger = models(site) / LEDGER_NAME
    ledger.write_bytes(ledger.read_bytes()[:40])
    checked = run_cli(runner, "check", "--sglang-root", str(site))
    assert checked.exit_code == EXIT_OK
    assert f"{ledger}: unreadable ledger" in checked.stderr
    assert run_cli(runner, "revert", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert (models(site) / "qwen3_5.py").read_bytes() == (FIXTURES / "capture_no_hook" / "qwen3_5.py").read_bytes()
    assert not ledger.exists()


def test_truncated_ledger_and_backup_with_an_edit_refuse_with_the_reinstall_hint(runner: CliRunner, site: Path) -> None:
    run_cli(runner, "apply", "--sglang-root", str(site))
    target = models(site) / "qwen3_5.py"
    target.write_bytes(target.read_bytes() + b"# edit\n")
    ledger = models(site) / LEDGER_NAME
    ledger.write_bytes(ledger.read_bytes()[:40])
    backup = models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)
    backup.write_bytes(backup.read_bytes()[:100])
    before = snapshot(site)
    result = run_cli(runner, "revert", "--force", "--sglang-root", str(site))
    assert result.exit_code == EXIT_DRIFT
    assert f"pip install --upgrade --target {site} --force-reinstall --no-deps sglang==0.5.21" in result.stderr
    assert snapshot(site) == before


def test_older_blocks_are_refreshed_in_place(runner: CliRunner, make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook", "patched_old")
    original = FIXTURES / "capture_no_hook" / "qwen3_5.py"
    shutil.copyfile(original, models(site) / ("qwen3_5.py" + BACKUP_SUFFIX))
    assert run_cli(runner, "check", "--sglang-root", str(site)).exit_code == EXIT_UNPATCHED
    result = run_cli(runner, "apply", "--sglang-root", str(site))
    assert result.exit_code == EXIT_OK, result.output
    assert "replaced an older [EAGLE3-PATCH] block" in result.stdout
    text = (models(site) / "qwen3_5.py").read_text()
    assert text.count("def set_eagle3_layers_to_capture") == 3
    assert "one-shot script" not in text
    assert run_cli(runner, "revert", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert (models(site) / "qwen3_5.py").read_bytes() == original.read_bytes()


def _version_1_marker(ident: str) -> str:
    """The marker line as eagle3-patch wrote it up to template version 1: ``# [EAGLE3-PATCH decoder-v1] ...``."""
    return f"# [EAGLE3-PATCH {ident}] added by eagle3-patch for EAGLE-3 aux hidden-state capture"


def test_blocks_with_the_version_1_marker_are_refreshed_in_place(
    runner: CliRunner, make_install: MakeInstall, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files patched by the previous release carry no literal ``[EAGLE3-PATCH]``: apply refreshes them."""
    site = make_install("capture_no_hook")
    original = (models(site) / "qwen3_5.py").read_bytes()
    spec = load_spec()
    old = dataclasses.replace(spec, templates=tuple(Template(t.name, 1, t.source) for t in spec.templates))
    with monkeypatch.context() as previous_release:
        previous_release.setattr(transform, "marker_line", _version_1_marker)
        plan = plan_apply(classify_install(locate_root(site, found_by="test"), old), old)
    assert plan.write is not None
    execute(plan.write)
    # As the previous release left it: its ledger names the targets.toml it shipped.
    ledger_path = models(site) / LEDGER_NAME
    ledger = json.loads(ledger_path.read_text())
    ledger["targets_sha256"] = hashlib.sha256(b"targets.toml with template version 1").hexdigest()
    ledger_path.write_text(json.dumps(ledger))
    before = (models(site) / "qwen3_5.py").read_text()
    assert "# [EAGLE3-PATCH decoder-v1]" in before and "[EAGLE3-PATCH]" not in before

    assert run_cli(runner, "check", "--sglang-root", str(site)).exit_code == EXIT_UNPATCHED
    result = run_cli(runner, "apply", "--sglang-root", str(site))
    assert result.exit_code == EXIT_OK, result.output
    text = (models(site) / "qwen3_5.py").read_text()
    # One literal marker per inserted block: the decoder and the two wrappers.
    assert text.count("[EAGLE3-PATCH]") == 3 == text.count("def set_eagle3_layers_to_capture")
    assert text.count("# [EAGLE3-PATCH] decoder-v2:") == 1 and text.count("# [EAGLE3-PATCH] wrapper-v2:") == 2
    assert "-v1]" not in text
    assert run_cli(runner, "check", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert run_cli(runner, "revert", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert (models(site) / "qwen3_5.py").read_bytes() == original


def test_unwritable_folder_exits_6_and_changes_nothing(runner: CliRunner, site: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores folder permissions; the read-only file case covers exit 6 here")
    folder = models(site)
    before = snapshot(site)
    folder.chmod(0o555)
    try:
        result = run_cli(runner, "apply", "--sglang-root", str(site))
    finally:
        folder.chmod(0o755)
    assert result.exit_code == EXIT_CANNOT_WRITE
    assert snapshot(site) == before


def test_read_only_file_exits_6_and_changes_nothing(runner: CliRunner, site: Path) -> None:
    target = models(site) / "qwen3_5_text.py"
    target.chmod(0o444)
    before = snapshot(site)
    result = run_cli(runner, "apply", "--sglang-root", str(site))
    assert result.exit_code == EXIT_CANNOT_WRITE
    assert str(target) in result.stderr and "read-only" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(site) == before


def test_console_script_piped_output_is_plain(site: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    completed = subprocess.run(
        [sys.executable, "-m", "eagle3_patch", "status", "--sglang-root", str(site)],
        capture_output=True,
        env=env,
        check=False,
    )
    assert completed.returncode == EXIT_OK
    assert b"\x1b[" not in completed.stdout + completed.stderr
    assert b"Qwen3_5MoeForConditionalGeneration" in completed.stdout


def test_json_error_object(runner: CliRunner, tmp_path: Path) -> None:
    code, payload = run_json(runner, "check", "--sglang-root", str(tmp_path))
    assert code == EXIT_NOT_FOUND
    assert payload["state"] == "not-found" and str(tmp_path) in payload["error"]
    json.dumps(payload)


def test_symlinked_model_file_gets_a_private_copy_and_revert_relinks(
    runner: CliRunner, site: Path, tmp_path: Path
) -> None:
    """uv's symlink link-mode: the shared file in the store is never written; revert puts the link back."""
    store = tmp_path / "store"
    store.mkdir()
    link = models(site) / "qwen3_5.py"
    real = store / "qwen3_5.py"
    shutil.move(link, real)
    link.symlink_to(real)
    original = real.read_bytes()
    stale = models(site) / "__pycache__" / "qwen3_5.cpython-311.pyc"
    stale.parent.mkdir()
    stale.write_bytes(b"compiled under the link's name")
    assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert not link.is_symlink() and b"[EAGLE3-PATCH]" in link.read_bytes()
    assert real.read_bytes() == original and sorted(p.name for p in store.iterdir()) == ["qwen3_5.py"]
    assert not stale.exists()
    assert (models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)).read_bytes() == original
    ledger = json.loads((models(site) / LEDGER_NAME).read_text())
    assert ledger["files"]["qwen3_5.py"]["link"] == str(real)
    assert run_cli(runner, "check", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert run_cli(runner, "revert", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert link.is_symlink() and os.readlink(link) == str(real) and real.read_bytes() == original
    assert not (models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)).exists()


def test_a_linked_models_folder_is_refused(runner: CliRunner, site: Path, tmp_path: Path) -> None:
    """Writing through a linked folder would write into whatever it links to: exit 6, nothing changed."""
    store = tmp_path / "store-models"
    shutil.move(models(site), store)
    models(site).symlink_to(store)
    before = {p.name: p.read_bytes() for p in store.iterdir() if p.is_file()}
    code, payload = run_json(runner, "apply", "--sglang-root", str(site))
    assert code == EXIT_CANNOT_WRITE and "outside the install" in payload["error"]
    assert {p.name: p.read_bytes() for p in store.iterdir() if p.is_file()} == before


def test_blocks_from_an_older_tool_vouched_by_pip_record(runner: CliRunner, make_install: MakeInstall) -> None:
    """A one-shot script patched the file and left no backup: pip's RECORD proves the original."""
    site = make_install("capture_no_hook", "patched_old", version="0.5.12")
    original = (FIXTURES / "capture_no_hook" / "qwen3_5.py").read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(original).digest()).rstrip(b"=").decode()
    (site / "sglang-0.5.12.dist-info" / "RECORD").write_text(f"sglang/srt/models/qwen3_5.py,sha256={digest},1\n")
    code, payload = run_json(runner, "check", "--sglang-root", str(site))
    assert code == EXIT_UNPATCHED
    assert [c["state"] for c in payload["files"][0]["classes"]] == ["patched-old", "patched-old", "unpatched"]
    assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert (models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)).read_bytes() == original
    assert run_cli(runner, "check", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert run_cli(runner, "revert", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert (models(site) / "qwen3_5.py").read_bytes() == original


IMPORTS_AFTER = """
import sys
before = set(sys.modules)
import contextlib, io
from eagle3_patch.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
imported = sorted(set(sys.modules) - before)
print(code, *imported)
"""


def imported_by(*args: str, cwd: Path | None = None) -> tuple[int, set[str]]:
    """Run one command in a fresh interpreter; the modules it imported beyond interpreter start-up."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS_AFTER, *args], capture_output=True, text=True, check=True, cwd=cwd
    )
    code, *imported = done.stdout.split()
    return int(code), {name.split(".")[0] if name.startswith(("libcst", "rich")) else name for name in imported}


def test_check_on_a_patched_install_never_loads_the_patching_pipeline(site: Path) -> None:
    """The ledger vouches by hashes: no classifier, no libcst, no writer; --json classifies, without libcst."""
    assert run_cli(CliRunner(), "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    heavy = {"libcst", "rich", "filelock", "eagle3_patch.transform", "eagle3_patch.plan", "eagle3_patch.write"}
    code, imported = imported_by("check", "--sglang-root", str(site))
    assert code == EXIT_OK
    assert not imported & (heavy | {"packaging.requirements", "eagle3_patch.classify", "eagle3_patch.spec"})
    code, imported = imported_by("check", "--json", "--sglang-root", str(site))
    assert code == EXIT_OK
    assert "eagle3_patch.classify" in imported and not imported & heavy


def test_pins_reads_common_requirements_without_heavy_imports(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("sglang[all]==0.5.21 ; python_version >= '3.10'\ntorch==2.9.1\n")
    (tmp_path / "Dockerfile").write_text('ARG V=0.5.21\nRUN pip install "sglang==${V}"\n')
    code, imported = imported_by("pins", cwd=tmp_path)
    assert code == EXIT_OK
    heavy = {"libcst", "rich", "pathlib", "eagle3_patch.spec", "eagle3_patch.locate", "packaging.requirements"}
    assert not imported & heavy


def _after_patch(site: Path, change: str) -> None:
    """The install left by ``apply`` and then one of the changes a Docker build or a person makes."""
    folder = models(site)
    if change == "edited":
        (folder / "qwen3_5.py").write_bytes((folder / "qwen3_5.py").read_bytes() + b"# edit\n")
    elif change == "new target file":  # an upgrade brought a file the ledger does not know
        shutil.copyfile(FIXTURES / "text_wrapper" / "qwen3_5_text.py", folder / "qwen3_5_text.py")
    elif change == "ledger cut":
        (folder / LEDGER_NAME).write_bytes((folder / LEDGER_NAME).read_bytes()[:50])
    elif change == "ledger gone":
        (folder / LEDGER_NAME).unlink()
    elif change == "reinstalled":
        shutil.copyfile(FIXTURES / "capture_no_hook" / "qwen3_5.py", folder / "qwen3_5.py")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("none", EXIT_OK),
        ("edited", EXIT_DRIFT),
        ("new target file", EXIT_UNPATCHED),
        ("ledger cut", EXIT_OK),
        ("ledger gone", EXIT_OK),
        ("reinstalled", EXIT_UNPATCHED),
    ],
)
def test_check_and_check_json_decide_by_the_same_rules(
    runner: CliRunner, make_install: MakeInstall, change: str, expected: int
) -> None:
    site = make_install("capture_no_hook")
    assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    _after_patch(site, change)
    plain = run_cli(runner, "check", "--sglang-root", str(site))
    code, payload = run_json(runner, "check", "--sglang-root", str(site))
    assert plain.exit_code == code == payload["exit_code"] == expected, plain.output
    assert f"{payload['state']}:" in plain.output


def _broken_leave_class(self: object, original_node: object, updated_node: object) -> object:
    raise RuntimeError("a bug in the transformer")


@pytest.mark.parametrize(
    ("command", "shape"),
    [
        pytest.param("apply", "unpatched", id="apply transforms"),
        pytest.param("status", "older blocks", id="classify strips older blocks"),
        pytest.param("check", "ledger gone", id="classify re-renders current blocks"),
    ],
)
def test_a_transformer_bug_is_an_internal_error_never_a_state(
    runner: CliRunner,
    make_install: MakeInstall,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    command: str,
    shape: str,
) -> None:
    """classify used to read any exception from libcst as "not ours / does not reproduce"; now it is exit 70."""
    site = make_install("capture_no_hook", *(("patched_old",) if shape == "older blocks" else ()))
    if shape == "older blocks":
        shutil.copyfile(FIXTURES / "capture_no_hook" / "qwen3_5.py", models(site) / ("qwen3_5.py" + BACKUP_SUFFIX))
    if shape == "ledger gone":
        assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
        (models(site) / LEDGER_NAME).unlink()
    logs = tmp_path / "logs"
    logs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(logs))
    monkeypatch.setattr(transform.InsertHookTransformer, "leave_ClassDef", _broken_leave_class)
    monkeypatch.setattr(transform.StripHookTransformer, "leave_ClassDef", _broken_leave_class)
    before = snapshot(site)
    result = run_cli(runner, command, "--sglang-root", str(site))
    assert result.exit_code == EXIT_INTERNAL, result.output
    assert "internal error (RuntimeError: a bug in the transformer); traceback in" in result.stderr
    (log,) = logs.iterdir()
    assert str(log) in result.stderr
    assert "Traceback" in log.read_text() and "transform.py" in log.read_text()
    assert snapshot(site) == before


def test_an_internal_error_without_a_writable_temp_folder_still_exits_70(
    runner: CliRunner, make_install: MakeInstall, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The bug boundary must not crash itself (it used to exit 1, which check uses for "unpatched")."""
    site = make_install("capture_no_hook")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    monkeypatch.setattr(transform.InsertHookTransformer, "leave_ClassDef", _broken_leave_class)
    result = run_cli(runner, "apply", "--sglang-root", str(site))
    assert result.exit_code == EXIT_INTERNAL
    assert "Traceback" in result.stderr and "a bug in the transformer" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("eagle3-patch: error: internal error (RuntimeError")


@pytest.mark.parametrize("depth", [3_000, 200_000])
def test_source_nested_too_deeply_is_unsupported_not_an_internal_error(
    runner: CliRunner, make_install: MakeInstall, depth: int
) -> None:
    """Python's parser gives up with RecursionError or MemoryError; that is exit 3, and libcst never sees it."""
    site = make_install("capture_no_hook")
    target = models(site) / "qwen3_5.py"
    target.write_bytes(target.read_bytes() + b"x = " + b"-" * depth + b"1\n")
    before = snapshot(site)
    for command in ("check", "apply"):
        result = run_cli(runner, command, "--sglang-root", str(site))
        assert result.exit_code == EXIT_UNSUPPORTED, (command, result.output)
        assert "nested too deeply" in result.stderr
    assert snapshot(site) == before


def test_a_ledger_nested_too_deeply_is_noted_and_ignored(runner: CliRunner, make_install: MakeInstall) -> None:
    site = make_install("capture_no_hook")
    assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    (models(site) / LEDGER_NAME).write_text("[" * 100_000 + "]" * 100_000)
    result = run_cli(runner, "check", "--sglang-root", str(site))
    assert result.exit_code == EXIT_OK, result.output  # the backups vouch instead
    assert "unreadable ledger (RecursionError" in result.stderr


@pytest.mark.parametrize("command", ["check", "status", "apply"])
def test_a_target_that_is_a_folder_is_unsupported(runner: CliRunner, make_install: MakeInstall, command: str) -> None:
    site = make_install("capture_no_hook")
    target = models(site) / "qwen3_5_text.py"
    target.mkdir()
    before = snapshot(site)
    result = run_cli(runner, command, "--sglang-root", str(site))
    assert result.exit_code == EXIT_UNSUPPORTED, result.output
    assert f"{target}: is a folder, not a model file" in result.stderr
    assert snapshot(site) == before


@pytest.mark.parametrize("command", ["check", "status", "apply", "revert"])
def test_an_unreadable_target_exits_6_with_one_line(
    runner: CliRunner, make_install: MakeInstall, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """Mode 000 as a non-root user (simulated: this suite may run as root, which reads anything)."""
    site = make_install("capture_no_hook")
    target = models(site) / "qwen3_5.py"
    before = snapshot(site)
    real_read = reading.read_regular_bytes

    def read_regular_bytes(path: Path | str, limit: int | None = None, *, follow_symlinks: bool = True) -> bytes:
        if Path(path) == target:
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path, limit, follow_symlinks=follow_symlinks)

    monkeypatch.setattr(reading, "read_regular_bytes", read_regular_bytes)
    result = run_cli(runner, command, "--sglang-root", str(site))
    assert result.exit_code == EXIT_CANNOT_WRITE, result.output
    assert (
        result.stderr == f"eagle3-patch: error: {target}: cannot read (Permission denied); nothing was changed. "
        "Run as the install's owner, or fix its permissions\n"
    )
    monkeypatch.undo()
    assert snapshot(site) == before


def test_next_step_hints_repeat_the_flags_that_chose_the_install(
    runner: CliRunner, make_install: MakeInstall, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Following a hint verbatim must act on the same install, not on the running interpreter's sglang."""
    import shlex

    site = make_install("capture_no_hook", name="my site")  # a space, so the hint must be quoted
    other = make_install("capture_no_hook", name="other")
    monkeypatch.setenv("EAGLE3_PATCH_SGLANG_ROOT", str(other))  # where a hint without flags would act
    checked = run_cli(runner, "check", "--sglang-root", str(site))
    hint = checked.stdout.split("run: ", 1)[1].strip()
    assert hint == shlex.join(["eagle3-patch", "apply", "--sglang-root", str(site)])
    applied = run_cli(runner, *shlex.split(hint)[1:])
    assert applied.exit_code == EXIT_OK, applied.output
    undo = applied.stdout.split("undo with: ", 1)[1].strip()
    assert undo == shlex.join(["eagle3-patch", "revert", "--sglang-root", str(site)])
    other_before = snapshot(other)
    assert run_cli(runner, *shlex.split(undo)[1:]).exit_code == EXIT_OK
    assert run_cli(runner, "check", "--sglang-root", str(site)).exit_code == EXIT_UNPATCHED
    assert snapshot(other) == other_before


@pytest.mark.parametrize("unique", [False, True], ids=["same-bytes", "bytes-found-nowhere-else"])
@pytest.mark.parametrize("command", ["apply", "revert"])
def test_a_stale_backup_beside_a_native_release_is_removed_once(
    runner: CliRunner, make_install: MakeInstall, command: str, unique: bool
) -> None:
    """After an upgrade to a release with the hook, our old backups are noted once and tidied by the next run:
    removed when the file itself has their bytes, else kept as *.eagle3-kept (a byte found nowhere else)."""
    site = make_install("native")
    backup = models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)
    native = (models(site) / "qwen3_5.py").read_bytes()
    old = b"# the original of the release before the upgrade\n" if unique else native
    backup.write_bytes(old)
    noted = run_cli(runner, "check", "--sglang-root", str(site)).stderr
    assert f"{backup}: " + ("backup from before" if unique else "stale backup") in noted
    code, payload = run_json(runner, command, "--sglang-root", str(site))
    assert code == EXIT_OK and payload["state"] == "native"
    assert payload["removed"] == [str(backup)]
    kept = models(site) / ("qwen3_5.py" + KEPT_SUFFIX)
    assert payload["kept"] == ({str(backup): str(kept)} if unique else {})
    assert not backup.exists()
    assert kept.exists() == unique and (not unique or kept.read_bytes() == old)
    assert (models(site) / "qwen3_5.py").read_bytes() == native
    again = run_cli(runner, "check", "--sglang-root", str(site))
    assert again.exit_code == EXIT_OK and "backup" not in again.stderr


def test_a_backup_that_is_a_symlink_is_never_removed(
    runner: CliRunner, make_install: MakeInstall, tmp_path: Path
) -> None:
    site = make_install("native")
    elsewhere = tmp_path / "not ours"
    elsewhere.write_bytes(b"someone else's file\n")
    (models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)).symlink_to(elsewhere)
    assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert run_cli(runner, "revert", "--sglang-root", str(site)).exit_code == EXIT_OK
    assert (models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)).is_symlink()
    assert elsewhere.read_bytes() == b"someone else's file\n"


def test_a_backup_that_is_a_symlink_is_never_trusted(
    runner: CliRunner, make_install: MakeInstall, tmp_path: Path
) -> None:
    """A symlinked backup and a ledger edited to match it would make revert copy any file over qwen3_5.py."""
    site = make_install("capture_no_hook")
    assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    elsewhere = tmp_path / "secrets.py"
    elsewhere.write_bytes(b"TOKEN = 'not a model file'\n")
    backup = models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)
    backup.unlink()
    backup.symlink_to(elsewhere)
    ledger_path = models(site) / LEDGER_NAME
    ledger = json.loads(ledger_path.read_text())
    ledger["files"]["qwen3_5.py"]["pristine_sha256"] = hashlib.sha256(elsewhere.read_bytes()).hexdigest()
    ledger_path.write_text(json.dumps(ledger))
    patched = (models(site) / "qwen3_5.py").read_bytes()
    result = run_cli(runner, "revert", "--sglang-root", str(site))
    assert result.exit_code == EXIT_DRIFT, result.output
    assert (models(site) / "qwen3_5.py").read_bytes() == patched, "never replaced by what the link points at"
    assert backup.is_symlink() and elsewhere.read_bytes() == b"TOKEN = 'not a model file'\n"


def test_a_ledger_edited_to_vouch_for_another_file_is_not_trusted(runner: CliRunner, release_site: object) -> None:
    """Backup swapped for another file's bytes, ledger hash edited to match: pip's RECORD disagrees, exit 4."""
    site = release_site("0.5.21")  # type: ignore[operator]
    assert run_cli(runner, "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    target, other = models(site) / "qwen3_5.py", models(site) / "qwen3_5_text.py"
    patched = target.read_bytes()
    impostor = (models(site) / "qwen3_5_text.py.eagle3-bak").read_bytes()
    (models(site) / ("qwen3_5.py" + BACKUP_SUFFIX)).write_bytes(impostor)
    ledger_path = models(site) / LEDGER_NAME
    ledger = json.loads(ledger_path.read_text())
    ledger["files"]["qwen3_5.py"]["pristine_sha256"] = hashlib.sha256(impostor).hexdigest()
    ledger_path.write_text(json.dumps(ledger))
    code, payload = run_json(runner, "revert", "--sglang-root", str(site))
    assert code == EXIT_DRIFT and "no intact copy of the original" in payload["error"], payload
    assert target.read_bytes() == patched and b"[EAGLE3-PATCH]" in other.read_bytes(), "nothing was changed"


def test_a_partial_write_names_the_command_that_finishes_the_job(
    runner: CliRunner, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eagle3_patch.commands import _install
    from eagle3_patch.errors import PartialWriteError

    def half_done(plan: object) -> None:
        raise PartialWriteError(
            "… nothing is lost. Fix the cause, then run the same command again to finish", path=site
        )

    monkeypatch.setattr(_install, "execute", half_done)
    code, payload = run_json(runner, "apply", "--sglang-root", str(site))
    assert code == EXIT_CANNOT_WRITE and payload["state"] == "partly-written"
    assert payload["error"].endswith(f"to finish: `eagle3-patch apply --sglang-root {site}`")


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--json", "--bogus"],
        ["apply", "--json", "--lock-timeout", "-1"],
        ["overlay", "--json"],
        ["doctor", "--json", "--draft", "d"],
        ["pins", "--json", "--no-such-flag"],
    ],
    ids=["unknown option", "bad value", "missing --out", "missing --target", "pins"],
)
def test_json_usage_errors_print_the_usage_error_object(args: list[str]) -> None:
    """click's own errors too: one object on stdout, exit 2, click's text still on stderr."""
    completed = subprocess.run(
        [sys.executable, "-m", "eagle3_patch", *args], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 2
    payload = json.loads(completed.stdout)
    assert payload == {"command": args[0], "state": "usage-error", "exit_code": 2, "error": payload["error"]}
    assert payload["error"] and payload["error"] in completed.stderr


#: Values no numeric option takes: not finite, negative, far too large, or not a number at all.
BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "1e400", "-1", "1e308", "9" * 5000, "ten"]


@pytest.mark.parametrize("value", BAD_NUMBERS, ids=[v if len(v) < 10 else f"{len(v)}-nines" for v in BAD_NUMBERS])
@pytest.mark.parametrize(
    "args",
    [
        ["apply", "--lock-timeout"],
        ["revert", "--lock-timeout"],
        ["verify", "--max-new-tokens"],
        ["doctor", "--target", "t", "--draft", "d", "--tp"],
    ],
    ids=["apply", "revert", "verify", "doctor"],
)
def test_every_numeric_option_refuses_what_is_not_a_bounded_number(
    runner: CliRunner, site: Path, args: list[str], value: str
) -> None:
    """A usage error from click (exit 2) before anything runs: nan once gave 70, inf waited forever."""
    before = snapshot(site)
    result = runner.invoke(cli, [*args, value, "--sglang-root", str(site)])
    assert result.exit_code == EXIT_USAGE, result.output
    assert "Invalid value for" in result.output and args[-1] in result.output
    assert snapshot(site) == before


@pytest.mark.parametrize(("option", "value"), [("--lock-timeout", "nan"), ("--lock-timeout", "inf")])
def test_a_bad_number_with_json_prints_the_usage_error_object(site: Path, option: str, value: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "eagle3_patch", "apply", "--json", option, value, "--sglang-root", str(site)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == EXIT_USAGE, completed.stderr
    payload = json.loads(completed.stdout)
    assert payload["command"] == "apply" and payload["state"] == "usage-error" and option in payload["error"]


@pytest.mark.parametrize("value", ["0", "0.5", "86400"])
def test_lock_timeouts_within_the_bounds_are_taken(runner: CliRunner, site: Path, value: str) -> None:
    assert run_cli(runner, "apply", "--lock-timeout", value, "--sglang-root", str(site)).exit_code == EXIT_OK


def test_every_numeric_option_is_bounded_and_finite() -> None:
    """Any numeric option, now or added later: a range with both ends, and a float one refuses nan."""
    import click

    numeric = [
        (name, param)
        for name, command in cli.commands.items()
        for param in command.params
        if isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType))
    ]
    assert len(numeric) >= 4, numeric
    for name, param in numeric:
        assert isinstance(param.type, click.types._NumberRangeBase), f"{name} {param.opts[0]} is unbounded"
        assert param.type.min is not None and param.type.max is not None, f"{name} {param.opts[0]}"
        bounds = f"{param.type.min:g} to {param.type.max:g}"
        assert bounds in (param.help or ""), f"{name} {param.opts[0]}: the help states the bounds ({bounds})"
        if isinstance(param.type, click.FloatRange):
            with pytest.raises(click.BadParameter):
                param.type.convert("nan", param, None)


def test_help_lists_every_exit_code_and_every_option_has_help() -> None:
    import click

    from eagle3_patch import errors
    from eagle3_patch.cli import cli

    helped = CliRunner().invoke(cli, ["--help"])
    codes = {v for k, v in vars(errors).items() if k.startswith("EXIT_")} | {130, 143}
    listed = {int(line.split()[0]) for line in helped.output.splitlines() if line.strip()[:1].isdigit()}
    assert codes <= listed, f"--help lacks exit codes {sorted(codes - listed)}"
    bare = [
        f"{name} {param.opts[0]}"
        for name, command in cli.commands.items()
        for param in command.params
        if isinstance(param, click.Option) and not param.help
    ]
    assert not bare, f"options without help text: {bare}"


def test_dry_run_output_is_a_patch_that_patch_and_git_apply_take(release_site, tmp_path: Path) -> None:
    """`apply --dry-run > x.patch` holds only the diff; from the install's folder it applies as apply would."""
    site = release_site("0.5.21")
    by_patch, by_git, by_tool = (tmp_path / name for name in ("by-patch", "by-git", "by-tool"))
    for copy in (by_patch, by_git, by_tool):
        shutil.copytree(site, copy)
    patch_file = tmp_path / "x.patch"
    with patch_file.open("wb") as stdout:
        dry = subprocess.run(
            [sys.executable, "-m", "eagle3_patch", "apply", "--dry-run", "--sglang-root", "."],
            cwd=by_patch,
            stdout=stdout,
            stderr=subprocess.PIPE,
            check=False,
        )
    assert dry.returncode == 0 and b"dry run: nothing was written" in dry.stderr
    text = patch_file.read_text()
    assert text.startswith("--- a/sglang/srt/models/qwen3_5.py\n"), text[:200]
    assert all(line[:1] in ("-", "+", "@", " ") for line in text.splitlines()), "only the diff on stdout"
    subprocess.run(["patch", "-p1", "--quiet", "-i", str(patch_file)], cwd=by_patch, check=True)
    subprocess.run(["git", "apply", str(patch_file)], cwd=by_git, check=True)
    subprocess.run([sys.executable, "-m", "eagle3_patch", "apply", "--sglang-root", "."], cwd=by_tool, check=True)
    for name in ("qwen3_5.py", "qwen3_5_text.py"):
        expected = (models(by_tool) / name).read_bytes()
        assert (models(by_patch) / name).read_bytes() == expected
        assert (models(by_git) / name).read_bytes() == expected
