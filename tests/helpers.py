"""Small builders for tests: a project directory with an inventory and a playbook."""

from __future__ import annotations

import os
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

from erpprov.core.actions import Hazard
from erpprov.core.target import Target

DEFAULT_INVENTORY = """
all:
  vars: {pg_user: postgres}
  children:
    dev:
      hosts:
        localhost: {driver: external, pg_port: 5432}
"""


def write_project(tmp: Path, playbook: str, inventory: str = DEFAULT_INVENTORY, env: str | None = None) -> Path:
    (tmp / "playbooks").mkdir(exist_ok=True)
    (tmp / "inventory.yaml").write_text(textwrap.dedent(inventory))
    path = tmp / "playbooks" / "site.yaml"
    path.write_text(textwrap.dedent(playbook))
    if env is not None:
        (tmp / ".env").write_text(textwrap.dedent(env))
    return path


def load_targets(tmp: Path, server: Any, playbook: str, **host_vars: Any) -> list[Target]:
    """The targets of ``playbook`` run against the test server ``server`` (external driver)."""
    from erpprov.load.project import load_project

    (tmp / "playbooks").mkdir(exist_ok=True)
    path = tmp / "playbooks" / "site.yaml"
    path.write_text(textwrap.dedent(playbook))
    return load_project(path, server.inventory(tmp, **host_vars), environ={}).targets


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


def reachable_tempdir(prefix: str = "erpprov-test-") -> Path:
    """A temporary directory that the server's account can reach (pytest's own are private to root)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(base, 0o755)  # as root the server runs as another account (`postgres`) that must reach its data dir
    return base


def run_erpprov(cwd: Path, *args: str, env: dict[str, str] | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`erpprov ARGS` as a user runs it: a whole process in ``cwd``, ``env`` over the environment,
    with no terminal to read from."""
    return subprocess.run([sys.executable, "-m", "erpprov", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


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
