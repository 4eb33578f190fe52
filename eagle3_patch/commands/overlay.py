"""``eagle3-patch overlay``: locate -> classify -> build the package -> write it under ``--out``.

Classifies exactly as ``apply`` does and refuses what ``apply`` refuses
(unsupported, exit 3); patched and native installs need no overlay (exit 0,
nothing written). Nothing inside the install is read for writing or locked:
the package is written only under ``--out``, which must lie outside the folder
that holds the install, and only over an overlay of ours (``refuse_unsafe_out``).
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from eagle3_patch.classify import InstallReport, classify_install
from eagle3_patch.errors import UsageError
from eagle3_patch.locate import Install, locate
from eagle3_patch.overlay import Overlay, build_overlay, is_our_overlay, valid_package_name
from eagle3_patch.plan import refuse_unsupported
from eagle3_patch.spec import load_spec
from eagle3_patch.write import write_new_tree


@dataclass(frozen=True)
class OverlayResult:
    report: InstallReport
    out: Path
    #: None when the install needs none (patched or native).
    overlay: Overlay | None
    written: tuple[Path, ...] = ()


def overlay(*, out: str, name: str, sglang_root: str | None, python: str | None) -> OverlayResult:
    """Write the overlay package ``out/name`` for the located install."""
    if not out:
        raise UsageError("--out is empty; give the folder to write the package into")
    if not valid_package_name(name):
        raise UsageError(f"--name {name!r} is not a Python package name (letters, digits, _)")
    install = locate(sglang_root=sglang_root, python=python)
    report = classify_install(install, load_spec())
    refuse_unsupported(report)
    folder = Path(out)
    refuse_unsafe_out(install, folder, name)
    built = build_overlay(report, load_spec(), name=name)
    if built is None:
        return OverlayResult(report, folder, None)
    written = write_new_tree(folder / name, {"__init__.py": built.init_source.encode("utf-8")})
    return OverlayResult(report, folder, built, written)


def refuse_unsafe_out(install: Install, folder: Path, name: str) -> None:
    """A usage error (exit 2) before anything is written, unless ``folder/name`` is safe to write.

    Refused: ``--out`` in (or being) the folder on sys.path that holds the
    install, or the one holding its dist-info (the overlay promises the install
    stays as it is); a ``--name`` that would shadow sglang, a module beside it or
    the standard library; a module ``folder/name.py`` the package would shadow;
    and an existing ``folder/name`` that is neither an empty folder nor an
    overlay eagle3-patch wrote (overlay writes over nothing it did not write).
    """
    holders = [install.package_dir.parent] + ([install.dist_info.parent] if install.dist_info else [])
    out_real, package_real = Path(os.path.realpath(folder)), Path(os.path.realpath(folder / name))
    for holder in dict.fromkeys(Path(os.path.realpath(h)) for h in holders):
        if out_real.is_relative_to(holder) or package_real.is_relative_to(holder):
            raise UsageError(
                f"--out {folder} lies in {holder}, the folder that holds the sglang install, and the overlay "
                "must not change the install: pick another folder (for example /opt/eagle3)"
            )
    shadowed = _shadowed(install, name)
    if shadowed:
        raise UsageError(
            f"--name {name} would shadow {shadowed} in every process that has the overlay on PYTHONPATH; "
            "pick another name (the default is eagle3_overlay)"
        )
    for suffix in importlib.machinery.all_suffixes():
        module = folder / f"{name}{suffix}"
        if os.path.lexists(module):
            raise UsageError(f"is a module the package {name} would shadow; pick another --name or --out", path=module)
    package = folder / name
    if os.path.lexists(package) and not _empty_folder(package) and not is_our_overlay(package):
        raise UsageError(
            "exists and is not an overlay eagle3-patch wrote; overlay writes over nothing else: "
            "pick another --out or --name, or remove it",
            path=package,
        )


def _shadowed(install: Install, name: str) -> str:
    """What a top-level ``name`` first on PYTHONPATH would hide: sglang, a module beside it, the stdlib; or ""."""
    if name == "sglang":
        return "sglang itself"
    if name in sys.stdlib_module_names:
        return f"the standard library's {name}"
    site = install.package_dir.parent
    beside = [site / name] + [site / f"{name}{suffix}" for suffix in importlib.machinery.all_suffixes()]
    if any(os.path.lexists(path) for path in beside) and not is_our_overlay(site / name):
        return f"the {name} installed beside sglang in {site}"
    return ""


def _empty_folder(path: Path) -> bool:
    try:
        return path.is_dir() and not any(path.iterdir())
    except OSError:
        return False
