"""Maintainer tool: print anchors/verified.toml rows for releases the table lacks.

    python scripts/verified_rows.py            # releases newer than the table
    python scripts/verified_rows.py --all      # every release from 0.5.8 on
    python scripts/verified_rows.py 0.5.24     # just these

For each release it downloads the wheel (cached, see eagle3_patch.fetch),
classifies it from its code, runs the real apply into a temporary copy, and
prints the sha256 of each target file before and after. Review the rows, paste
them into anchors/verified.toml, and run the corpus tests.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from packaging.version import Version

from eagle3_patch.classify import classify_install
from eagle3_patch.fetch import extract_release, fetch_wheel, index_versions
from eagle3_patch.ledger import sha256_hex
from eagle3_patch.locate import locate_root
from eagle3_patch.plan import plan_apply
from eagle3_patch.spec import load_spec
from eagle3_patch.states import NATIVE, UNPATCHED, UNSUPPORTED
from eagle3_patch.verified import load_verified
from eagle3_patch.write import execute

FIRST_RELEASE = "0.5.8"


def release_row(version: str) -> str:
    """One [[release]] table for ``version``, computed from the real wheel."""
    spec = load_spec()
    with tempfile.TemporaryDirectory() as site:
        extract_release(fetch_wheel(version), Path(site))
        install = locate_root(Path(site), found_by="verified_rows")
        report = classify_install(install, spec)
        pristine = {f.spec.name: sha256_hex(f.content) for f in report.files if f.content is not None}
        patched: dict[str, str] = {}
        if report.state == UNPATCHED:
            plan = plan_apply(report, spec)
            assert plan.write is not None
            execute(plan.write)
            patched = {f.report.spec.name: sha256_hex(f.new_content) for f in plan.files}
    verdict = {UNPATCHED: "patch", NATIVE: "native", UNSUPPORTED: "unsupported"}.get(report.state)
    if verdict is None:
        raise SystemExit(f"{version}: a fresh wheel reads as {report.state}; investigate before adding it")
    lines = ["[[release]]", f'version = "{version}"', f'verdict = "{verdict}"']
    if verdict == "unsupported":
        reason = report.reason.split(": ", 1)[-1].replace('"', "'")
        lines.append(f'reason = "{reason}"')
    for name, digest in pristine.items():
        after = f', patched = "{patched[name]}"' if name in patched else ""
        lines.append(f'files."{name}" = {{ pristine = "{digest}"{after} }}')
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("versions", nargs="*", help="releases to compute (default: newer than the table)")
    parser.add_argument("--all", action="store_true", help=f"every release from {FIRST_RELEASE} on")
    args = parser.parse_args(argv)
    if args.versions:
        versions = args.versions
    else:
        available = index_versions(FIRST_RELEASE)
        known = {r.version for r in load_verified()}
        newest = max((Version(v) for v in known), default=Version("0"))
        versions = [v for v in available if args.all or (v not in known and Version(v) > newest)]
    if not versions:
        print("# the verified table covers every release on the index", file=sys.stderr)
    for version in versions:
        print(release_row(version))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
