"""The launch command that works on the installed release.

The model cards' command names ``--mamba-scheduler-strategy`` (renamed
``--mamba-radix-cache-strategy`` in 0.5.14, gone from 0.5.20) and sets
``SGLANG_ENABLE_SPEC_V2`` (needed by 0.5.11 to 0.5.13, not read from 0.5.21).
Here each flag is checked against the release's ``ServerArgs`` fields, so one
it does not know is never printed, and the variable is set only where read.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from eagle3_patch.doctor.release import SPEC_V2_ENV, Release


@dataclass(frozen=True)
class Launch:
    env: tuple[tuple[str, str], ...]
    argv: tuple[str, ...]
    #: Settings the release has no flag for (left out of argv).
    dropped: tuple[str, ...]
    sglang_version: str

    @property
    def warnings(self) -> tuple[str, ...]:
        """One line per setting left out, for doctor and ``doctor --launch-only`` alike."""
        return tuple(
            f"sglang {self.sglang_version} has no {flag}; left out of the command{_CONSEQUENCES.get(flag, '')}"
            for flag in self.dropped
        )

    @property
    def command(self) -> str:
        return shlex.join([f"{k}={v}" for k, v in self.env] + list(self.argv)) if self.env else shlex.join(self.argv)


DRAFT_QUANTIZATION = "--speculative-draft-model-quantization"
_CONSEQUENCES = {
    DRAFT_QUANTIZATION: ": the unquantized drafter inherits the quantized target's method and may fail to load",
}


def flag_field(flag: str) -> str:
    """``--mamba-radix-cache-strategy`` -> ``mamba_radix_cache_strategy`` (how SGLang names them)."""
    return flag.removeprefix("--").replace("-", "_")


def launch_recipe(
    release: Release, *, target: str, draft: str, tp: int | None, unquantized_draft: bool = False
) -> Launch:
    """The model cards' settings under the names ``release`` knows.

    ``unquantized_draft``: the target is quantized and the drafter is not. SGLang
    gives the drafter the target's ``--quantization`` unless told ``unquant``.
    """
    settings: list[tuple[tuple[str, ...], str | None]] = [
        (("--model-path",), target),
        (("--speculative-algorithm",), "EAGLE3"),
        (("--speculative-draft-model-path",), draft),
        (("--speculative-num-steps",), "3"),
        (("--speculative-eagle-topk",), "1"),
        (("--speculative-num-draft-tokens",), "4"),
        (("--mamba-radix-cache-strategy", "--mamba-scheduler-strategy"), "extra_buffer"),
        *([(("--tp-size",), str(tp))] if tp is not None else []),
        *([((DRAFT_QUANTIZATION,), "unquant")] if unquantized_draft else []),
        (("--trust-remote-code",), None),
    ]
    argv = ["python", "-m", "sglang.launch_server"]
    dropped = []
    for names, value in settings:
        flag = next((n for n in names if flag_field(n) in release.fields), None)
        if flag is None:
            dropped.append(names[0])
            continue
        argv += [flag] if value is None else [flag, value]
    env = ((SPEC_V2_ENV, "1"),) if release.reads_spec_v2 else ()
    return Launch(env, tuple(argv), tuple(dropped), release.version)
