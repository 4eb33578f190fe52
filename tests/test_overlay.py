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
from collections.abc import Callable
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


# --- overlay writes only over what it wrote, and never into the install's own folder -------------


@pytest.fixture
def unpatched(make_install: Any) -> Path:
    """A small unpatched install (fixture shapes): overlay has classes to hook."""
    return make_install("capture_no_hook", version="0.5.11")


def refused(site: Path, out: Path, *extra: str) -> str:
    """overlay's error for ``out``: exit 2, one line; the folder's files are as they were."""
    before = snapshot(out) if out.is_dir() else None
    site_before = snapshot(site)
    code, payload = overlay(site, out, *extra)
    assert code == EXIT_USAGE, payload
    assert "\n" not in payload["error"]
    assert snapshot(site) == site_before, "not a byte of the install changes"
    if before is not None:
        assert snapshot(out) == before
    return str(payload["error"])


def test_out_as_the_site_packages_that_holds_sglang_is_refused(unpatched: Path) -> None:
    """`--out <site-packages> --name sglang` once replaced sglang/__init__.py with the overlay."""
    error = refused(unpatched, unpatched, "--name", "sglang")
    assert str(unpatched) in error and "pick another folder" in error


@pytest.mark.parametrize("name", ["eagle3_overlay", "sglang"])
def test_out_inside_the_site_packages_or_the_package_is_refused(unpatched: Path, name: str) -> None:
    for out in (unpatched, unpatched / "overlays", unpatched / "sglang", unpatched / "sglang" / "srt"):
        error = refused(unpatched, out, "--name", name)
        assert "pick another folder" in error, error
        assert not (out / name / "__init__.py").exists() or name == "sglang"


def test_out_through_a_link_to_the_site_packages_is_refused(unpatched: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(unpatched)
    assert "pick another folder" in refused(unpatched, link)
    assert not (unpatched / "eagle3_overlay").exists()


def test_out_beside_a_checkout_package_is_refused(tmp_path: Path) -> None:
    """A source checkout's python/ folder is the sys.path entry an editable install adds."""
    from tests.test_locate import make_checkout

    package = make_checkout(tmp_path / "clone", version_file="_version.py")
    code, payload = run_json(
        CliRunner(), "overlay", "--sglang-root", str(tmp_path / "clone"), "--out", str(package.parent), "--json"
    )
    assert code == EXIT_USAGE and "pick another folder" in payload["error"], payload
    assert not (package.parent / "eagle3_overlay").exists()


@pytest.mark.parametrize(
    "make",
    [
        lambda p: (p.mkdir(), (p / "__init__.py").write_text("VALUE = 1\n")),
        lambda p: (p.mkdir(), (p / "__init__.py").write_text('"""Made by hand. [EAGLE3-PATCH]"""\n')),
        lambda p: (p.mkdir(), (p / "data.txt").write_text("a namespace package or a data folder\n")),
        lambda p: p.write_text("a file where the package would go\n"),
        lambda p: (p.mkdir(), (p / "__init__.py").symlink_to(p.parent / "elsewhere.py")),
    ],
    ids=["a-package", "a-package-naming-the-marker", "a-folder-without-init", "a-file", "a-linked-init"],
)
def test_a_package_folder_that_is_not_our_overlay_is_refused(
    unpatched: Path, tmp_path: Path, make: Callable[[Path], object]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "elsewhere.py").write_text("VALUE = 2\n")
    make(out / "mypkg")
    error = refused(unpatched, out, "--name", "mypkg")
    assert error.startswith(f"{out / 'mypkg'}: ") and "not an overlay eagle3-patch wrote" in error, error


def test_a_module_of_the_same_name_under_out_is_refused(unpatched: Path, tmp_path: Path) -> None:
    """out/mypkg/ would shadow out/mypkg.py for every import of mypkg."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "mypkg.py").write_text("VALUE = 1\n")
    assert str(out / "mypkg.py") in refused(unpatched, out, "--name", "mypkg")
    assert not (out / "mypkg").exists()


@pytest.mark.parametrize("name", ["sglang", "torch", "json"])
def test_a_name_that_would_shadow_sglang_a_package_beside_it_or_the_standard_library_is_refused(
    unpatched: Path, tmp_path: Path, name: str
) -> None:
    (unpatched / "torch").mkdir()
    (unpatched / "torch" / "__init__.py").write_text("")
    out = tmp_path / "out"
    assert "shadow" in refused(unpatched, out, "--name", name)
    assert not out.exists()


def test_running_overlay_again_replaces_our_own_package(unpatched: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert overlay(unpatched, out)[0] == EXIT_OK
    init = out / "eagle3_overlay" / "__init__.py"
    first = init.read_bytes()
    (out / "eagle3_overlay" / "__pycache__").mkdir()  # an import left its bytecode
    (out / "eagle3_overlay" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\0")
    init.write_bytes(first.replace(b"SGLANG_VERSION = '0.5.11'", b"SGLANG_VERSION = '0.5.10'"))
    code, payload = overlay(unpatched, out)
    assert code == EXIT_OK and payload["written"] == [str(init)]
    assert init.read_bytes() == first


def test_an_empty_folder_of_that_name_is_used(unpatched: Path, tmp_path: Path) -> None:
    (tmp_path / "out" / "eagle3_overlay").mkdir(parents=True)
    assert overlay(unpatched, tmp_path / "out")[0] == EXIT_OK
    assert MARKER in (tmp_path / "out" / "eagle3_overlay" / "__init__.py").read_text()
