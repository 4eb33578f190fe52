"""Declarative data for eagle3-patch: targets.toml (what to change, where, with which
templates) and verified.toml (every release proven end to end).

This folder is the package ``eagle3_patch.anchors`` (the top-level ``anchors/`` links here). Its
only code is ``data()``, which reads one of those files.
"""

from __future__ import annotations

import os


def data(name: str) -> bytes:
    """The bytes of one data file of this package.

    For a package on disk (every wheel and editable install) that is the file
    beside this one, as ``importlib.resources`` would find it; that module is
    imported only for other loaders (a zip), because its import alone costs a
    tenth of ``check``'s time budget.
    """
    path = os.path.join(os.path.dirname(__file__), name)
    if os.path.isfile(path):
        with open(path, "rb") as file:
            return file.read()
    from importlib import resources

    return resources.files(__name__).joinpath(name).read_bytes()
