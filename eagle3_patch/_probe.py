"""Find the installed sglang package without importing it.

This file runs in two ways: imported by eagle3_patch.locate for the running
interpreter, and as the source of ``python -c`` in another interpreter given by
``--python``. It must therefore stay self-contained, import nothing from
eagle3_patch, and run on any Python 3 that SGLang supports. ``find_spec`` on a
top-level name consults the import system (editable-install finders included)
but does not execute the package's ``__init__``.
"""

import json
import os
import stat
import sys


def probe():  # type: () -> dict[str, str | None]
    """Describe where ``sglang`` would be imported from, as a JSON-ready dict."""
    import importlib.util

    result = {
        "python": sys.executable,
        "package_dir": None,
        "version": None,
        "dist_info": None,
        "editable_url": None,
        # Where this interpreter keeps bytecode instead of __pycache__ (PYTHONPYCACHEPREFIX), if anywhere.
        "pycache_prefix": getattr(sys, "pycache_prefix", None),
    }
    # The current directory is on sys.path for -c and -m; an sglang folder there
    # would shadow the install we are asked about.
    cwd = os.getcwd()
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if p not in ("", ".", cwd)]
    try:
        spec = importlib.util.find_spec("sglang")
    except (ImportError, ValueError):
        spec = None
    finally:
        sys.path[:] = saved
    # A folder without __init__.py (a namespace package) is not an install: it is
    # what an uninstall leaves when files it did not install remain, such as our lock.
    if spec is not None and spec.submodule_search_locations and spec.origin:
        package_dir = str(list(spec.submodule_search_locations)[0])
        result["package_dir"] = package_dir
        # A wheel install keeps its metadata beside the package: read it directly,
        # which is much cheaper than importing importlib.metadata.
        site = os.path.dirname(os.path.abspath(package_dir))
        for name in sorted(os.listdir(site)):
            if name.startswith("sglang-") and name.endswith(".dist-info"):
                version = _metadata_version(os.path.join(site, name, "METADATA"))
                if version:
                    result["version"] = version
                    result["dist_info"] = os.path.join(site, name)
                    return result
    try:
        import importlib.metadata as metadata

        dist = metadata.distribution("sglang")
    except Exception:
        return result
    result["version"] = dist.version
    dist_path = getattr(dist, "_path", None)
    result["dist_info"] = str(dist_path) if dist_path is not None else None
    direct_url_path = os.path.join(str(dist_path), "direct_url.json") if dist_path is not None else ""
    try:  # only a regular file is read: a FIFO there must not hang the probe
        text = dist.read_text("direct_url.json") if os.path.isfile(direct_url_path) else None
        direct_url = json.loads(text or "null")
    except (ValueError, OSError, RecursionError):
        direct_url = None
    if isinstance(direct_url, dict) and (direct_url.get("dir_info") or {}).get("editable"):
        result["editable_url"] = direct_url.get("url")
    return result


def _metadata_version(path):  # type: (str) -> str | None
    # Opened without blocking and read only if a regular file: a FIFO there must not hang the probe.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, 1 << 16)
    except OSError:
        return None
    finally:
        os.close(fd)
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
        if not line.strip():
            return None
    return None


if __name__ == "__main__":
    sys.stdout.write(json.dumps(probe()))
