"""Ctrl-C and SIGTERM wait for the transaction: files change all together or not at all.

Docker cancelling a build and CI timing out send SIGTERM; a user sends SIGINT.
While ``held_signals`` is active both are noted instead of acted on; the writer
then rolls back (no file replaced yet) or finishes (replacing had begun), and
raises ``Interrupted`` with the shell's exit code (130, 143). SIGKILL cannot be
held: each file is whole whenever it lands, and the next run finishes the job.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HELD = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def held_signals() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM for the block; yields the signals that arrived (in order)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield received
        return

    def note(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {number: signal.signal(number, note) for number in HELD}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name
