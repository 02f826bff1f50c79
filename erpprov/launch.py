"""The `erpprov` entry point: hand the command to a resident process when one is running, else run it here.

A run of `erpprov plan` spends most of a small playbook's time before it reads anything: the
interpreter, then psycopg, pydantic, the model, pglast and the validators of the model (about
0.3 s, several times `pg_dump` of a small database). `erpprov resident start` keeps a process
that has done all of that once; this module, which imports only the standard library's light
modules, sends it the command line, the working directory, the environment and its own stdin,
stdout and stderr (SCM_RIGHTS), and the resident forks a child that runs the command as this
process would have, on these very file descriptors. The exit status comes back; signals this
process receives are passed on to the child.

When no resident of this code answers, the command runs here and a resident is started beside it,
detached, for the commands that follow (as Gradle's daemon is): it exits after AUTO_IDLE_MINUTES
without a command. ERPPROV_RESIDENT=manual (the default in a CI job) uses only a resident
`erpprov resident start` started; ERPPROV_RESIDENT=off runs every command in its own process.

Linux only (SCM_RIGHTS with SO_PEERCRED). Trust: the socket lives in a directory of the user's
own that nobody else may enter, and each side checks the other's uid (SO_PEERCRED). Its name
carries a digest of the code that would run
(erpprov's files, the interpreter, the libraries it imports), so a resident of older code is
never used: it exits when idle. Anything that fails before the resident accepts the command
(no resident, a stale one, an unsafe directory) runs the command here instead, silently.
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import sys
from collections.abc import Iterator
from importlib.machinery import PathFinder
from stat import S_ISDIR

# Commands that neither need a terminal of their own (psql, a shell) nor finish faster than a
# connection to the resident takes (--help, completion).
SERVED = frozenset({"plan", "apply", "validate", "export", "diff", "diagram", "status", "schema", "compose"})
SWITCH = "ERPPROV_RESIDENT"  # off | manual | auto (the default)
AUTO_IDLE_MINUTES = 15  # a resident nobody asked for by name does not stay long
# What a resident started here keeps of this process's environment: what decides which code it
# imports and where its socket goes. Nothing else (passwords in PGPASSWORD, tokens) stays in a
# process that outlives the command; each command gets its client's whole environment anyway.
_KEPT = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "TMPDIR", "VIRTUAL_ENV", "XDG_RUNTIME_DIR",
                   "XDG_CACHE_HOME"})
_LIBRARIES = ("psycopg", "pydantic", "pydantic_core", "pglast", "jinja2", "yaml", "click", "docker")
_HEADER = struct.Struct("!I")
MAX_REQUEST = 16 * 1024 * 1024  # the environment and command line, bounded


def main() -> None:
    code = run_resident(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from erpprov.cli import main as cli

    cli()


def switch() -> str:
    """off, manual or auto, from ERPPROV_RESIDENT. Unset, it is auto, except in a CI job (CI set, as
    CI services do): a job's machine lives for a few commands, and nothing should outlive them."""
    value = os.environ.get(SWITCH, "").strip().lower()
    if value in ("0", "off", "no", "false"):
        return "off"
    if value == "manual" or (not value and os.environ.get("CI", "").strip().lower() not in ("", "0", "false")):
        return "manual"
    return "auto"


def fingerprint() -> str:
    """A digest of the code a command would run: every file of erpprov, the interpreter, and
    where each library it imports is installed (their files change on every upgrade)."""
    # python and python3.11 are one interpreter; a virtualenv's differs by its libraries' places
    digest = hashlib.sha256(f"{os.path.realpath(sys.executable)}\0{sys.version}\0".encode())
    package = os.path.dirname(os.path.realpath(__file__))
    for root, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".yaml", ".j2", ".csv")):
                stat = os.stat(os.path.join(root, name))
                digest.update(f"{os.path.relpath(os.path.join(root, name), package)}\0{stat.st_size}\0"
                              f"{stat.st_mtime_ns}\0".encode())
    for library in _LIBRARIES:  # where sys.path finds it, as the import will (importlib.util costs 4 ms)
        try:
            spec = PathFinder.find_spec(library)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        if origin and os.path.exists(origin):
            stat = os.stat(origin)
            digest.update(f"{library}\0{origin}\0{stat.st_mtime_ns}\0".encode())
        else:
            digest.update(f"{library}\0-\0".encode())
    return digest.hexdigest()[:20]


# Paths are strings here: pathlib costs the client 9 ms of imports (re, fnmatch), a twentieth of
# a served plan.
def resident_dir() -> str:
    """Where the resident's socket lives: the user's runtime directory when the system gives one
    (it is the user's own, mode 0700), else the user's cache directory."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "erpprov")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "erpprov", "resident")


def unsafe(directory: str) -> str | None:
    """Why ``directory`` may not hold the socket (another user could reach or replace it), or None."""
    try:
        stat = os.lstat(directory)
    except OSError as exc:
        return f"{directory}: {exc.strerror}"
    if not S_ISDIR(stat.st_mode):
        return f"{directory} is not a directory"
    if stat.st_uid != os.getuid():
        return f"{directory} belongs to another user"
    if stat.st_mode & 0o077:
        return f"{directory} is open to other users (mode {stat.st_mode & 0o777:o}; it must be 700)"
    return None


def socket_path(code: str | None = None) -> str:
    return os.path.join(resident_dir(), f"resident-{code or fingerprint()}.sock")


@contextlib.contextmanager
def reachable(path: str) -> Iterator[str]:
    """``path`` as bind() and connect() take it: a socket's address holds at most 107 bytes, and a
    deep home directory is longer; through the directory's descriptor (/proc/self/fd/N/NAME) any
    path fits."""
    if len(os.fsencode(path)) < 100:
        yield path
        return
    fd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{os.path.basename(path)}"
    finally:
        os.close(fd)


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def send_message(sock: socket.socket, message: dict[str, object], fds: list[int] | None = None) -> None:
    body = json.dumps(message).encode()
    data = _HEADER.pack(len(body)) + body
    if fds:
        sent = sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        data = data[sent:]
    if data:
        sock.sendall(data)


def receive_message(sock: socket.socket, max_fds: int = 0) -> tuple[dict[str, object], list[int]]:
    """One length-prefixed JSON message, and the file descriptors that came with its first bytes."""
    space = socket.CMSG_SPACE(max_fds * array.array("i").itemsize) if max_fds else 0
    data, ancillary, _, _ = sock.recvmsg(65536, space)
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            received = array.array("i")
            received.frombytes(payload[:len(payload) - len(payload) % received.itemsize])
            fds += list(received)
    try:
        while len(data) < _HEADER.size:
            data += _received(sock, _HEADER.size - len(data))
        (length,) = _HEADER.unpack(data[:_HEADER.size])
        if length > MAX_REQUEST:
            raise ValueError("message too large")
        body = data[_HEADER.size:]
        while len(body) < length:
            body += _received(sock, min(length - len(body), 1 << 20))
        message = json.loads(body[:length])
        if not isinstance(message, dict):
            raise ValueError("not a message")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return message, fds


def _received(sock: socket.socket, size: int) -> bytes:
    chunk = sock.recv(size)
    if not chunk:
        raise EOFError("the other side closed the connection")
    return chunk


def connect(path: str, timeout: float | None = None) -> socket.socket | None:
    """A connection to the resident at ``path`` when it is safe to use, else None."""
    if unsafe(os.path.dirname(path)) is not None:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        with reachable(path) as address:
            sock.connect(address)
        if peer_uid(sock) != os.getuid():
            raise OSError("the resident runs as another user")
    except OSError:
        sock.close()
        return None
    return sock


def run_resident(args: list[str]) -> int | None:
    """The exit status of ``args`` run by the resident, or None when it did not take the command."""
    command = next((a for a in args if not a.startswith("-")), None)
    if not sys.platform.startswith("linux") or command not in SERVED or "--help" in args or "-h" in args:
        return None
    mode = switch()
    if mode == "off" or not _has_stdio():
        return None
    path = socket_path()
    try:
        sock = connect(path, timeout=5)
    except OSError:
        sock = None
    if sock is None:
        if mode == "auto":
            start_detached(path)
        return None
    with sock:
        try:
            umask = os.umask(0o022)
            os.umask(umask)
            send_message(sock, {"op": "run", "argv": args, "cwd": os.getcwd(), "env": dict(os.environ),
                                "umask": umask, "encoding": sys.stdout.encoding or "utf-8"}, [0, 1, 2])
            reply, _ = receive_message(sock)
        except (OSError, ValueError, EOFError):
            return None
        pid = reply.get("pid")
        if not isinstance(pid, int):
            return None  # refused: run it here
        sock.settimeout(None)
        return _wait(sock, pid)


def start_detached(path: str) -> None:
    """Start a resident for the commands after this one (`erpprov resident start`, run in a
    session of its own with nothing of this process open), without waiting for it. Quietly
    nothing when its directory is not safe or a start fails: this command runs here either way."""
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError:
        return
    if unsafe(directory) is not None or not sys.executable:
        return
    env = {k: v for k, v in os.environ.items() if k in _KEPT or k.startswith(("LC_", "PYTHON"))}
    argv = [sys.executable, "-m", "erpprov", "resident", "start", "--idle", str(AUTO_IDLE_MINUTES)]
    try:
        pid = os.fork()
    except OSError:
        return
    if pid == 0:  # twice forked, so the resident is nobody's child here and leaves no zombie
        try:
            os.setsid()
            if os.fork() == 0:
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.closerange(3, os.sysconf("SC_OPEN_MAX"))
                os.execve(sys.executable, argv, env)
        finally:
            os._exit(0)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _has_stdio() -> bool:
    try:
        for fd in (0, 1, 2):
            os.fstat(fd)
    except OSError:
        return False
    return True


def _wait(sock: socket.socket, pid: int) -> int:
    """The child's exit status; meanwhile a Ctrl-C, SIGTERM or SIGHUP sent to this process goes to
    the child, which runs the command's own handling of it (rollbacks, cleanups)."""

    forwarded: list[int] = []

    def forward(signum: int, frame: object) -> None:
        forwarded.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        reply, _ = receive_message(sock)
    except (OSError, ValueError, EOFError):
        if forwarded:  # it quit at once as asked (a second Ctrl-C): the status a killed process has
            return 128 + forwarded[-1]
        print("erpprov: the resident process's worker ended without an exit status", file=sys.stderr)
        return 1
    code = reply.get("exit")
    return code if isinstance(code, int) else 1
