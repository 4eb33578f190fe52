"""Run the eagle3-patch CLI with faults injected between the writer's steps (tests only).

    python -m tests.fault_injection apply --sglang-root SITE --json

Reads three variables, so a test can start real processes and kill, signal or race them:

- ``EAGLE3_PATCH_TEST_STEP_DELAY=SECONDS``: sleep after every step, widening the
  windows where another process or a signal can land;
- ``EAGLE3_PATCH_TEST_KILL_AFTER=STEP[:N]``: SIGKILL this process right after the
  N-th (default first) time the writer finishes STEP;
- ``EAGLE3_PATCH_TEST_KILL_SIGNAL=SIGTERM``: send that signal instead of SIGKILL
  (what Ctrl-C, ``docker build`` cancelling or a CI timeout send);
- ``EAGLE3_PATCH_TEST_START_GATE=FOLDER``: once Python and the CLI are imported,
  create ``FOLDER/ready-<pid>`` and block on a shared lock of ``FOLDER/gate.lock``
  until the test drops its exclusive one, so a test can release many processes
  into the command at the same instant (``gate``).

The product has no such code: ``eagle3_patch.write`` only calls the step
callback it is given; this launcher hands it one.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from eagle3_patch import write

STEP_DELAY_ENV = "EAGLE3_PATCH_TEST_STEP_DELAY"
KILL_AFTER_ENV = "EAGLE3_PATCH_TEST_KILL_AFTER"
KILL_SIGNAL_ENV = "EAGLE3_PATCH_TEST_KILL_SIGNAL"
START_GATE_ENV = "EAGLE3_PATCH_TEST_START_GATE"
GATE = "gate.lock"


def wait_at_gate(folder: str) -> None:
    """Say this process is ready, then block until the test releases its exclusive lock on the gate."""
    gate = Path(folder)
    (gate / f"ready-{os.getpid()}").touch()
    with (gate / GATE).open("rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)


@contextlib.contextmanager
def gate(folder: Path, processes: int, timeout: float = 120) -> Iterator[None]:
    """Hold the gate in ``folder`` shut while the body starts ``processes`` launchers; open it once all wait there."""
    folder.mkdir()
    with (folder / GATE).open("wb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
        deadline = time.monotonic() + timeout
        while len(list(folder.glob("ready-*"))) < processes:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(list(folder.glob('ready-*')))} of {processes} reached the gate")
            time.sleep(0.01)
        fcntl.flock(handle, fcntl.LOCK_UN)


def injector() -> write.StepCallback:
    """A step callback that does what the variables ask."""
    delay = float(os.environ.get(STEP_DELAY_ENV) or 0)
    name, _, count = (os.environ.get(KILL_AFTER_ENV) or "").partition(":")
    taken: dict[str, int] = {}
    kill_with = signal.Signals[os.environ.get(KILL_SIGNAL_ENV) or "SIGKILL"]

    def on_step(step: str) -> None:
        if delay:
            time.sleep(delay)
        taken[step] = taken.get(step, 0) + 1
        if step == name and taken[step] == int(count or 1):
            os.kill(os.getpid(), kill_with)

    return on_step


def main() -> int:
    on_step = injector()
    # The CLI imports these from eagle3_patch.write when a command runs.
    write.execute = functools.partial(write.execute, on_step=on_step)  # type: ignore[assignment]
    write.install_lock = functools.partial(write.install_lock, on_step=on_step)  # type: ignore[assignment]
    from eagle3_patch.cli import main as cli_main

    if os.environ.get(START_GATE_ENV):
        wait_at_gate(os.environ[START_GATE_ENV])
    sys.argv[0] = "eagle3-patch"
    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
