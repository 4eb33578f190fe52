"""``eagle3-patch overlay``: locate -> classify -> build the package -> write it under ``--out``.

Classifies exactly as ``apply`` does and refuses what ``apply`` refuses
(unsupported, exit 3); patched and native installs need no overlay (exit 0,
nothing written). Nothing inside the install is read for writing or locked:
the package is written only under ``--out``, which must lie outside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from eagle3_patch.classify import InstallReport, classify_install
from eagle3_patch.errors import UsageError
from eagle3_patch.locate import locate
from eagle3_patch.overlay import Overlay, build_overlay, valid_package_name
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
    package = Path(os.path.realpath(install.package_dir))
    if Path(os.path.realpath(folder)).is_relative_to(package):
        raise UsageError(f"--out {out} lies inside the sglang package; the overlay must not change the install")
    built = build_overlay(report, load_spec(), name=name)
    if built is None:
        return OverlayResult(report, folder, None)
    written = write_new_tree(folder / name, {"__init__.py": built.init_source.encode("utf-8")})
    return OverlayResult(report, folder, built, written)
