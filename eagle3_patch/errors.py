"""Every failure eagle3-patch expects, each carrying the exit code the README documents.

Stages raise these; only the output layer turns them into one line (or one
JSON object), so the same condition gives the same code from every command.
Anything else that escapes a command is a bug: exit 70 with a traceback log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not at run time: the pre-commit hook never loads pathlib
    from pathlib import Path

#: Exit codes, the same for every command (README, "Exit codes").
EXIT_OK = 0
EXIT_UNPATCHED = 1
EXIT_USAGE = 2
EXIT_UNSUPPORTED = 3
EXIT_DRIFT = 4
EXIT_NOT_FOUND = 5
EXIT_CANNOT_WRITE = 6
EXIT_CUDA_UNAVAILABLE = 7
EXIT_INTERNAL = 70


class Eagle3PatchError(Exception):
    """An expected failure: one line naming the file and what to do next."""

    exit_code = EXIT_INTERNAL
    #: The short state name reported in --json output.
    state = "error"

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class UsageError(Eagle3PatchError):
    exit_code = EXIT_USAGE
    state = "usage-error"


class UnsupportedError(Eagle3PatchError):
    """No Qwen3.5, no capture mechanism to hook into, or an unknown layout."""

    exit_code = EXIT_UNSUPPORTED
    state = "unsupported"


class ValidationError(UnsupportedError):
    """Our own output failed a check before any write: nothing is written, and the layout is refused."""


class EngineArgsError(UnsupportedError):
    """This release's ServerArgs lacks an option the cuda level needs."""


class DriftError(Eagle3PatchError):
    """A file changed since we patched it, or our backup/record disagrees with it."""

    exit_code = EXIT_DRIFT
    state = "drifted"


class NotFoundError(Eagle3PatchError):
    exit_code = EXIT_NOT_FOUND
    state = "not-found"


class WriteError(Eagle3PatchError):
    """Nothing could be written (permission, read-only file system, disk full)."""

    exit_code = EXIT_CANNOT_WRITE
    state = "cannot-write"

    def __init__(self, message: str, *, path: Path | str | None = None, cause: str = "") -> None:
        super().__init__(message, path=path)
        #: "read-only" or "permission" where that is why: apply then names the overlay, which writes nothing there.
        self.cause = cause


class AccessError(WriteError):
    """A file eagle3-patch must read cannot be read (permissions): the same exit code as one it cannot write."""

    state = "cannot-read"


class PartialWriteError(WriteError):
    """A write failed, and so did putting back a file the run had already changed.

    Nothing is lost: every record of an original (backups, ledger) was kept. The
    message says which file is in which state; the command adds how to finish.
    """

    state = "partly-written"


class LockTimeout(WriteError):
    """Another eagle3-patch holds the install's lock for longer than --lock-timeout."""


class Interrupted(Eagle3PatchError):
    """SIGINT or SIGTERM arrived while files were changing: the run finished or rolled back first.

    The exit code is the shell's for that signal: 130 for SIGINT, 143 for SIGTERM.
    """

    state = "interrupted"

    def __init__(self, message: str, *, signum: int, path: Path | str | None = None) -> None:
        super().__init__(message, path=path)
        self.signum = signum
        self.exit_code = 128 + signum


# Errors in data, not in an install: they never reach the user as a state.


class SpecError(ValueError):
    """The shipped data (anchors/) is inconsistent: a bug in eagle3-patch, not in the install."""


class LedgerError(ValueError):
    """Our ledger cannot be read (truncated, edited, unknown format); classify then ignores it."""


class FetchError(RuntimeError):
    """A release could not be listed or downloaded from the package index."""
