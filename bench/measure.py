"""Running a command as a whole process: wall-clock time, exit code, output and peak memory.

Peak memory comes from wait4() on that very child (ru_maxrss covers the child and the descendants
it waited for), so one run's figure is not polluted by an earlier, bigger child as
getrusage(RUSAGE_CHILDREN) would be.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Run:
    argv: list[str]
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    max_rss_kib: int
    timed_out: bool = False

    def check(self, what: str) -> Run:
        if self.returncode != 0:
            tail = "\n".join((self.stderr or self.stdout).strip().splitlines()[-25:])
            raise CommandFailed(f"{what} exited {self.returncode}" + (" (timed out)" if self.timed_out else "")
                                + f":\n{tail}")
        return self


class CommandFailed(RuntimeError):
    pass


def run(argv: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None,
        timeout: float = 3600) -> Run:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group of the child we started, nothing else

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(argv=argv, seconds=seconds, returncode=proc.returncode,
                   stdout=out.read().decode("utf-8", errors="replace"),
                   stderr=err.read().decode("utf-8", errors="replace"),
                   max_rss_kib=int(usage.ru_maxrss), timed_out=expired.is_set())


@dataclass
class Series:
    """Several timed runs of one measured command."""

    tool: str
    what: str
    size: int
    seconds: list[float] = field(default_factory=list)
    max_rss_kib: list[int] = field(default_factory=list)
    statements: int | None = None
    connections: int | None = None
    note: str = ""

    def add(self, result: Run) -> None:
        self.seconds.append(result.seconds)
        self.max_rss_kib.append(result.max_rss_kib)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def low(self) -> float:
        return min(self.seconds)

    @property
    def high(self) -> float:
        return max(self.seconds)

    @property
    def peak_mib(self) -> float:
        return max(self.max_rss_kib) / 1024 if self.max_rss_kib else 0.0

    def to_json(self) -> dict[str, object]:
        return {"tool": self.tool, "what": self.what, "size": self.size, "seconds": self.seconds,
                "median": self.median if self.seconds else None, "max_rss_kib": self.max_rss_kib,
                "statements": self.statements, "connections": self.connections, "note": self.note}
