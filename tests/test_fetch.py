"""Release wheels: which members are unpacked, and that the cache is used before the network."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from eagle3_patch import fetch


def test_extract_keeps_model_files_version_files_and_metadata(tmp_path: Path) -> None:
    wheel = tmp_path / "sglang-9.9.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in (
            "sglang/__init__.py",
            "sglang/_version.py",
            "sglang/srt/__init__.py",
            "sglang/srt/models/qwen3_5.py",
            "sglang/srt/layers/big_kernel.py",
            "sglang-9.9.9.dist-info/RECORD",
            "other/thing.py",
        ):
            archive.writestr(name, "# x\n")
    package = fetch.extract_release(wheel, tmp_path / "site")
    files = sorted(str(p.relative_to(tmp_path / "site")) for p in (tmp_path / "site").rglob("*") if p.is_file())
    assert package == tmp_path / "site" / "sglang"
    assert files == [
        "sglang-9.9.9.dist-info/RECORD",
        "sglang/__init__.py",
        "sglang/_version.py",
        "sglang/srt/__init__.py",
        "sglang/srt/models/qwen3_5.py",
    ]


def test_cached_wheel_is_used_without_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = tmp_path / "sglang-0.5.10.post1-py3-none-any.whl"
    cached.write_bytes(b"")
    (tmp_path / "sglang-0.5.10-py3-none-any.whl").write_bytes(b"")
    monkeypatch.setenv(fetch.CACHE_ENV, str(tmp_path))

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip was called although the wheel is cached")

    monkeypatch.setattr(fetch.subprocess, "run", no_network)
    assert fetch.fetch_wheel("0.5.10.post1") == cached
    assert fetch.cache_dir() == tmp_path
