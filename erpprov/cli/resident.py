"""The resident process: erpprov's modules imported once, a forked child per command.

See erpprov/launch.py for the client side and the trust rules. The resident itself never runs a
command: it reads each request, forks, and the child becomes what `erpprov ARGS` started in the
client's directory, with its environment and its stdin, stdout and stderr would have been. Only
the parent process's main thread exists when it forks (fork copies no other thread, so no lock
can be left held). It exits after a time without requests, on `erpprov resident stop`, on
SIGTERM, or when its socket is no longer the one it bound.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import gc
import io
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from erpprov.launch import (
    connect,
    fingerprint,
    peer_uid,
    reachable,
    receive_message,
    resident_dir,
    send_message,
    socket_path,
    unsafe,
)

# What a command imports before its work starts, loaded once here.
WARM_MODULES = ("psycopg", "pglast", "pglast.parser", "jinja2", "yaml", "erpprov.load.project",
                "erpprov.plan.build", "erpprov.plan.render", "erpprov.plan.planfile", "erpprov.apply.host",
                "erpprov.ops.export", "erpprov.ops.drift", "erpprov.ops.diagram", "erpprov.fanout",
                "erpprov.drivers.docker", "docker")
REQUEST_SECONDS = 5.0  # how long a connection may take to send its request
STARTING_SECONDS = 30.0  # how long a start waits for another start of the same code
GRACE_SECONDS = 10.0  # how long a command whose client is gone may take to end after SIGTERM


class ResidentError(Exception):
    pass


def warm() -> None:
    import importlib

    for name in WARM_MODULES:
        importlib.import_module(name)
    from erpprov.load.project import build_validators
    from erpprov.load.sandbox import prepare

    build_validators()
    prepare()
    gc.collect()
    gc.freeze()  # what every child shares, out of the collector's sight (and its pages not rewritten)


def _ask(op: str, path: Path | None) -> dict[str, Any] | None:
    """The running resident's answer to ``op``, or None if no resident of this code answers."""
    sock = connect(str(path or socket_path()), timeout=REQUEST_SECONDS)
    if sock is None:
        return None
    with sock:
        try:
            send_message(sock, {"op": op})
            reply, _ = receive_message(sock)
        except (OSError, ValueError, EOFError):
            return None
    return reply


def status(path: Path | None = None) -> dict[str, Any] | None:
    """What the running resident of this code says about itself, or None if there is none."""
    return _ask("status", path)


def stop(path: Path | None = None) -> bool:
    return _ask("stop", path) is not None


def start(idle_seconds: float) -> dict[str, Any]:
    """Start a resident in the background and return its status once it accepts commands."""
    if not sys.platform.startswith("linux"):
        raise ResidentError("the resident process needs Linux (it passes descriptors over a Unix socket)")
    directory = Path(resident_dir())
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    problem = unsafe(str(directory))
    if problem is not None:
        raise ResidentError(problem)
    code = fingerprint()
    path = Path(socket_path(code))
    running = status(path)
    if running is not None:
        return {**running, "already": True}
    lock = _locked(path)
    if lock is None:  # another start of this code is under way (two commands at once): wait for it
        return {**_answered(path), "already": True}
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the first child: a session of its own, then the resident is its child
        os.close(read_end)
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            _daemon(path, code, idle_seconds, write_end, lock)
        except BaseException:  # never back into the caller's code in a forked process
            os._exit(1)
        os._exit(0)
    os.close(write_end)
    os.close(lock)  # the resident holds it from here on
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        said = pipe.read().decode(errors="replace").strip()
    if said != "ready":
        raise ResidentError(said or "the resident process ended before it was ready")
    found = status(path)
    if found is None:
        raise ResidentError("the resident process started but does not answer")
    return found


def _locked(path: Path) -> int | None:
    """A descriptor holding the lock of ``path``'s resident, or None when another process holds it.
    The resident holds it while it lives: one resident per code, and a socket left at ``path``
    while nobody holds it is a dead one's, safe to remove."""
    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _answered(path: Path) -> dict[str, Any]:
    """The status of a resident another process is starting, once it answers."""
    deadline = time.monotonic() + STARTING_SECONDS
    while time.monotonic() < deadline:
        found = status(path)
        if found is not None:
            return found
        time.sleep(0.05)
    raise ResidentError(f"another resident process is starting and did not answer within {STARTING_SECONDS:g} s")


def _daemon(path: Path, code: str, idle_seconds: float, ready_fd: int, lock: int) -> None:
    os.chdir("/")
    kept = sorted((ready_fd, lock))  # nothing else of the starting process's stays open in the resident
    os.closerange(3, kept[0])
    os.closerange(kept[0] + 1, kept[1])
    os.closerange(kept[1] + 1, os.sysconf("SC_OPEN_MAX"))
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    try:
        warm()
        listener = _bind(path)
    except BaseException as exc:
        os.write(ready_fd, f"the resident process could not start: {exc}".encode())
        os.close(ready_fd)
        os._exit(1)
    identity = os.stat(path).st_ino
    os.write(ready_fd, b"ready")
    os.close(ready_fd)
    _stop_superseded(path)
    try:
        _serve(listener, path, identity, code, idle_seconds, lock)
    finally:
        try:  # only the socket this process bound: a newer resident may have taken the name
            if os.stat(path).st_ino == identity:
                path.unlink()
        except OSError:
            pass
    os._exit(0)


def _stop_superseded(path: Path) -> None:
    """Stop the residents of this same installation's older code (erpprov edited or upgraded in
    place): no client of this installation reaches them any more. A resident of another
    installation (another virtualenv) serves its own clients and is left alone."""
    for other in path.parent.glob("resident-*.sock"):
        if other == path:
            continue
        found = status(other)
        if found is not None and found.get("install") == _installation():
            stop(other)


def _installation() -> str:
    return f"{sys.executable}\0{Path(__file__).resolve().parent.parent}"


def _bind(path: Path) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if path.is_socket():  # a resident that died without cleaning up: the live one holds the lock
        path.unlink()
    old = os.umask(0o077)
    try:
        with reachable(str(path)) as address:
            listener.bind(address)
    finally:
        os.umask(old)
    listener.listen(32)
    return listener


def _serve(listener: socket.socket, path: Path, identity: int, code: str, idle_seconds: float, lock: int) -> None:
    # SIGTERM or SIGINT wakes the select() through this pipe (select restarts after a handler that
    # returns, so a flag alone would be seen only at the next timeout).
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: None)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    started = time.time()
    served = 0
    last = time.monotonic()
    stopping = False
    while not stopping:
        left = idle_seconds - (time.monotonic() - last)
        if left <= 0:
            break
        ready, _, _ = select.select([listener.fileno(), wake_read], [], [], min(left, 60.0))
        if wake_read in ready:
            break
        try:  # a socket removed or replaced (another start, a cleanup) is no longer ours to serve
            if os.stat(path).st_ino != identity:
                break
        except OSError:
            break
        if not ready:
            continue
        try:
            conn, _ = listener.accept()
        except OSError:
            continue
        last = time.monotonic()
        with conn:
            try:
                if peer_uid(conn) != os.getuid():
                    continue
                conn.settimeout(REQUEST_SECONDS)
                request, fds = receive_message(conn, max_fds=3)
            except (OSError, ValueError, EOFError):
                continue
            op = request.get("op")
            if op == "status":
                _reply(conn, {"pid": os.getpid(), "socket": str(path), "code": code, "started": started,
                              "served": served, "idle_seconds": idle_seconds, "install": _installation()})
            elif op == "stop":
                _reply(conn, {"stopping": True})
                stopping = True
            elif op == "run" and len(fds) == 3:
                served += 1
                child = os.fork()
                if child == 0:
                    listener.close()
                    os.close(lock)  # a command still running when the resident has gone holds nothing
                    signal.set_wakeup_fd(-1)
                    os.close(wake_read)
                    os.close(wake_write)
                    try:
                        _run_child(conn, request, fds)
                    finally:
                        os._exit(1)  # a child never goes back to serving
            else:
                _reply(conn, {"refused": "unknown request"})
            for fd in fds:
                os.close(fd)


def _reply(conn: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        send_message(conn, message)


def _run_child(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """Become the process `erpprov ARGV` would have been, run the command, report its status."""
    status = 1
    _reply(conn, {"pid": os.getpid()})  # first: the client forwards its signals here
    gone = _ends_with_client(conn)
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the command waits for its own subprocesses
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd, target in zip(fds, (0, 1, 2), strict=True):
            os.dup2(fd, target)
            os.close(fd)
        encoding = str(request.get("encoding") or "utf-8")
        # New streams on the client's descriptors, buffered as a process of its own would buffer them.
        sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding=encoding)
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding=encoding,
                                      line_buffering=os.isatty(1))
        sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding=encoding,
                                      errors="backslashreplace", line_buffering=True)
        env = request["env"]
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in env.items()})
        time.tzset()  # TZ as the client has it
        os.chdir(str(request["cwd"]))
        os.umask(int(request["umask"]))
        argv = [str(a) for a in request["argv"]]
        sys.argv = ["erpprov", *argv]
        status = _command(argv)
    except BaseException:
        traceback.print_exc()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # nothing may interrupt the last steps
        if gone.is_set():
            os._exit(128 + signal.SIGTERM)  # as a killed process: its buffered output is lost
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        _reply(conn, {"exit": status})
        os._exit(status)


def _ends_with_client(conn: socket.socket) -> threading.Event:
    """End the command when its client ends (killed, its terminal closed), as the command run in
    the client's own process would: SIGTERM first, so that it rolls back and cleans up as on
    `kill`, then, if it has not ended GRACE_SECONDS later, at once. The client sends nothing after
    its request, so the connection's end is the client's."""
    gone = threading.Event()
    conn.settimeout(None)

    def watch() -> None:
        with contextlib.suppress(OSError):
            while conn.recv(1):
                pass
        gone.set()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(GRACE_SECONDS)
        os._exit(128 + signal.SIGTERM)

    threading.Thread(target=watch, name="erpprov-client", daemon=True).start()
    return gone


def _command(argv: list[str]) -> int:
    """The exit status of the CLI run on ``argv``, after every thread it started has finished, as
    a process's exit waits for them; then the exit handlers run as they would."""
    from erpprov.cli import main

    try:
        main(argv, prog_name="erpprov")
        status = 0
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except KeyboardInterrupt:
        status = 130
    except BaseException:
        traceback.print_exc()
        status = 1
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    return status


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
