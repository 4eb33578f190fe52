"""Stage 1: find the SGLang install to work on, without importing sglang.

Importing sglang pulls in CUDA kernels and takes seconds, and fails outright in
Docker build steps without a GPU stack, so every route here reads files only:
``importlib.util.find_spec`` for an interpreter, folder shapes for a path.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import selectors
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from eagle3_patch import ROOT_ENV, _probe
from eagle3_patch.errors import NotFoundError, UnsupportedError, UsageError
from eagle3_patch.ledger import sha256_hex
from eagle3_patch.reading import read_witness

UNKNOWN_VERSION = "unknown"
_PROBE_TIMEOUT_S = 60
#: The probe answers in a few hundred bytes; past this an interpreter's output is not its answer.
_PROBE_ANSWER_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Install:
    """One SGLang install: where its package folder is and what release it is."""

    #: The ``sglang`` package folder (it holds ``srt/``).
    package_dir: Path
    #: Release from dist-info metadata, ``_version.py``/``version.py``, or "unknown".
    version: str
    #: "wheel", "editable" (installed from a clone), "checkout" (a source tree) or "folder".
    layout: str
    #: How it was found, for messages: an interpreter path or a folder argument.
    found_by: str
    #: The ``sglang-*.dist-info`` folder when there is one (its RECORD witnesses originals).
    dist_info: Path | None = None
    #: The options that chose this install (``--sglang-root DIR`` or ``--python PATH``), for next-step hints.
    selector: tuple[str, ...] = ()
    #: ``sys.pycache_prefix`` of the interpreter that imports it (``PYTHONPYCACHEPREFIX``): where its
    #: bytecode is, instead of ``__pycache__``; None when unset. ``--sglang-root``: this interpreter's.
    pycache_prefix: str | None = None

    def command(self, *words: str) -> str:
        """``eagle3-patch <words>`` for this same install, shell-quoted, as a hint to copy."""
        return shlex.join(("eagle3-patch", *words, *self.selector))

    def pip_install(self, *words: str) -> str:
        """``pip install <words>`` that acts on this install, not on whatever ``pip`` is first on PATH.

        ``--python PATH``: that interpreter's pip. A folder given with
        ``--sglang-root`` (or its variable): the interpreter whose site-packages
        it is, where one is there to run, else ``--target`` that folder.
        """
        if self.selector[:1] == ("--python",):
            return shlex.join((self.selector[1], "-m", "pip", "install", *words))
        if self.selector[:1] == ("--sglang-root",) or self.found_by.startswith(ROOT_ENV):
            site = self.package_dir.parent
            owner = _site_interpreter(site)
            if owner is not None:
                return shlex.join((str(owner), "-m", "pip", "install", *words))
            return shlex.join(("pip", "install", "--upgrade", "--target", str(site), *words))
        return shlex.join(("pip", "install", *words))

    @property
    def models_dir(self) -> Path:
        return self.package_dir / "srt" / "models"


def locate(*, sglang_root: str | None = None, python: str | None = None) -> Install:
    """Find the install from ``--sglang-root``, ``--python``, or this interpreter."""
    for flag, value in (("--sglang-root", sglang_root), ("--python", python)):
        if value is not None and not value.strip():
            raise UsageError(
                f"{flag} is empty (an unset shell variable?); give the path, or leave the option out "
                "to use the sglang of this interpreter"
            )
    if sglang_root and python:
        raise UsageError("give either --sglang-root or --python, not both")
    if sglang_root:
        install = locate_root(Path(sglang_root), found_by=f"--sglang-root {sglang_root}")
        return replace(install, selector=("--sglang-root", sglang_root))
    if python:
        return replace(locate_python(python), selector=("--python", python))
    env_root = os.environ.get(ROOT_ENV)
    if env_root:
        return locate_root(Path(env_root), found_by=f"{ROOT_ENV}={env_root}")
    return _from_probe(_probe.probe(), found_by=f"interpreter {sys.executable}")


def locate_python(python: str) -> Install:
    """Ask another interpreter (a venv, conda env, Docker stage) where its sglang is.

    Its answer is checked, never trusted: read up to ``_PROBE_ANSWER_LIMIT``
    bytes within ``_PROBE_TIMEOUT_S``, it must be UTF-8 JSON with the probe's
    keys, each a string or null. Anything else is exit 5 naming the interpreter.
    """
    source = Path(_probe.__file__).read_text(encoding="utf-8")
    stdout, stderr = _probe_output(python, source)
    try:
        answer = json.loads(stdout.decode("utf-8"))
    except UnicodeDecodeError:
        raise NotFoundError(
            "interpreter answered the probe in bytes that are not UTF-8; pass --sglang-root DIR instead",
            path=Path(python),
        ) from None
    except (ValueError, RecursionError):
        last = (stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        raise NotFoundError(
            f"interpreter did not answer the probe ({_short(last)}); pass --sglang-root DIR instead",
            path=Path(python),
        ) from None
    problem = _answer_problem(answer)
    if problem is not None:
        raise NotFoundError(
            f"interpreter's answer is not the probe's ({problem}); pass the path of a working python, "
            "or --sglang-root DIR",
            path=Path(python),
        )
    return _from_probe(answer, found_by=f"interpreter {python}")


def _probe_output(python: str, source: str) -> tuple[bytes, bytes]:
    """What ``python -c source`` writes to stdout and stderr, each at most ``_PROBE_ANSWER_LIMIT`` bytes.

    Read as it comes, so an interpreter that writes without end is stopped
    (killed) at the limit, and one that never finishes at the deadline.
    """
    try:
        child = subprocess.Popen(
            [python, "-c", source], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except (OSError, ValueError) as exc:
        raise NotFoundError(
            f"cannot run this interpreter ({exc}); pass the path of a working python", path=Path(python)
        ) from exc
    assert child.stdout is not None and child.stderr is not None
    answer, errors = bytearray(), bytearray()
    output = {child.stdout.fileno(): answer, child.stderr.fileno(): errors}
    deadline = time.monotonic() + _PROBE_TIMEOUT_S
    problem = None
    with child, selectors.DefaultSelector() as selector:
        for stream in (child.stdout, child.stderr):
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map() and problem is None:
            remaining = deadline - time.monotonic()
            ready = selector.select(remaining) if remaining > 0 else []
            if not ready:
                problem = f"no answer within {_PROBE_TIMEOUT_S} s"
            for key, _ in ready:
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                output[key.fd] += chunk
                if len(output[key.fd]) > _PROBE_ANSWER_LIMIT:
                    problem = f"it wrote more than {_PROBE_ANSWER_LIMIT // 1024} KiB, not the probe's short answer"
        if problem is None:
            try:
                child.wait(max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                problem = f"no answer within {_PROBE_TIMEOUT_S} s"
        if problem is not None:
            child.kill()
    if problem is not None:
        raise NotFoundError(
            f"cannot run this interpreter ({problem}); pass the path of a working python", path=Path(python)
        )
    return bytes(answer), bytes(errors)


#: What the probe answers (``_probe.probe``): each a string or None.
_ANSWER_KEYS = ("python", "package_dir", "version", "dist_info", "editable_url", "pycache_prefix")


def _answer_problem(answer: object) -> str | None:
    """Why ``answer`` is not what ``_probe.probe`` returns; None when it is."""
    if not isinstance(answer, dict):
        return f"a JSON {_json_kind(answer)}, not an object"
    for key in _ANSWER_KEYS:
        if key not in answer:
            return f"no {key!r}"
        value = answer[key]
        if value is not None and not isinstance(value, str):
            return f"{key!r} is a JSON {_json_kind(value)}, not a string or null"
        if value is not None and "\0" in value:
            return f"{key!r} holds a NUL character"
    return None


def _json_kind(value: object) -> str:
    kinds = ((type(None), "null"), (bool, "boolean"), (str, "string"), (list, "array"), (dict, "object"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "number")


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _from_probe(answer: dict[str, str | None], *, found_by: str) -> Install:
    package_dir = answer.get("package_dir")
    if not package_dir:
        interpreter = answer.get("python")
        pip = shlex.join((interpreter, "-m", "pip")) if interpreter else "pip"
        raise NotFoundError(
            f"sglang is not installed for {interpreter or found_by}; install it "
            f"({pip} install sglang==X) or point at it with --sglang-root DIR or --python PATH"
        )
    package = Path(package_dir)
    dist_info_text = answer.get("dist_info")
    dist_info = Path(dist_info_text) if dist_info_text else None
    if answer.get("editable_url"):
        # pip install -e: metadata in site-packages, sources in the clone.
        layout = "editable"
    elif dist_info is not None and dist_info.parent == package.parent:
        layout = "wheel"
        chosen = _dist_info_beside(package)  # the probe takes the first; an upgrade may have left two
        if chosen is not None and chosen != dist_info:
            dist_info = chosen
            answer = {**answer, "version": _dist_info_version(chosen)}
    else:
        # Metadata found elsewhere on sys.path does not describe this folder.
        dist_info = None
        layout = "checkout" if _is_checkout_package(package) else "folder"
    version = answer.get("version") if dist_info is not None else None
    prefix = answer.get("pycache_prefix")
    return Install(
        package_dir=package,
        version=version or _version_from_sources(package),
        layout=layout,
        found_by=found_by,
        dist_info=dist_info,
        pycache_prefix=prefix if isinstance(prefix, str) and prefix else None,
    )


def locate_root(root: Path, *, found_by: str) -> Install:
    """Accept the sglang package folder, its site-packages, or a source checkout's root."""
    root = root.expanduser()
    for package in (root, root / "sglang", root / "python" / "sglang"):
        if (package / "srt").is_dir():
            break
    else:
        raise NotFoundError(
            "no SGLang here (no srt/ folder); give --sglang-root the sglang package "
            "folder, the site-packages holding it, or a source checkout's root",
            path=root,
        )
    package = package.resolve()
    dist_info = _dist_info_beside(package)
    if dist_info is not None:
        layout = "wheel"
    elif _is_checkout_package(package):
        layout = "checkout"
    else:
        layout = "folder"
    version = _dist_info_version(dist_info) if dist_info else None
    return Install(
        package_dir=package,
        version=version or _version_from_sources(package),
        layout=layout,
        found_by=found_by,
        dist_info=dist_info,
        pycache_prefix=sys.pycache_prefix,  # the same environment runs the service, as far as we can know
    )


def _site_interpreter(site: Path) -> Path | None:
    """The python of the venv or prefix whose ``lib/pythonX.Y/site-packages`` is ``site``, if it is there."""
    if site.name not in ("site-packages", "dist-packages") or not site.parent.name.startswith("python"):
        return None
    prefix = site.parent.parent.parent
    for name in (site.parent.name, "python3", "python"):
        candidate = prefix / "bin" / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _is_checkout_package(package: Path) -> bool:
    """A clone keeps the package at <clone>/python/sglang beside pyproject.toml."""
    return package.parent.name == "python" and (package.parent / "pyproject.toml").is_file()


def _dist_info_beside(package: Path) -> Path | None:
    """The sglang dist-info in the same site-packages whose RECORD describes this package.

    One is the rule. ``pip install --target DIR --upgrade`` leaves the old
    release's dist-info beside the new one: then the one whose RECORD hashes
    match the files on disk is the install, and when that does not settle it,
    both are named in a refusal rather than guessed between.
    """
    site = package.parent
    found = [d for d in sorted(site.glob("sglang-*.dist-info")) if (d / "RECORD").is_file()]
    if len(found) <= 1:
        return found[0] if found else next(iter(sorted(site.glob("sglang-*.dist-info"))), None)
    scores = {dist_info: _record_matches(dist_info, site) for dist_info in found}
    best = max(scores.values())
    winners = [d for d, score in scores.items() if score == best]
    if best > 0 and len(winners) == 1:
        return winners[0]
    names = " and ".join(d.name for d in found)
    raise UnsupportedError(
        f"two sglang installs' metadata ({names}) and the files match neither RECORD better; nothing was "
        "changed. Remove the stale one (pip install --target --upgrade leaves it), or reinstall sglang",
        path=site,
    )


def _record_matches(dist_info: Path, site: Path, *, sample: int = 64) -> int:
    """How many of the first ``sample`` hashed sglang files in this RECORD hash as RECORD says."""
    record = (read_witness(dist_info / "RECORD") or b"").decode("utf-8", errors="replace")
    matches = checked = 0
    for line in record.splitlines():
        path, _, rest = line.partition(",")
        digest = rest.split(",", 1)[0]
        if not path.startswith("sglang/") or not digest.startswith("sha256=") or checked >= sample:
            continue
        checked += 1
        data = read_witness(site / path)
        if data is None:
            continue
        expected = digest[len("sha256=") :]
        actual = base64.urlsafe_b64encode(bytes.fromhex(sha256_hex(data))).rstrip(b"=").decode()
        matches += actual == expected
    return matches


def _dist_info_version(dist_info: Path) -> str | None:
    data = read_witness(dist_info / "METADATA")  # a regular file only: a FIFO there must not block
    for line in (data or b"").decode("utf-8", errors="replace").splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
        if not line.strip():
            break
    name = dist_info.name[: -len(".dist-info")]
    return name.split("-", 1)[1] if "-" in name else None


def _version_from_sources(package: Path) -> str:
    """Read ``__version__ = "..."`` from _version.py or version.py, never executing them."""
    for name in ("_version.py", "version.py"):
        data = read_witness(package / name)
        try:
            tree = ast.parse(data) if data is not None else None
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        if tree is None:
            continue
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                return node.value.value
    return UNKNOWN_VERSION
