"""Start-up hook for the interpreter that runs SGLang, copied as ``sitecustomize.py``.

SGLang's ``Engine`` runs the model in processes it spawns; they inherit the
environment but none of the parent's state. With the folder holding this file
(and ``capture_evidence.py``) on ``PYTHONPATH``, every such process runs it at
start-up:

- ``EAGLE3_PATCH_CPU_WORKAROUNDS=<folder>``: import ``cpu_workarounds`` from that
  folder and apply it (test support for running SGLang on a CPU; never set by
  ``eagle3-patch verify``).
- ``EAGLE3_PATCH_EVIDENCE=<file>``: record capture evidence into that file.

Then the ``sitecustomize`` this one shadows, if any, runs as it would have.
"""

import importlib.machinery
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def _chain() -> None:
    """Run the next ``sitecustomize`` on the path, so ours does not hide one."""
    rest = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != _HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


def _start() -> None:
    workarounds = os.environ.get("EAGLE3_PATCH_CPU_WORKAROUNDS")
    if workarounds:
        sys.path.insert(0, workarounds)
        import cpu_workarounds

        cpu_workarounds.apply_all()
    if os.environ.get("EAGLE3_PATCH_EVIDENCE"):
        if _HERE not in sys.path:
            sys.path.append(_HERE)
        import capture_evidence

        capture_evidence.install_from_env()


_start()
_chain()
