"""Ctrl-C (or SIGTERM: `kill`, a cancelled CI job) while plan or apply works in threads, one per host.

The signal reaches the main thread, which only waits for the hosts; the threads doing the work
learn of it here and stop at their next step (a statement, a wait), and the statement each has
running on the server is cancelled (postgres.connect.cancel_running). A transaction in progress is
then rolled back rather than committed after the user asked to stop.
"""

from __future__ import annotations

import threading

from erpprov.errors import ErpprovError

_requested = threading.Event()
_signal: list[int] = []  # the signal that asked, for the exit status (128 + it)


class Interrupted(ErpprovError):
    def __init__(self) -> None:
        super().__init__("interrupted", hint="the changes in progress were rolled back; "
                                             "what the recap counts as changed was committed before")


def request(signum: int) -> None:
    _signal.append(signum)
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def requested_by() -> int | None:
    """The signal that asked the work to stop, if one did."""
    return _signal[0] if _signal else None


def check() -> None:
    """Raise Interrupted once a signal asked the work to stop."""
    if _requested.is_set():
        raise Interrupted()
