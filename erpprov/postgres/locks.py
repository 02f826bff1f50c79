"""Who holds what erpprov had to wait for, named in its errors so a person knows whom to ask; and
how many locks one of its transactions may take."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import psycopg

T = TypeVar("T")

# Up to this many locks, a transaction needs no more than every connection is entitled to (the
# default max_locks_per_transaction), and the budget is not asked for.
LOCKS_WITHOUT_ASKING = 64
# The server's lock table (max_locks_per_transaction x (max_connections + max_prepared_transactions)
# entries) is shared by every session, and a transaction past it fails with "out of shared memory":
# LOCK_BUDGET takes a quarter of it.

# One line about a session, from pg_stat_activity `a` (columns hidden from a non-superuser read NULL).
_SESSION = """a.pid, a.application_name, a.usename, coalesce(host(a.client_addr), 'local'),
              to_char(now() - a.backend_start, 'HH24:MI:SS')"""


def _session(pid: int, app: str | None, user: str | None, addr: str, age: str | None) -> str:
    return f"{app or 'a session'} as {user or '?'} from {addr}, server pid {pid}, connected for {age or '?'}"


def advisory_holder(conn: psycopg.Connection, keys: tuple[int, int]) -> str:
    """The session holding the advisory lock ``keys`` in ``conn``'s database."""
    row = conn.execute(f"""
        SELECT {_SESSION}
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objid = %s AND l.granted
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    """, keys).fetchone()
    return "(it has just been released)" if row is None else _session(*row)


def exclusive_lockers(conn: psycopg.Connection, tables: list[tuple[str, str]]) -> list[str]:
    """Which of ``tables`` (schema, name) of ``conn``'s database another session holds, or waits
    for, in ACCESS EXCLUSIVE mode: the only mode that stops a reader."""
    rows: list[Any] = conn.execute(f"""
        SELECT format('%%I.%%I', n.nspname, c.relname), l.granted, {_SESSION}
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN unnest(%s::text[], %s::text[]) AS t(schema, name) ON t.schema = n.nspname AND t.name = c.relname
        WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.pid <> pg_backend_pid()
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        ORDER BY 1, 2 DESC
    """, ([s for s, _ in tables], [n for _, n in tables])).fetchall()
    return [f"{table} {'held' if granted else 'waited for'} by {_session(*session)}"
            for table, granted, *session in rows]


# How many locks one transaction of erpprov's may hold: a quarter of the shared lock table, and
# never less than what every connection is entitled to. One value; a query of its own, or a
# statement in a pipeline already on its way.
LOCK_BUDGET = """
    SELECT greatest(current_setting('max_locks_per_transaction')::int,
                    current_setting('max_locks_per_transaction')::int
                    * (current_setting('max_connections')::int + current_setting('max_prepared_transactions')::int)
                    / 4)
"""


def lock_budget(conn: psycopg.Connection) -> int:
    """LOCK_BUDGET on ``conn``'s server."""
    row = conn.execute(LOCK_BUDGET).fetchone()
    assert row is not None  # one row, always
    return int(row[0])


def batched(items: Iterable[T], cost: Callable[[T], int], budget: int) -> Iterator[list[T]]:
    """``items`` in order, in batches whose total cost stays within ``budget`` (an item costing more
    than the budget goes alone)."""
    batch: list[T] = []
    total = 0
    for item in items:
        weight = cost(item)
        if batch and total + weight > budget:
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += weight
    if batch:
        yield batch
