"""Time per KB of `pins` reading one pathological line, from 16 KB to 1 MB: flat means linear time.

    python benchmarks/pins_line_length.py [--sizes 16,64,256,1024] [--repeats 5] [--limit 4] [--give-up 60]

Each shape is a file kind and a line built by repeating a fragment (``git+``
runs, ``==`` runs, spaces, unclosed quotes, backslash continuations, ...). For
each size the file is written once and ``find_pins`` (what ``pins`` does to a
file, without the interpreter's start-up) reads it --repeats times; the median
is reported as ms per KB. The baseline is the same shape at the smallest size in
the same run: the figure is the ratio of the largest size's time per KB to it,
about 1 for linear time and the size ratio (64 from 16 KB to 1 MB) for
quadratic. Absolute times depend on the machine; compare the ratios. A shape
whose one reading takes longer than --give-up seconds is stopped and fails.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from eagle3_patch.pins import UnreadableFile, find_pins

KB = 1024


def repeated(prefix: str, fragment: str, suffix: str = "") -> Callable[[int], str]:
    """A builder: ``prefix + fragment * n + suffix``, with n chosen to make ``size`` bytes."""

    def build(size: int) -> str:
        count = max(1, (size - len(prefix) - len(suffix)) // len(fragment))
        return prefix + fragment * count + suffix

    return build


#: (name, the file's name, its text for a size in bytes).
SHAPES: list[tuple[str, str, Callable[[int], str]]] = [
    ("requirements: git+ run", "requirements.txt", repeated("", "git+", "\n")),
    ("requirements: git+/sglang run", "requirements.txt", repeated("", "git+/sglang", "\n")),
    ("requirements: sglang run", "requirements.txt", repeated("", "sglang", "\n")),
    ("requirements: == run", "requirements.txt", repeated("sglang", "==", "\n")),
    ("requirements: @ run", "requirements.txt", repeated("sglang ", "@", "\n")),
    ("requirements: spaces", "requirements.txt", repeated("sglang", " ", "x\n")),
    ("requirements: marker spaces", "requirements.txt", repeated("sglang==0.5.8 ; python_version", " ", "x\n")),
    ("requirements: extras", "requirements.txt", repeated("sglang[", "a,", "\n")),
    ("requirements: version dots", "requirements.txt", repeated("sglang==", "1.", "x\n")),
    ("requirements: # run", "requirements.txt", repeated("sglang==0.5.8 ", "#", "\n")),
    ("requirements: continuations", "requirements.txt", repeated("sglang", " \\\n", "==0.5.8\n")),
    ("requirements: URL path", "requirements.txt", repeated("sglang @ git+https://x/", "a/", "\n")),
    ("unknown name: spaces", "deps.list", repeated("sglang", " ", "x\n")),
    ("unknown name: FROM options", "base.image", repeated("FROM", " --a", " x y\n")),
    ("Dockerfile: RUN continuations", "Dockerfile", repeated("FROM python:3.11\nRUN pip install", " a \\\n", " b\n")),
    ("Dockerfile: ${ defaults", "Dockerfile", repeated("FROM python:3.11\nRUN pip install ", "${a:-", "\n")),
    ("Dockerfile: $ names", "Dockerfile", repeated("ARG a=sglang\nFROM python:3.11\nRUN pip install ", "$a", "\n")),
    ("Dockerfile: unclosed quote", "Dockerfile", repeated('FROM python:3.11\nRUN pip install "', "a", "\n")),
    ("Dockerfile: quotes", "Dockerfile", repeated("FROM python:3.11\nRUN pip install ", "'a'\"b\"", "\n")),
    ("Dockerfile: FROM options", "Dockerfile", repeated("FROM", " --a", " x y\n")),
    ("Dockerfile: heredoc starts", "Dockerfile", repeated("FROM python:3.11\nRUN ", "<<", "\n")),
    ("Dockerfile: git+ run", "Dockerfile", repeated("FROM python:3.11\nRUN pip install ", "git+", "\n")),
    ("Dockerfile: pip options", "Dockerfile", repeated("FROM python:3.11\nRUN pip install", " -q", " sglang\n")),
    ("Dockerfile: operators", "Dockerfile", repeated("FROM python:3.11\nRUN pip install sglang==0.5.8", " &&", "\n")),
    (
        "Dockerfile: checkout installs",
        "Dockerfile",
        repeated(
            "FROM python:3.11\nRUN git clone --branch v0.5.8 https://github.com/sgl-project/sglang.git"
            " && cd sglang && pip install",
            " python",
            "\n",
        ),
    ),
    ("Dockerfile: image tag digits", "Dockerfile", repeated("FROM me/app:sglang0.5.", "1", ".\n")),
    ("pyproject: git+ run", "pyproject.toml", repeated('[project]\nname = "x"\ndependencies = ["', "git+", '"]\n')),
    ("pyproject: many sglang pins", "pyproject.toml", repeated("[project]\ndependencies = [\n", '"sglang",\n', "]\n")),
    ("setup.cfg: value spaces", "setup.cfg", repeated("[options]\ninstall_requires = sglang", " ", "x\n")),
    ("setup.cfg: option spaces", "setup.cfg", repeated("[options]\na", " ", "x\n")),
    ("setup.py: git+ run", "setup.py", repeated('setup(install_requires=["', "git+", '"])\n')),
]


class _GaveUp(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _GaveUp


def read_once(path: Path, give_up: float) -> float:
    """Seconds one ``find_pins`` of ``path`` takes (raises _GaveUp past ``give_up``)."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, give_up)
    try:
        start = time.perf_counter()
        with contextlib.suppress(UnreadableFile):  # refused at once is an answer too
            find_pins(path)
        return time.perf_counter() - start
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="16,64,256,1024", help="line sizes in KB, smallest first")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--limit", type=float, default=4.0, help="the largest per-KB ratio that passes")
    parser.add_argument("--give-up", type=float, default=60.0, help="seconds before one reading is stopped")
    parser.add_argument("--only", default="", help="run only the shapes whose name contains this")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]

    shown = ", ".join(f"{size} KB" for size in sizes)
    print(f"Python {sys.version.split()[0]}, median of {args.repeats}, ms per KB at {shown}")
    ok = True
    with tempfile.TemporaryDirectory() as temp:
        for name, file_name, build in SHAPES:
            if args.only not in name:
                continue
            per_kb: list[float] = []
            gave_up = False
            for size in sizes:
                folder = Path(temp) / f"{len(per_kb)}"
                folder.mkdir(exist_ok=True)
                path = folder / file_name
                path.write_text(build(size * KB), encoding="utf-8")
                try:
                    seconds = statistics.median(read_once(path, args.give_up) for _ in range(args.repeats))
                except _GaveUp:
                    gave_up = True
                    break
                per_kb.append(seconds * 1000 / size)
            figures = " ".join(f"{value:8.4f}" for value in per_kb)
            if gave_up:
                ok = False
                print(f"{name:<32} {figures} | stopped at {size} KB: one reading took over {args.give_up:g} s (OVER)")
                continue
            ratio = per_kb[-1] / per_kb[0]
            verdict = "ok" if ratio <= args.limit else "OVER"
            ok &= ratio <= args.limit
            print(f"{name:<32} {figures} | {ratio:6.2f}x (<= {args.limit:g}x {verdict})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
