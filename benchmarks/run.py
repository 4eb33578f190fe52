"""Wall-time ratios of eagle3-patch commands against baselines measured in the same run.

    python benchmarks/run.py [--pairs N] [--version 0.5.21]

Each figure runs the command and its baseline alternately (N pairs, default 15)
as fresh processes, so both see the same machine load, and reports the medians
and their ratio. Absolute seconds depend on the machine; the ratio is the figure
to compare. Needs the sglang wheel (downloaded once into the wheel cache).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from eagle3_patch.fetch import extract_release, fetch_wheel

PYTHON = sys.executable


def timed(command: list[str], *, expect: int = 0, cwd: Path | None = None) -> float:
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, check=False, cwd=cwd)
    elapsed = time.perf_counter() - start
    if completed.returncode != expect:
        raise SystemExit(f"{command} exited {completed.returncode}: {completed.stderr.decode()[-500:]}")
    return elapsed


def compare(
    name: str,
    measured: Callable[[], float],
    baseline: Callable[[], float],
    *,
    pairs: int,
    baseline_name: str,
    limit: float,
) -> bool:
    ours, theirs = [], []
    for _ in range(pairs):
        ours.append(measured())
        theirs.append(baseline())
    mine, base = statistics.median(ours), statistics.median(theirs)
    ratio = mine / base
    verdict = "ok" if ratio <= limit else "OVER"
    figures = f"{mine * 1000:8.1f} ms | {baseline_name:<38} {base * 1000:8.1f} ms"
    print(f"{name:<34} {figures} | {ratio:5.2f}x (<= {limit}x {verdict})")
    return ratio <= limit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--version", default="0.5.21")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as temp:
        site = Path(temp) / "site"
        extract_release(fetch_wheel(args.version), site)
        models = site / "sglang" / "srt" / "models"
        pristine = {p.name: p.read_bytes() for p in models.glob("qwen3_5*.py")}
        # The console script, as users run it (python -m eagle3_patch when it is not installed).
        script = Path(PYTHON).with_name("eagle3-patch")
        cli = [str(script)] if script.exists() else [PYTHON, "-m", "eagle3_patch"]
        root = ["--sglang-root", str(site)]

        def reset() -> None:
            for name, data in pristine.items():
                (models / name).write_bytes(data)
            for leftover in [*models.glob("*.eagle3-bak"), models / ".eagle3-patch.json"]:
                leftover.unlink(missing_ok=True)
            shutil.rmtree(models / "__pycache__", ignore_errors=True)

        def apply_fresh() -> float:
            reset()
            return timed([*cli, "apply", *root])

        parse_baseline = [
            PYTHON,
            "-c",
            "import sys, libcst; libcst.parse_module(open(sys.argv[1], 'rb').read())",
            str(models / "qwen3_5.py"),
        ]
        print(f"sglang {args.version}, {args.pairs} alternating pairs, Python {sys.version.split()[0]}")
        ok = compare(
            f"apply (fresh {args.version})",
            apply_fresh,
            lambda: timed(parse_baseline),
            pairs=args.pairs,
            baseline_name="import libcst + parse_module(qwen3_5.py)",
            limit=1.6,
        )
        reset()
        timed([*cli, "apply", *root])
        ok &= compare(
            "check (patched)",
            lambda: timed([*cli, "check", *root]),
            lambda: timed([PYTHON, "-c", "pass"]),
            pairs=args.pairs,
            baseline_name="python -c pass",
            limit=5.0,
        )
        pair = Path(__file__).resolve().parent.parent / "fixtures" / "doctor"
        doctor = [*cli, "doctor", *root, "--target", str(pair / "target"), "--draft", str(pair / "draft")]
        ok &= compare(
            "doctor (patched, fixture pair)",
            lambda: timed(doctor),
            lambda: timed([PYTHON, "-c", "pass"]),
            pairs=args.pairs,
            baseline_name="python -c pass",
            limit=15.0,
        )
        repository = Path(temp) / "deployment"
        _write_deployment(repository)
        ok &= compare(
            "pins (5 files)",
            lambda: timed([*cli, "pins"], cwd=repository),
            lambda: timed([PYTHON, "-c", "pass"]),
            pairs=args.pairs,
            baseline_name="python -c pass",
            limit=5.0,
        )
    return 0 if ok else 1


def _write_deployment(folder: Path) -> None:
    """A deployment repository as the pre-commit hook sees it: a few files pinning sglang."""
    files = {
        "requirements.txt": "-r requirements-base.txt\nsglang[all]==0.5.21 ; python_version >= '3.10'\n",
        "requirements-base.txt": "numpy>=1.26\ntorch==2.9.1\nflashinfer-python==0.5.3\n",
        "constraints.txt": "sglang==0.5.21\ntransformers==5.2.0\n",
        "pyproject.toml": '[project]\nname = "serve"\nversion = "1"\ndependencies = ["sglang[all]==0.5.21", "click"]\n',
        "docker/Dockerfile": "ARG SGLANG_VERSION=0.5.21\nFROM python:3.11\n"
        'RUN pip install "sglang[all]==${SGLANG_VERSION}" && eagle3-patch apply && eagle3-patch check\n',
    }
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
