"""A fork server for many `erpprov` CLI runs: it imports the CLI once, then forks one child per run.

Each child is the real command (`erpprov.cli.main`, exactly what `python -m erpprov` calls) in its own
process: its own process group, working directory, stdout/stderr files, RLIMIT_AS and a timeout
after which the whole group is SIGKILLed. Only the ~0.7 s of interpreter start and imports is
shared, which keeps dozens of hostile-input runs within the suite's time budget.

Protocol: a JSON list of jobs on stdin ({"cwd", "args", "timeout", "mem"}), a JSON list of results
({"returncode", "stdout", "stderr", "seconds"}; returncode -999 means killed at the timeout) on stdout.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import tempfile
import time

TIMED_OUT = -999


def _child(job: dict, out: str, err: str) -> None:
    try:
        os.setsid()
        if job.get("mem"):
            resource.setrlimit(resource.RLIMIT_AS, (job["mem"], job["mem"]))
        os.chdir(job["cwd"])
        for fd, path in ((1, out), (2, err)):
            handle = os.open(path, os.O_WRONLY | os.O_TRUNC)
            os.dup2(handle, fd)
            os.close(handle)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        from erpprov.cli import main

        try:
            main(job["args"], prog_name="erpprov")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # what `python -m erpprov` would print: a traceback, exit 1
            import traceback

            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        code = 1
    os._exit(code)


def serve(jobs: list[dict], parallel: int) -> list[dict]:
    results: list[dict | None] = [None] * len(jobs)
    running: dict[int, tuple[int, float, str, str]] = {}
    pending = list(range(len(jobs)))
    while pending or running:
        while pending and len(running) < parallel:
            index = pending.pop(0)
            out = tempfile.mkstemp(prefix="forkcli-out-")[1]
            err = tempfile.mkstemp(prefix="forkcli-err-")[1]
            pid = os.fork()
            if pid == 0:
                _child(jobs[index], out, err)
            running[pid] = (index, time.monotonic(), out, err)
        time.sleep(0.02)
        for pid, (index, started, out, err) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            elapsed = time.monotonic() - started
            if done == 0 and elapsed < jobs[index]["timeout"]:
                continue
            if done == 0:
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                code = TIMED_OUT
            else:
                code = os.waitstatus_to_exitcode(status)
            with open(out, errors="replace") as o, open(err, errors="replace") as e:
                results[index] = {"returncode": code, "stdout": o.read(1 << 20), "stderr": e.read(1 << 22),
                                  "seconds": elapsed}
            os.unlink(out)
            os.unlink(err)
            del running[pid]
    return results  # type: ignore[return-value]


if __name__ == "__main__":
    # imported once, before any fork
    import erpprov.cli
    import erpprov.load.project  # noqa: F401

    request = json.load(sys.stdin)
    json.dump(serve(request["jobs"], request.get("parallel", 2)), sys.stdout)
