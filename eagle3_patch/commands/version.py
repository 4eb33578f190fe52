"""``eagle3-patch --version``: the tool, the anchors data, and the SGLang releases it has been proven on."""

from __future__ import annotations

from packaging.version import Version

from eagle3_patch import __version__
from eagle3_patch.verified import anchors_version, load_verified


def version_line() -> str:
    by_verdict: dict[str, list[Version]] = {}
    for release in load_verified():
        by_verdict.setdefault(release.verdict, []).append(Version(release.version))
    everything = sorted(v for versions in by_verdict.values() for v in versions)
    ranges = ", ".join(
        f"{verdict} {min(versions)}-{max(versions)}"
        for verdict, versions in sorted(by_verdict.items(), key=lambda item: min(item[1]))
    )
    return (
        f"eagle3-patch {__version__} (anchors data {anchors_version()}; "
        f"verified sglang {everything[0]} to {everything[-1]}: {ranges})"
    )
