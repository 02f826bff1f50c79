"""Builders and runners the tests share: a project directory (inventory, playbook, .env), the real
`erpprov` command in a bounded subprocess, and plan/apply of loaded targets."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from erpprov.core.actions import Hazard
from erpprov.core.target import Target

REPO = Path(__file__).resolve().parents[1]
PLAYBOOK = Path("playbooks") / "dev.yaml"  # where write_project puts the playbook: the CLI's default
MiB = 1024 * 1024
TIMED_OUT = -999  # returncode of a run that was killed at its timeout


# --- projects ------------------------------------------------------------------------------------

def write_inventory(root: Path, host_vars: dict[str, Any] | None = None) -> Path:
    """inventory.yaml with one host, `localhost` in group `dev`: ``host_vars``, driver external
    unless they say otherwise."""
    root.mkdir(parents=True, exist_ok=True)
    host = {"driver": "external", **(host_vars or {})}
    path = root / "inventory.yaml"
    path.write_text(yaml.safe_dump({"all": {"children": {"dev": {"hosts": {"localhost": host}}}}}))
    return path


def write_project(root: Path, playbook: str | bytes, host_vars: dict[str, Any] | None = None, *,
                  inventory: str | None = None, env_file: str | None = None, dedent: bool = True) -> Path:
    """A project directory (returned): inventory.yaml, playbooks/dev.yaml and, with ``env_file``,
    .env. The inventory is ``inventory`` (YAML text) if given, else write_inventory(``host_vars``).
    Text is dedented unless ``dedent`` is false; bytes are written as they are."""
    def text(value: str) -> str:
        return textwrap.dedent(value) if dedent else value

    root.mkdir(parents=True, exist_ok=True)
    if inventory is not None:
        (root / "inventory.yaml").write_text(text(inventory))
    else:
        write_inventory(root, host_vars)
    path = root / PLAYBOOK
    path.parent.mkdir(exist_ok=True)
    if isinstance(playbook, bytes):
        path.write_bytes(playbook)
    else:
        path.write_text(text(playbook), encoding="utf-8")
    if env_file is not None:
        (root / ".env").write_text(text(env_file))
    return root


def server_vars(pg: Any, password_from_env: bool = True) -> dict[str, Any]:
    """Host variables reaching the test server ``pg``; the password comes from the environment
    (pg_env) unless ``password_from_env`` is false."""
    return {"driver": "external", "pg_host": pg.host, "pg_port": pg.port, "pg_user": pg.user,
            "pg_password": "{{ env.RELIABILITY_PG_PASSWORD }}" if password_from_env else pg.password,
            "pg_connect_timeout": 5}


def pg_env(pg: Any) -> dict[str, str]:
    return {"RELIABILITY_PG_PASSWORD": pg.password}


def reachable_tempdir(prefix: str = "erpprov-test-") -> Path:
    """A temporary directory that the server's account can reach (pytest's own are private to root)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(base, 0o755)  # as root the server runs as another account (`postgres`) that must reach its data dir
    return base


def remove_container(engine: Any, name: str) -> None:
    """`docker rm -f NAME`, if it is there."""
    import docker

    with contextlib.suppress(docker.errors.NotFound):
        engine.containers.get(name).remove(force=True)


# --- in process: load, plan, apply ---------------------------------------------------------------

def load_targets(tmp: Path, server: Any, playbook: str, **host_vars: Any) -> list[Target]:
    """The targets of ``playbook`` run against the test server ``server`` (external driver)."""
    from erpprov.load.project import load_project

    write_project(tmp, playbook, {**server_vars(server, password_from_env=False), **host_vars})
    return load_project(tmp / PLAYBOOK, tmp / "inventory.yaml", environ={}).targets


def plan_of(targets: list[Target]) -> list[tuple[str, str]]:
    """Every action the plan holds for ``targets``, as (address, operation) pairs."""
    from erpprov.plan.build import plan_target

    pairs = []
    for target in targets:
        pairs += [(a.address, a.op.value) for a in plan_target(target).actions]
    return pairs


def apply_all(targets: list[Target], *, allow: frozenset[Hazard] = frozenset()) -> list[str]:
    """Apply, returning the changed addresses; apply itself fails if the re-plan is not empty."""
    from erpprov.apply.host import ApplyOptions, apply_target

    changed = []
    for target in targets:
        report = apply_target(target, ApplyOptions(allow_hazards=allow, lock_wait=5),
                              lambda kind, action: None, lambda text: None)
        changed += [a.address for a in report.changed]
    return changed


# --- the CLI in a subprocess ---------------------------------------------------------------------

@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.returncode == TIMED_OUT

    def __str__(self) -> str:  # shown by failed asserts
        return (f"rc={self.returncode} ({self.seconds:.1f}s)\nstdout: {self.stdout[-1500:]}\n"
                f"stderr: {self.stderr[-1500:]}")


def _limits(mem: int | None, umask: int | None = None):  # type: ignore[no-untyped-def]
    def apply() -> None:
        if umask is not None:
            os.umask(umask)
        os.setsid()  # its own process group, so a timeout kills it and anything it started
        if mem is not None:
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    return apply


def cli_environ(env: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of a CLI run: ours, ``env`` over it, without ``drop``, this checkout importable."""
    environ = {**os.environ, **(env or {})}
    for key in drop:
        environ.pop(key, None)
    environ["PYTHONPATH"] = str(REPO) + os.pathsep + environ.get("PYTHONPATH", "")
    # Every command runs in its own process unless a test asks for a resident (tests/test_resident.py):
    # a resident the developer started must not serve the tests.
    environ["ERPPROV_RESIDENT"] = (env or {}).get("ERPPROV_RESIDENT", "off")
    return environ


def erpprov_on_path(bin_dir: Path) -> dict[str, str]:
    """The environment of a run whose PATH has an `erpprov` running this checkout: the script pip
    writes for the entry point, for tools that call `erpprov` themselves (a shell, pre-commit)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    program = bin_dir / "erpprov"
    program.write_text(f"#!{sys.executable}\nfrom erpprov.launch import main\nmain()\n")
    program.chmod(0o755)
    environ = cli_environ()
    environ["PATH"] = f"{bin_dir}{os.pathsep}{environ['PATH']}"
    return environ


def erpprov(cwd: Path, *args: str, timeout: float = 300, mem: int | None = None, env: dict[str, str] | None = None,
            drop_env: tuple[str, ...] = (), umask: int | None = None, input: str | None = None) -> Run:
    """`erpprov ARGS` as a user runs it: a whole process in ``cwd``, ``env`` over the environment
    (NO_COLOR unless it says otherwise), ``input`` as its stdin (else no terminal to read from).
    It is killed after ``timeout`` seconds, a hang timeout (TIMED_OUT), and its address space is
    capped at ``mem`` bytes if given."""
    environ = cli_environ(env, drop_env)
    environ.setdefault("NO_COLOR", "1")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "erpprov", *args], cwd=cwd, text=True, env=environ,
                            stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_limits(mem, umask))
    return finish(proc, timeout, started=started, input=input)


def start_erpprov(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`erpprov ARGS` started in the background, in its own process group (so we kill only it)."""
    return subprocess.Popen([sys.executable, "-m", "erpprov", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**cli_environ(env), "NO_COLOR": "1"},
                            start_new_session=True)


def finish(proc: subprocess.Popen[str], timeout: float = 120, started: float | None = None,
           input: str | None = None) -> Run:
    """Wait for ``proc`` at most ``timeout`` seconds, then SIGKILL its process group (TIMED_OUT).
    ``seconds`` counts from ``started`` (a time.monotonic() value), or from now; it is shown, never
    asserted."""
    if started is None:
        started = time.monotonic()
    try:
        out, err = proc.communicate(input, timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        code = TIMED_OUT
    return Run(code, out, err, time.monotonic() - started)


def assert_clean_error(run: Run, *fragments: str) -> None:
    """erpprov's own error: exit 1, `error: ...` first on stderr, no traceback, before its hang timeout."""
    assert not run.timed_out, f"erpprov did not finish in time: {run}"
    assert run.returncode == 1, str(run)
    assert run.stderr.startswith("error: "), str(run)
    assert "Traceback" not in run.stderr + run.stdout, str(run)
    first = run.stderr.splitlines()[0]
    for fragment in fragments:
        assert fragment.lower() in run.stderr.lower(), f"{fragment!r} not in: {run}"
    assert len(first) < 2000, "the first line of the error is not a readable one-liner"


def assert_converged(cwd: Path, env: dict[str, str] | None = None, *args: str) -> None:
    """The convergence check: `plan --detailed-exitcode` exits 0 (no changes)."""
    run = erpprov(cwd, "plan", "--detailed-exitcode", *args, env=env)
    assert run.returncode == 0, f"the plan is not empty: {run}"


# --- counting round trips ------------------------------------------------------------------------

@dataclass
class RoundTrips:
    count: int = 0


@contextmanager
def count_round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[RoundTrips]:
    """Round trips to the server while the block runs: each statement sent on its own, and each
    pipeline as a whole (its statements travel together). psycopg sends every query through
    Cursor.execute (Connection.execute too) and every pipeline through Connection.pipeline, which
    are wrapped here. A block that sent nothing fails: a spy that stopped intercepting would
    otherwise report 0 round trips, and 0 == 0 would prove nothing."""
    seen = RoundTrips()
    execute, pipeline = psycopg.Cursor.execute, psycopg.Connection.pipeline

    def counted_execute(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.count += self.connection._pipeline is None
        return execute(self, *args, **kwargs)

    @contextmanager
    def counted_pipeline(self):  # type: ignore[no-untyped-def]
        seen.count += self._pipeline is None
        with pipeline(self) as p:
            yield p

    with monkeypatch.context() as patch:
        patch.setattr(psycopg.Cursor, "execute", counted_execute)
        patch.setattr(psycopg.Connection, "pipeline", counted_pipeline)
        yield seen
    assert seen.count > 0, "the spy saw nothing: it no longer intercepts psycopg"


# --- faults: waiting until erpprov is inside a transaction ---------------------------------------

# An erpprov session (`erpprov apply pid=...` holds the lock and runs cluster-wide statements; plain
# `erpprov` is the connection of each database) inside a transaction that has written something
# (it has an xid), running or between the plan's own statements: not a single autocommit
# statement (its xact_start is its query_start), not the rolled-back scratch build of the desired
# tables or a catalog read (canon's transactions), not the COMMIT already on its way.
_IN_TRANSACTION = r"""
    SELECT datname FROM pg_stat_activity
    WHERE application_name LIKE 'erpprov%%' AND datname = ANY(%s)
      AND xact_start IS NOT NULL AND backend_xid IS NOT NULL
      AND (state = 'idle in transaction' OR (state = 'active' AND xact_start < query_start))
      AND query !~* '^\s*(select|with|commit|end)\M' AND query !~ 'erpprov_scratch_'
    LIMIT 1
"""


def wait_in_transaction(connect: Callable[..., psycopg.Connection], databases: Sequence[str],
                        proc: subprocess.Popen[str] | subprocess.Popen[bytes], timeout: float = 60) -> str | None:
    """The database in ``databases`` where erpprov (the process ``proc``) is inside one of the
    plan's transactions, polled until it is; None if ``proc`` ended or ``timeout`` seconds passed
    first (an apply with nothing left to do opens no transaction). ``connect(dbname)`` reaches
    the server."""
    deadline = time.monotonic() + timeout
    with connect("postgres") as conn:
        while time.monotonic() < deadline and proc.poll() is None:
            row = conn.execute(_IN_TRANSACTION, (list(databases),)).fetchone()
            if row is not None:
                return str(row[0])
            time.sleep(0.002)
    return None


def wait_sessions_gone(connect: Callable[..., psycopg.Connection], timeout: float = 60) -> None:
    """Wait until no erpprov session is left on the server: after a kill, each backend notices its
    client is gone and rolls back, and only then is what it did (or did not) commit final."""
    deadline = time.monotonic() + timeout
    with connect("postgres") as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'erpprov%%' "
                            "LIMIT 1").fetchone() is None:
                return
            time.sleep(0.05)
    raise AssertionError(f"erpprov sessions still on the server {timeout}s after their process was killed")


@contextmanager
def silent_server(timeout: float = 60) -> Iterator[tuple[socket.socket, dict[str, Any]]]:
    """A loopback port that accepts connections and never answers, as a hung server does, and the
    host variables reaching it (add pg_connect_timeout); ``timeout`` bounds each accept()."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        silent.settimeout(timeout)
        yield silent, {"pg_host": "127.0.0.1", "pg_port": silent.getsockname()[1], "pg_user": "x", "pg_password": "y"}
    finally:
        silent.close()
