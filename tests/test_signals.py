"""Ctrl-C and SIGTERM while files change: all of them change or none, and the exit code says which signal.

Real processes, started through ``tests/fault_injection.py``: one family sends
the signal from inside right after a named writer step (deterministic), the
other watches the first target from outside and signals the moment it is
replaced (what a user or ``docker build`` cancelling does).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from eagle3_patch.errors import EXIT_OK, EXIT_UNPATCHED
from eagle3_patch.ledger import BACKUP_SUFFIX, LEDGER_NAME
from eagle3_patch.write.signals import held_signals
from tests.fault_injection import KILL_AFTER_ENV, KILL_SIGNAL_ENV, STEP_DELAY_ENV
from tests.test_reliability import TARGETS, assert_whole, command, install, leftovers, models, run

__all__ = ["install"]  # the fixture, shared with test_reliability

# (verb, step the signal follows, what must happen): before the first replace the run rolls back,
# from the first replace on it finishes.
CASES = [
    ("apply", "backup", "rolled back"),
    ("apply", "ledger", "rolled back"),
    ("apply", "replace", "finished"),
    ("revert", "bytecode-before", "rolled back"),
    ("revert", "replace", "finished"),
]


def _records(site: Path) -> list[str]:
    return sorted(p.name for p in models(site).iterdir() if p.name.endswith(BACKUP_SUFFIX) or p.name == LEDGER_NAME)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(("verb", "step", "outcome"), CASES, ids=[f"{v}-after-{s}" for v, s, _ in CASES])
def test_a_signal_mid_write_finishes_or_rolls_back(
    install: tuple, verb: str, step: str, outcome: str, signum: int
) -> None:
    site, pristine, patched = install
    if verb == "revert":
        assert run(site, "apply").returncode == EXIT_OK
    records_before = _records(site)
    done = run(site, verb, env={KILL_AFTER_ENV: step, KILL_SIGNAL_ENV: signal.Signals(signum).name})
    assert done.returncode == 128 + signum, done.stderr
    error = json.loads(done.stdout)["error"]
    assert signal.Signals(signum).name in error and outcome in error
    states = assert_whole(site, pristine, patched)
    before, after = ("original", "patched") if verb == "apply" else ("patched", "original")
    assert set(states.values()) == {after if outcome == "finished" else before}, states
    if outcome == "rolled back":
        assert _records(site) == records_before, "the records are exactly as before"
    else:
        assert _records(site) == (
            [] if verb == "revert" else sorted([*(n + BACKUP_SUFFIX for n in TARGETS), LEDGER_NAME])
        )
    assert leftovers(site) == []
    again = run(site, "check")
    assert again.returncode == (EXIT_OK if set(states.values()) == {"patched"} else EXIT_UNPATCHED), again.stdout


def test_signals_sent_from_outside_at_the_first_replacement(install: tuple) -> None:
    """Watch the first target's inode; signal the moment it changes; 12 trials, alternating verbs and signals."""
    site, pristine, patched = install
    first = models(site) / TARGETS[0]
    landed = 0
    for trial in range(12):
        signum = (signal.SIGINT, signal.SIGTERM)[trial % 2]
        verb = "revert" if set(assert_whole(site, pristine, patched).values()) == {"patched"} else "apply"
        inode = first.stat().st_ino
        process = subprocess.Popen(
            command(site, verb),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, STEP_DELAY_ENV: "0.05"},
        )
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if first.lstat().st_ino != inode:
                    process.send_signal(signum)
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.001)
        stdout, stderr = process.communicate(timeout=60)
        states = assert_whole(site, pristine, patched)
        assert len(set(states.values())) == 1, f"trial {trial}: half the install changed: {states}"
        if process.returncode == 128 + signum:
            landed += 1
            assert "finished" in json.loads(stdout)["error"], stderr
            assert set(states.values()) == {"patched" if verb == "apply" else "original"}
        else:
            assert process.returncode == EXIT_OK, stderr
        assert leftovers(site) == []
    assert landed >= 6, f"only {landed} of 12 signals landed while the files were being replaced"


def test_held_signals_are_noted_and_handlers_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with held_signals() as received:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
    assert received == [signal.SIGTERM, signal.SIGINT]
    assert signal.getsignal(signal.SIGTERM) is before
