"""Small builders for tests: a project directory with an inventory and a playbook."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
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
