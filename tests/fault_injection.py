"""Run the eagle3-patch CLI with faults injected between the writer's steps (tests only).

    python -m tests.fault_injection apply --sglang-root SITE --json

Reads three variables, so a test can start real processes and kill, signal or race them:

- ``EAGLE3_PATCH_TEST_STEP_DELAY=SECONDS``: sleep after every step, widening the
  windows where another process or a signal can land;
- ``EAGLE3_PATCH_TEST_KILL_AFTER=STEP[:N]``: SIGKILL this process right after the
  N-th (default first) time the writer finishes STEP;
- ``EAGLE3_PATCH_TEST_KILL_SIGNAL=SIGTERM``: send that signal instead of SIGKILL
  (what Ctrl-C, ``docker build`` cancelling or a CI timeout send).

The product has no such code: ``eagle3_patch.write`` only calls the step
callback it is given; this launcher hands it one.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time

from eagle3_patch import write

STEP_DELAY_ENV = "EAGLE3_PATCH_TEST_STEP_DELAY"
KILL_AFTER_ENV = "EAGLE3_PATCH_TEST_KILL_AFTER"
KILL_SIGNAL_ENV = "EAGLE3_PATCH_TEST_KILL_SIGNAL"


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

    sys.argv[0] = "eagle3-patch"
    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
