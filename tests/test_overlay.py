"""overlay on real release files: what it writes (only under --out), what it hooks, and its import-time check.

Importing the package for real needs SGLang's whole stack; here the package
is imported against the release's own files on the path: a mismatch must warn
and import nothing of sglang, a match must go on to import the model modules
(which then fails here for want of SGLang's dependencies, and says so loudly).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from eagle3_patch.errors import EXIT_OK, EXIT_UNSUPPORTED, EXIT_USAGE
from eagle3_patch.marker import MARKER
from eagle3_patch.spec import load_spec
from tests.conftest import run_cli, run_json, snapshot


def overlay(site: Path, out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    return run_json(CliRunner(), "overlay", "--sglang-root", str(site), "--out", str(out), *extra)


def test_overlay_for_0_5_21_hooks_every_class_apply_would_and_changes_no_file(
    tmp_path: Path, release_site: Any
) -> None:
    site = release_site("0.5.21")
    before = snapshot(site)
    code, payload = overlay(site, tmp_path / "out")
    assert code == EXIT_OK and payload["state"] == "unpatched"
    assert snapshot(site) == before, "not a byte of the install changes"
    assert not any(p.name.startswith(".eagle3-patch") for p in site.iterdir()), "no lock is taken"
    init = tmp_path / "out" / "eagle3_overlay" / "__init__.py"
    assert payload["written"] == [str(init)] and init.stat().st_mode & 0o044 == 0o044
    source = init.read_text()
    assert MARKER in source
    expected = {(f.name.removesuffix(".py"), c.name, c.template) for f in load_spec().files for c in f.classes}
    assert {(h["module"], h["class"], h["template"]) for h in payload["hooks"]} == expected
    module = ast.parse(source)
    assigned = {t.id: n.value for n in module.body if isinstance(n, ast.Assign) for t in n.targets if hasattr(t, "id")}
    assert ast.literal_eval(assigned["SGLANG_VERSION"]) == "0.5.21"
    models = site / "sglang" / "srt" / "models"
    assert ast.literal_eval(assigned["SOURCES"]) == {
        name: hashlib.sha256((models / name).read_bytes()).hexdigest() for name in ("qwen3_5.py", "qwen3_5_text.py")
    }
    for template in ("decoder", "wrapper"):  # the same method bodies apply inserts
        body = load_spec().template(template).source.strip("\n").split("\n", 1)[1]
        assert body in source
    assert payload["env"] == {"PYTHONPATH": str(tmp_path / "out"), "SGLANG_EXTERNAL_MODEL_PACKAGE": "eagle3_overlay"}


def test_overlay_for_0_5_12_hooks_only_qwen3_5_py(tmp_path: Path, release_site: Any) -> None:
    code, payload = overlay(release_site("0.5.12"), tmp_path / "out", "--name", "capture_fix")
    assert code == EXIT_OK
    assert {h["module"] for h in payload["hooks"]} == {"qwen3_5"} and len(payload["hooks"]) == 3
    assert (tmp_path / "out" / "capture_fix" / "__init__.py").exists()


@pytest.mark.parametrize(
    ("version", "code", "state"), [("0.5.23", EXIT_OK, "native"), ("0.5.10", EXIT_UNSUPPORTED, "")]
)
def test_native_needs_none_and_unsupported_is_refused(
    tmp_path: Path, release_site: Any, version: str, code: int, state: str
) -> None:
    got, payload = overlay(release_site(version), tmp_path / "out")
    assert got == code and not (tmp_path / "out").exists()
    if state:
        assert payload["state"] == state and payload["written"] == []


def test_a_patched_install_needs_none(tmp_path: Path, release_site: Any) -> None:
    site = release_site("0.5.21")
    assert run_cli(CliRunner(), "apply", "--sglang-root", str(site)).exit_code == EXIT_OK
    code, payload = overlay(site, tmp_path / "out")
    assert code == EXIT_OK and payload["written"] == [] and payload["state"] == "patched"


@pytest.mark.parametrize(("inside", "name"), [(True, "eagle3_overlay"), (False, "not-a-package")])
def test_bad_out_or_name_is_a_usage_error(tmp_path: Path, release_site: Any, inside: bool, name: str) -> None:
    site = release_site("0.5.21")
    out = site / "sglang" / "overlay" if inside else tmp_path / "out"
    code, _ = overlay(site, out, "--name", name)
    assert code == EXIT_USAGE and not out.exists()


def _import(out: Path, site: Path) -> subprocess.CompletedProcess[str]:
    probe = (
        "import json, logging, sys; logging.basicConfig(level=logging.WARNING)\n"
        "try:\n    import eagle3_overlay\n"
        "except Exception as exc:\n    print(json.dumps({'raised': type(exc).__name__}))\n"
        "print(json.dumps({'sglang_models_imported': 'sglang.srt.models.qwen3_5' in sys.modules}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{out}{os.pathsep}{site}"},
        timeout=120,
        check=False,
    )


def test_a_stale_overlay_warns_and_changes_nothing(tmp_path: Path, release_site: Any) -> None:
    site = release_site("0.5.21")
    assert overlay(site, tmp_path / "out")[0] == EXIT_OK
    decoder = site / "sglang" / "srt" / "models" / "qwen3_5.py"
    decoder.write_bytes(decoder.read_bytes() + b"# reinstalled from another build\n")
    done = _import(tmp_path / "out", site)
    assert "EAGLE-3 capture is NOT enabled" in done.stderr and "qwen3_5.py is not the file" in done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"sglang_models_imported": False}


def test_a_matching_overlay_goes_on_to_hook_the_classes(tmp_path: Path, release_site: Any) -> None:
    """Here sglang's dependencies are missing, so the import fails: loudly, after the check passed."""
    site = release_site("0.5.21")
    assert overlay(site, tmp_path / "out")[0] == EXIT_OK
    done = _import(tmp_path / "out", site)
    assert "is not the file" not in done.stderr and "is installed; this overlay" not in done.stderr
    assert "EAGLE-3 capture is NOT enabled" in done.stderr and "raised" in done.stdout


def test_an_overlay_for_another_release_warns_and_changes_nothing(tmp_path: Path, release_site: Any) -> None:
    site = release_site("0.5.21")
    assert overlay(site, tmp_path / "out")[0] == EXIT_OK
    metadata = next(site.glob("sglang-*.dist-info")) / "METADATA"
    metadata.write_text(metadata.read_text().replace("Version: 0.5.21", "Version: 0.5.20", 1))
    done = _import(tmp_path / "out", site)
    assert "sglang 0.5.20 is installed; this overlay was generated for 0.5.21" in done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"sglang_models_imported": False}


def test_check_and_status_read_an_overlaid_install(tmp_path: Path, release_site: Any, monkeypatch: Any) -> None:
    site = release_site("0.5.21")
    root = ("--sglang-root", str(site))
    assert run_json(CliRunner(), "check", *root)[0] == 1, "unpatched without the overlay"
    assert overlay(site, tmp_path / "out")[0] == EXIT_OK
    code, payload = run_json(CliRunner(), "check", *root, "--overlay", str(tmp_path / "out"))
    assert code == EXIT_OK and payload["state"] == "overlaid"
    assert payload["overlay"] == {"package": str(tmp_path / "out" / "eagle3_overlay"), "gap": None}
    # As SGLang finds it: the two variables, no --overlay.
    monkeypatch.setenv("SGLANG_EXTERNAL_MODEL_PACKAGE", "eagle3_overlay")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "out"))
    code, payload = run_json(CliRunner(), "status", *root)
    assert code == EXIT_OK and payload["state"] == "overlaid"
    assert {c["state"] for f in payload["files"] for c in f["classes"]} == {"unpatched"}, "the files are as shipped"
    # A reinstalled file the overlay was not made for: unpatched again, and the reason.
    decoder = site / "sglang" / "srt" / "models" / "qwen3_5.py"
    decoder.write_bytes(decoder.read_bytes() + b"# rebuilt\n")
    code, payload = run_json(CliRunner(), "check", *root)
    assert code == 1 and payload["state"] == "unpatched"
    assert payload["overlay"]["gap"] == "qwen3_5.py changed since the overlay was generated"


def test_an_overlay_folder_without_the_package_is_a_usage_error(tmp_path: Path, release_site: Any) -> None:
    code, payload = run_json(
        CliRunner(), "check", "--sglang-root", str(release_site("0.5.21")), "--overlay", str(tmp_path)
    )
    assert code == EXIT_USAGE and "holds no overlay package eagle3_overlay" in payload["error"]


def test_another_package_named_by_the_environment_is_ignored(
    tmp_path: Path, release_site: Any, monkeypatch: Any
) -> None:
    (tmp_path / "their_models").mkdir()
    (tmp_path / "their_models" / "__init__.py").write_text("EntryClass = []\n")
    monkeypatch.setenv("SGLANG_EXTERNAL_MODEL_PACKAGE", "their_models")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    code, payload = run_json(CliRunner(), "check", "--sglang-root", str(release_site("0.5.21")))
    assert code == 1 and payload["state"] == "unpatched" and "overlay" not in payload


def test_verify_runs_its_levels_on_the_overlays_hooks(tmp_path: Path, release_site: Any) -> None:
    site = release_site("0.5.21")
    root = ("--sglang-root", str(site))
    code, payload = run_json(CliRunner(), "verify", *root)
    assert code == 1 and payload["levels"]["static"]["status"] == "failed", "unpatched: the chain is broken"
    assert overlay(site, tmp_path / "out")[0] == EXIT_OK
    code, payload = run_json(CliRunner(), "verify", *root, "--overlay", str(tmp_path / "out"))
    assert payload["state"] == "overlaid"
    assert payload["levels"]["static"]["status"] == "passed", payload["levels"]["static"]["detail"]
    assert payload["levels"]["behaviour"]["status"] == "passed", payload["levels"]["behaviour"]["detail"]
    assert code == EXIT_OK
    # The levels really run the overlay's code: an overlay whose wrapper forgets the +1 shift fails.
    init = tmp_path / "out" / "eagle3_overlay" / "__init__.py"
    shifted = "[layer_id + 1 for layer_id in layer_ids]"
    assert shifted in init.read_text()
    init.write_text(init.read_text().replace(shifted, "[layer_id for layer_id in layer_ids]"))
    code, payload = run_json(CliRunner(), "verify", *root, "--overlay", str(tmp_path / "out"))
    assert code == 1 and payload["levels"]["behaviour"]["status"] == "failed"
