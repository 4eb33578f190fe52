"""eagle3-patch: give SGLang's Qwen3.5/Qwen3.6 models the EAGLE-3 capture hook they lack."""

import os as _os
import sys as _sys

__version__ = "0.1.0"

#: Names the sglang folder to work on when neither --sglang-root nor --python is given.
ROOT_ENV = "EAGLE3_PATCH_SGLANG_ROOT"


def _checkout_anchors() -> None:
    """Make ``eagle3_patch.anchors`` importable when this package is a source checkout's folder.

    Installs (wheel or editable) map the top-level ``anchors/`` folder to
    ``eagle3_patch.anchors``. Python run from the checkout's root (``python -m
    eagle3_patch``, a test run against a non-editable install) imports this
    folder instead, where there is no ``anchors`` inside: load the one beside it.
    """
    here = _os.path.dirname(__file__)
    beside = _os.path.join(_os.path.dirname(here), "anchors", "__init__.py")
    name = __name__ + ".anchors"
    if name in _sys.modules or _os.path.isdir(_os.path.join(here, "anchors")) or not _os.path.isfile(beside):
        return
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, beside, submodule_search_locations=[_os.path.dirname(beside)])
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    _sys.modules[name] = module
    spec.loader.exec_module(module)


_checkout_anchors()
