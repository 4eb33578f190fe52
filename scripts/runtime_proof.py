#!/usr/bin/env python3
"""Prove EAGLE-3 capture on the real SGLang, on this CPU: unpatched fails, patched captures.

    python scripts/runtime_proof.py --sglang 0.5.21 --json

For one SGLang release this script

1. builds (once) a runtime environment under ``$EAGLE3_PATCH_RUNTIME_CACHE``
   (default ``~/.cache/eagle3-patch/runtime``)/<version>: a venv with that
   release and its ``Requires-Dist`` for CPU (the exclusions below, each with its
   reason), plus eagle3-patch from this checkout;
2. writes tiny Qwen3.5 targets and an EAGLE-3 drafter with the project's own
   writer (real safetensors weights);
3. serves each target with EAGLE-3 through ``sglang.Engine`` unpatched, then
   after ``eagle3-patch apply``, recording capture evidence inside SGLang's
   scheduler process (``eagle3_patch/verify/capture_evidence.py``), and decodes with and
   without EAGLE-3 to compare tokens;
4. runs ``eagle3-patch revert`` and compares the files with the wheel's RECORD.

With ``--mode overlay`` step 3 serves through ``eagle3-patch overlay`` instead
(``SGLANG_EXTERNAL_MODEL_PACKAGE``, the package on ``PYTHONPATH``) and step 4
checks that no model file changed at all (``install_untouched``).

The child process is the same ``_cuda_run.py`` that ``eagle3-patch verify
--cuda`` runs, with the same checkpoint writer and Engine arguments; what SGLang
needs on a CPU and not on CUDA lives in ``scripts/cpu_workarounds.py``.

Progress and a short summary go to stderr; ``--json`` prints one JSON object last
on stdout. Exit status: 0 when every target that ran met the proof, 1 otherwise,
2 when the environment could not be built.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from eagle3_patch.fetch import FetchError, fetch_wheel  # noqa: E402
from eagle3_patch.locate import locate_root  # noqa: E402
from eagle3_patch.verify import capture_evidence, tiny_checkpoints  # noqa: E402
from eagle3_patch.verify._cuda_run import last_exception, read_result  # noqa: E402
from eagle3_patch.verify.cuda import copy_child_scripts, judge_runs, token_mismatch  # noqa: E402
from eagle3_patch.verify.engine_args import (  # noqa: E402
    common_options,
    eagle3_options,
    engine_kwargs,
    read_server_args,
)

sys.path.insert(0, str(REPO / "scripts"))
import cpu_workarounds  # noqa: E402

#: Prompts as token ids: the Engine runs with skip_tokenizer_init on a CPU.
PROMPT_IDS = [[84, 104, 101, 32, 99, 97, 112, 105, 116, 97, 108], [100, 101, 102, 32, 102, 105, 98, 40]]
TARGETS = (
    tiny_checkpoints.TEXT_ARCHITECTURE,
    tiny_checkpoints.MULTIMODAL_ARCHITECTURE,
    tiny_checkpoints.MOE_ARCHITECTURE,
)
#: Ways to break our hook on purpose after apply, to show that the proof can fail.
SABOTAGE = {
    # Draft id i captured as layer i instead of i + 1.
    "shift0": ("[layer_id + 1 for layer_id in layer_ids]", "[layer_id for layer_id in layer_ids]"),
    # One asked-for layer left unflagged.
    "drop-one": ("for layer_id in layer_ids:\n", "for layer_id in layer_ids[1:]:\n"),
}


def log(message: str) -> None:
    sys.stderr.write(f"[runtime-proof] {message}\n")
    sys.stderr.flush()


# --- the runtime environment --------------------------------------------------


def cache_root() -> Path:
    configured = os.environ.get("EAGLE3_PATCH_RUNTIME_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "eagle3-patch" / "runtime"


def download_wheel(version: str) -> Path:
    """The release's wheel from the tests' wheel cache (downloaded once, shared with the corpus tests)."""
    try:
        return fetch_wheel(version)
    except FetchError as exc:
        raise SystemExit(str(exc)) from exc


def wheel_metadata(wheel: Path) -> tuple[list[str], dict[str, str]]:
    """The wheel's Requires-Dist lines and the sha256 of every file in its RECORD."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        record = next(n for n in names if n.endswith(".dist-info/RECORD"))
        requires = [
            line.split(":", 1)[1].strip()
            for line in archive.read(meta).decode("utf-8").splitlines()
            if line.startswith("Requires-Dist:")
        ]
        hashes: dict[str, str] = {}
        for row in csv.reader(io.StringIO(archive.read(record).decode("utf-8"))):
            if len(row) >= 2 and row[1].startswith("sha256="):
                digest = base64.urlsafe_b64decode(row[1][len("sha256=") :] + "==").hex()
                hashes[row[0]] = digest
    return requires, hashes


def runtime_requirements(requires: list[str]) -> tuple[list[str], list[dict[str, str]]]:
    """Requires-Dist for this machine, less the exclusions, plus the pins the CPU path needs."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    kept: list[str] = []
    excluded: list[dict[str, str]] = []
    for line in requires:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        reason = cpu_workarounds.EXCLUDED_REQUIREMENTS.get(canonicalize_name(requirement.name))
        if reason:
            excluded.append({"requirement": line, "reason": reason})
            continue
        kept.append(line)
    kept.extend(cpu_workarounds.ADDED_REQUIREMENTS)
    return kept, excluded


#: The release whose dependency set every runtime environment uses: its torch pin
#: (2.13.0) is the one with a CPU build here; 0.5.11-0.5.16 pin 2.11.0 and
#: 0.5.22+ pin 2.14.1, served only as CUDA builds of several GB.
DEPENDENCY_RELEASE = "0.5.21"


def build_runtime(version: str, cache: Path) -> dict[str, Any]:
    """The venv for ``version``: the shared dependency venv, with that release on top.

    Both are built once and reused while their inputs are unchanged. The
    release's venv reaches the dependency venv's site-packages through a .pth
    line, so one 6 GB install serves every release (about 30 MB each).
    """
    base_wheel = download_wheel(DEPENDENCY_RELEASE)
    requirements, excluded = runtime_requirements(wheel_metadata(base_wheel)[0])
    base = cache / f"deps-{DEPENDENCY_RELEASE}"
    base_python = base / "venv" / "bin" / "python"

    def build_base() -> None:
        log(f"installing {len(requirements)} requirements of sglang {DEPENDENCY_RELEASE} (downloads about 2 GB)")
        for item in excluded:
            log(f"  not installing {item['requirement']}: {item['reason']}")
        (base / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
        run_logged([str(base_python), "-m", "pip", "install", "-r", str(base / "requirements.txt")], progress=True)

    ensure_venv(base, {"requirements": requirements}, build_base)

    wheel = download_wheel(version)
    root = cache / version
    python = root / "venv" / "bin" / "python"

    def build_release() -> None:
        base_site = site_packages(base_python)
        (site_packages(python) / "_eagle3_patch_runtime_deps.pth").write_text(str(base_site) + "\n", encoding="utf-8")
        log(f"installing {wheel.name} without dependencies")
        run_logged([str(python), "-m", "pip", "install", "--no-deps", str(wheel)])

    ensure_venv(root, {"wheel": wheel.name, "deps": str(base)}, build_release)
    install_self(python, root)
    return {"python": python, "wheel": wheel, "excluded": excluded, "size_mb": folder_mb(base) + folder_mb(root)}


def ensure_venv(root: Path, wanted: dict[str, Any], build: Any) -> None:
    """Make ``root/venv`` with ``build`` unless ``root/ready.json`` says it was made from ``wanted``."""
    venv, ready = root / "venv", root / "ready.json"
    if ready.exists() and json.loads(ready.read_text(encoding="utf-8")).get("wanted") == wanted:
        log(f"reusing {venv}")
        return
    started = time.monotonic()
    ready.unlink(missing_ok=True)
    shutil.rmtree(venv, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    log(f"building {venv} (the first run takes minutes)")
    run_logged([sys.executable, "-m", "venv", str(venv)])
    build()
    seconds = round(time.monotonic() - started, 1)
    ready.write_text(json.dumps({"wanted": wanted, "seconds": seconds}, indent=2), encoding="utf-8")
    log(f"built {venv} in {seconds} s ({folder_mb(venv)} MB)")


def site_packages(python: Path) -> Path:
    script = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    completed = subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=True)
    return Path(completed.stdout.strip())


def folder_mb(folder: Path) -> int:
    total = sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    return round(total / 2**20)


def install_self(python: Path, root: Path) -> None:
    """eagle3-patch from this checkout, reinstalled when its sources change."""
    digest = hashlib.sha256()
    anchors = [path for path in sorted((REPO / "anchors").glob("*")) if path.is_file()]  # not __pycache__/
    for path in sorted((REPO / "eagle3_patch").rglob("*.py")) + anchors:
        digest.update(path.name.encode() + path.read_bytes())
    stamp = root / "eagle3-patch.sha256"
    if stamp.exists() and stamp.read_text(encoding="utf-8") == digest.hexdigest():
        return
    log("installing eagle3-patch from this checkout into the runtime environment")
    build = root / "self-build"
    shutil.rmtree(build, ignore_errors=True)
    shutil.copytree(REPO, build, ignore=shutil.ignore_patterns(".git", ".venv", "*.egg-info", "build", "__pycache__"))
    run_logged([str(python), "-m", "pip", "install", "--force-reinstall", "--no-deps", str(build)])
    run_logged([str(python), "-m", "pip", "install", str(build)])  # its dependencies, as pyproject.toml lists them
    shutil.rmtree(build, ignore_errors=True)
    stamp.write_text(digest.hexdigest(), encoding="utf-8")


def run_logged(command: list[str], *, progress: bool = False) -> None:
    """Run a set-up command; with ``progress``, echo what pip downloads and installs."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        tail = [*tail[-40:], line.rstrip()]
        if progress and line.startswith(("Collecting", "Downloading", "Installing", "Successfully")):
            log("  " + line.strip()[:160])
    if process.wait() != 0:
        sys.stderr.write("\n".join(tail) + "\n")
        raise SystemExit(f"command failed ({process.returncode}): {' '.join(command[:6])} ...")


# --- runs ------------------------------------------------------------------------


def eagle3_patch(python: Path, *args: str) -> dict[str, Any]:
    """``eagle3-patch`` as installed in the runtime environment, on its own sglang."""
    command = [str(python), "-m", "eagle3_patch", *args, "--python", str(python), "--json"]
    # Not from the checkout: `-m` would import this folder's eagle3_patch instead of the installed one.
    completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=python.parent)
    try:
        payload: dict[str, Any] = json.loads(completed.stdout)
    except json.JSONDecodeError:
        payload = {"stdout": completed.stdout[-2000:], "stderr": completed.stderr[-2000:]}
    payload["exit_code"] = completed.returncode
    return payload


def child_folder(work: Path) -> Path:
    """The child script and what it imports, laid out as ``verify --cuda`` lays them out."""
    scripts = work / "child"
    shutil.rmtree(scripts, ignore_errors=True)
    scripts.mkdir(parents=True)
    copy_child_scripts(scripts)
    return scripts


def run_child(python: Path, scripts: Path, request: dict[str, Any], work: Path, name: str) -> dict[str, Any]:
    request_path = work / f"{name}.request.json"
    request_path.write_text(json.dumps(request, indent=2), encoding="utf-8")
    env = {
        **os.environ,
        **request.get("env", {}),
        "PYTHONPATH": os.pathsep.join([str(scripts), *request.get("pythonpath", [])]),
        "EAGLE3_PATCH_CPU_WORKAROUNDS": str(REPO / "scripts"),
    }
    log_path = work / f"{name}.log"
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as output:
        completed = subprocess.run(
            [str(python), str(scripts / "_cuda_run.py"), "run", str(request_path)],
            stdout=subprocess.PIPE,
            stderr=output,
            text=True,
            env=env,
            check=False,
            timeout=1800,
        )
    result = read_result(completed.stdout)
    if result is None:
        # SGLang killed the child (see last_exception): the scheduler's evidence file still tells.
        reason = last_exception(log_path.read_text(encoding="utf-8", errors="replace"))
        killed: dict[str, Any] = {"child_error": reason, "exit_status": completed.returncode, "log": str(log_path)}
        for spec in request["runs"]:
            evidence = Path(request["evidence_dir"], f"{spec['name']}.evidence.jsonl")
            if spec.get("evidence") and evidence.exists():
                killed[spec["name"]] = {
                    "error": reason,
                    "evidence": capture_evidence.summarize(capture_evidence.read(evidence)),
                }
        return killed
    result["seconds"] = round(time.monotonic() - started, 1)
    result["log"] = str(log_path)
    return result


def release_targets(models_dir: Path) -> set[str]:
    """Which of our tiny targets' classes this release defines (read as text, never imported)."""
    found = set()
    for name, architecture in (
        ("qwen3_5_text.py", tiny_checkpoints.TEXT_ARCHITECTURE),
        ("qwen3_5.py", tiny_checkpoints.MULTIMODAL_ARCHITECTURE),
        ("qwen3_5.py", tiny_checkpoints.MOE_ARCHITECTURE),
    ):
        path = models_dir / name
        if path.exists() and f"class {architecture}(" in path.read_text(encoding="utf-8", errors="replace"):
            found.add(architecture)
    return found


def first_error(result: dict[str, Any], name: str) -> str:
    if "child_error" in result:
        return str(result["child_error"])
    run = result.get(name)
    return str(run["error"]) if run and "error" in run else ""


def models_hashes(models_dir: Path, wheel_hashes: dict[str, str]) -> tuple[bool, list[str]]:
    """Do the model files we may touch hash to what the wheel's RECORD says?"""
    differ = []
    for name in ("qwen3_5.py", "qwen3_5_text.py"):
        key = f"sglang/srt/models/{name}"
        if key not in wheel_hashes:
            continue
        path = models_dir / name
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != wheel_hashes[key]:
            differ.append(name)
    return not differ, differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sglang", required=True, help="SGLang release, e.g. 0.5.21")
    parser.add_argument("--json", action="store_true", help="print one JSON object last on stdout")
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--no-decode", action="store_true", help="capture evidence only, no token comparison")
    parser.add_argument("--sabotage", choices=sorted(SABOTAGE), help="break our hook after apply (the proof must fail)")
    parser.add_argument(
        "--mode", choices=("patch", "overlay"), default="patch", help="deliver the hooks by apply or by overlay"
    )
    args = parser.parse_args(argv)

    root = cache_root() / args.sglang
    started = time.monotonic()
    try:
        runtime = build_runtime(args.sglang, cache_root())
    except SystemExit as exc:
        log(f"cannot build the runtime environment: {exc}")
        return 2
    python: Path = runtime["python"]
    _, wheel_hashes = wheel_metadata(runtime["wheel"])
    install = locate_root(site_packages(python), found_by="runtime proof")
    work = root / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    scripts = child_folder(work)

    # Start from the wheel's bytes, whatever an interrupted earlier run left.
    if not models_hashes(install.models_dir, wheel_hashes)[0]:
        log("model files differ from the wheel: reverting first")
        eagle3_patch(python, "revert")

    state = eagle3_patch(python, "check")
    mode = {0: "native", 1: "patch"}.get(state["exit_code"], "unsupported")
    server_args = read_server_args(install)
    targets = [t for t in args.targets if t in release_targets(install.models_dir)]
    skipped = [t for t in args.targets if t not in targets]
    # A native release is the control: served as shipped, after an `apply` that must change nothing.
    skip_unpatched = {"native": "native release: nothing to patch"}.get(mode, "")
    if args.sabotage:
        skip_unpatched = "skipped: the hook is sabotaged"
    results: dict[str, dict[str, Any]] = {
        t: {
            "architecture": t,
            "unpatched": {"status": "not-run", "error": skip_unpatched},
            "patched": {"capture": "not-run", "decode": "not-run"},
        }
        for t in targets
    }
    requests: dict[str, dict[str, Any]] = {}
    for target in targets:
        folder = work / target
        multimodal = target != tiny_checkpoints.TEXT_ARCHITECTURE
        options = common_options(
            model_path=str(folder / "target"), mem_fraction=0.3, multimodal=multimodal, device="cpu"
        )
        requests[target] = {
            "architecture": target,
            "target": str(folder / "target"),
            "draft": str(folder / "draft"),
            "write_checkpoints": True,
            "prompt_ids": PROMPT_IDS,
            "max_new_tokens": args.max_new_tokens,
            "warmup": False,
            "evidence_dir": str(folder),
            "env": cpu_workarounds.ENGINE_ENV,
            "plain": engine_kwargs(server_args, options),
            "eagle3": engine_kwargs(server_args, options + eagle3_options(draft_path=str(folder / "draft"))),
        }

    log(f"sglang {args.sglang}: {mode}; targets {', '.join(targets)}")
    for target in targets if not skip_unpatched else ():
        request = {
            **requests[target],
            "runs": [{"name": "eagle3", "kwargs": requests[target]["eagle3"], "evidence": True}],
        }
        log(f"{target}: EAGLE-3 on the unpatched install")
        result = run_child(python, scripts, request, work, f"{target}.unpatched")
        error = first_error(result, "eagle3")
        evidence = result.get("eagle3", {}).get("evidence", {})
        failed = bool(error) or evidence.get("capture") != "passed"
        results[target]["unpatched"] = {
            "status": "failed" if failed else "passed",
            "error": error or "; ".join(evidence.get("problems", [])),
        }
        log(f"  {results[target]['unpatched']['status']}: {results[target]['unpatched']['error'][:200]}")

    delivery: dict[str, Any] = {}
    if args.mode == "overlay":
        overlaid = eagle3_patch(python, "overlay", "--out", str(work / "overlay"))
        log(f"eagle3-patch overlay: exit {overlaid['exit_code']}; wrote {overlaid.get('written')}")
        if overlaid.get("env"):
            delivery = {
                "env": {"SGLANG_EXTERNAL_MODEL_PACKAGE": overlaid["env"]["SGLANG_EXTERNAL_MODEL_PACKAGE"]},
                "pythonpath": [overlaid["env"]["PYTHONPATH"]],
            }
    else:
        applied = eagle3_patch(python, "apply")
        log(f"eagle3-patch apply: exit {applied['exit_code']}")
    if mode == "native" and not models_hashes(install.models_dir, wheel_hashes)[0]:
        log("apply changed a native release")
        return 1
    patched_bytes: dict[Path, bytes] = {}
    if args.sabotage:
        old, new = SABOTAGE[args.sabotage]
        for name in ("qwen3_5.py", "qwen3_5_text.py"):
            path = install.models_dir / name
            if path.exists() and old.encode() in path.read_bytes():
                patched_bytes[path] = path.read_bytes()
                path.write_bytes(patched_bytes[path].replace(old.encode(), new.encode()))
                log(f"sabotage {args.sabotage}: {name}")

    for target in targets:
        runs = [{"name": "eagle3", "kwargs": requests[target]["eagle3"], "evidence": True}]
        if not args.no_decode:
            runs.append({"name": "plain", "kwargs": requests[target]["plain"]})
        written = Path(requests[target]["draft"], "config.json").exists()  # by the unpatched run, if it ran
        request = {**requests[target], "runs": runs, "write_checkpoints": not written}
        if delivery:
            request["env"] = {**request["env"], **delivery["env"]}
            request["pythonpath"] = delivery["pythonpath"]
        log(f"{target}: EAGLE-3 after {args.mode}{'' if args.no_decode else ', then plain greedy'}")
        result = run_child(python, scripts, request, work, f"{target}.patched")
        results[target]["patched"] = judge_patched(result, decode=not args.no_decode, what=target)
        patched = results[target]["patched"]
        log(f"  capture {patched['capture']}, decode {patched['decode']}: {patched['detail'][:300]}")

    for path, data in patched_bytes.items():
        path.write_bytes(data)
    if args.mode == "overlay":  # nothing to revert: the files must never have changed
        identical, differ = models_hashes(install.models_dir, wheel_hashes)
        log(f"overlay: files equal the wheel's throughout: {identical} {differ or ''}")
    else:
        reverted = eagle3_patch(python, "revert")
        identical, differ = models_hashes(install.models_dir, wheel_hashes)
        log(f"eagle3-patch revert: exit {reverted['exit_code']}; files equal the wheel's: {identical} {differ or ''}")

    payload = {
        "sglang": args.sglang,
        "device": "cpu",
        "mode": mode,
        "delivery": args.mode,
        **({"install_untouched": identical} if args.mode == "overlay" else {"revert_byte_identical": identical}),
        "targets": [results[t] for t in targets],
        "not_run": [{"architecture": t, "reason": f"sglang {args.sglang} has no {t}"} for t in skipped],
        "workarounds": cpu_workarounds.describe(runtime["excluded"]),
        "dependencies": f"sglang {DEPENDENCY_RELEASE}'s requirement set (torch 2.13.0, CPU build)",
        "install_mb": runtime["size_mb"],
        "seconds": round(time.monotonic() - started, 1),
        "sabotage": args.sabotage,
    }
    proven = (
        bool(targets)
        and identical
        and all(
            r["patched"]["capture"] == "passed" and (mode == "native" or r["unpatched"]["status"] == "failed")
            for r in payload["targets"]
        )
    )
    log(f"{'PROVEN' if proven else 'NOT PROVEN'} in {payload['seconds']} s")
    if args.json:
        sys.stdout.write(json.dumps(payload) + "\n")
    return 0 if proven else 1


def judge_patched(result: dict[str, Any], *, decode: bool, what: str) -> dict[str, Any]:
    eagle3 = result.get("eagle3", {})
    evidence = eagle3.get("evidence", {})
    error = first_error(result, "eagle3")
    verdict: dict[str, Any] = {
        "capture": evidence.get("capture", "failed") if evidence else "failed",
        "flagged_layers": evidence.get("flagged_layers", []),
        "expected_layers": evidence.get("expected_layers"),
        "aux_equals_layer_outputs": evidence.get("aux_equals_layer_outputs", False),
        "draft_consumed": evidence.get("draft_consumed", False),
        "draft_rows_from_target_aux": evidence.get("draft_rows_from_target_aux", False),
        "decode": "not-run",
        "accept_length": eagle3.get("accept_length"),
        "detail": "; ".join([error, *evidence.get("problems", [])]).strip("; "),
        "seconds": result.get("seconds"),
    }
    if decode:
        # The judgement `eagle3-patch verify --cuda` gives a GPU run, applied to this CPU run.
        level = judge_runs(result, what)
        verdict["verify_cuda_level"] = {"status": level.status, "detail": level.detail}
    if decode and not error:
        plain_error = first_error(result, "plain")
        if plain_error:
            verdict["detail"] = f"plain run failed: {plain_error}"
        else:
            plain_tokens = result["plain"].get("tokens") or []
            mismatch = token_mismatch(plain_tokens, eagle3.get("tokens") or [])
            verdict["decode"] = "differs" if mismatch else "token-identical"
            detail = mismatch or f"{len(plain_tokens)} prompts x {len(plain_tokens[0])} tokens equal"
            verdict["detail"] = "; ".join(filter(None, [verdict["detail"], detail]))
    return verdict


if __name__ == "__main__":
    raise SystemExit(main())
