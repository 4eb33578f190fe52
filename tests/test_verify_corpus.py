"""verify's static and behaviour levels on every real release from the package index.

Patched releases pass with every check ours must meet; native releases pass
without a patch (what upstream's code does not offer is reported, not failed);
unpatched 0.5.11-0.5.21 fail at static naming the broken link; unsupported
releases exit 3.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from eagle3_patch.errors import EXIT_OK, EXIT_UNPATCHED, EXIT_UNSUPPORTED
from tests.conftest import expected_verdict, run_json

pytestmark = pytest.mark.corpus

INHERITED_LINK = (
    "Qwen3_5ForConditionalGeneration.set_eagle3_layers_to_capture (inherited from Qwen3VLForConditionalGeneration "
    "in qwen3_vl.py)"
)
NOBODY_READS = "it writes self.model.layers_to_capture, which Qwen3_5ForCausalLM.forward never reads"


def failed_checks(payload: dict, level: str) -> list[str]:
    return [f"{c['subject']}: {c['detail']}" for c in payload["levels"][level]["checks"] if not c["ok"]]


def test_verify_release(release: str, release_site: Callable[[str], Path], runner: CliRunner) -> None:
    root = ["--sglang-root", str(release_site(release))]
    verdict = expected_verdict(release)
    code, payload = run_json(runner, "verify", *root)
    if verdict == "unsupported":
        assert code == EXIT_UNSUPPORTED, payload
        return
    if verdict == "native":
        assert code == EXIT_OK, payload
        assert payload["levels"]["static"]["status"] == "passed"
        behaviour = payload["levels"]["behaviour"]
        assert behaviour["status"] == "passed"
        assert all(c["ok"] for c in behaviour["checks"] if c["required"])
        assert payload["levels"]["cuda"]["status"] == "skipped"
        return

    assert code == EXIT_UNPATCHED, payload
    assert payload["levels"]["static"]["status"] == "failed"
    broken = failed_checks(payload, "static")
    assert any(line.startswith(INHERITED_LINK) and line.endswith(NOBODY_READS) for line in broken), broken
    assert any(
        line.startswith("Qwen3_5ForCausalLM.set_eagle3_layers_to_capture: Qwen3_5ForCausalLM (qwen3_5.py) has no")
        for line in broken
    )
    assert payload["levels"]["behaviour"] == {"status": "skipped", "detail": "the static level failed", "checks": []}

    assert run_json(runner, "apply", *root)[0] == EXIT_OK
    code, payload = run_json(runner, "verify", *root)
    assert code == EXIT_OK, payload
    for level in ("static", "behaviour"):
        assert payload["levels"][level]["status"] == "passed"
        assert failed_checks(payload, level) == []
    assert payload["levels"]["cuda"]["status"] == "skipped"
    wrappers = {c["subject"].split(".")[0] for c in payload["levels"]["behaviour"]["checks"]}
    assert {"Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration", "Qwen3_5ForCausalLM"} <= wrappers
