"""Run a plan's actions in its execution order: consecutive actions on one connection in one
transaction, CREATE DATABASE alone (docs/design.md, decisions 4 and 5); a transaction that would
need more locks than the server's lock table spares is split, in order."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from itertools import groupby

import psycopg
from psycopg import sql

from erpprov.core import interrupt
from erpprov.core.actions import Action, Op, Phase, execution_order
from erpprov.core.model import Connection
from erpprov.errors import ErpprovError
from erpprov.postgres.connect import connect, one_value
from erpprov.postgres.locks import LOCKS_WITHOUT_ASKING, advisory_holder, batched, lock_budget
from erpprov.postgres.scram import executable

# Two fixed keys for pg_advisory_lock(int, int): "erpprov" in ASCII, split in two.
LOCK_KEYS = (0x65727070, 0x726F7600)

Event = Callable[[str, Action], None]  # ("changed" | "failed" | "undone", action)
# Why a statement failed, asked on a fresh connection to the same database (e.g. which rows break
# a new constraint); None when there is nothing to add.
Explain = Callable[[psycopg.Connection, Action, psycopg.Error], str | None]


# Locks a statement takes, as measured: a new table 5 to 8 (itself, its TOAST table and index, a
# sequence per serial, an index per key), anything else at most 2 (an index and its table, both
# tables of a foreign key). Held to the end of the transaction.
LOCKS_PER_NEW_TABLE = 8
LOCKS_PER_STATEMENT = 2


class ApplyFailed(ErpprovError):
    def __init__(self, action: Action, statement: str, server_message: str, explanation: str | None = None,
                 committed_before: bool = False):
        message = f"{action.address}: {server_message}"
        if explanation:
            message += f"\n  {explanation}"
        earlier = " (the earlier transactions of this database were committed)" if committed_before else ""
        super().__init__(
            message,
            hint=f"the statement was: {statement}\n  nothing in this transaction was applied{earlier}; "
                 "fix the cause and apply again",
        )


def execute(actions: list[Action], settings: Connection, admin: psycopg.Connection, event: Event,
            explain: Explain | None = None, warn: Callable[[str], None] | None = None) -> None:
    def explained(conn: psycopg.Connection, action: Action, exc: psycopg.Error) -> str | None:
        # The failed transaction must end before the connection can ask anything; a second
        # connection is simpler than unwinding here, and it sees the untouched, committed state.
        if explain is None:
            return None
        try:
            with connect(settings, conn.info.dbname) as other:
                return explain(other, action, exc)
        except (psycopg.Error, ErpprovError):  # no explanation: the failure itself is still reported
            return None

    # Consecutive actions on one connection share a transaction; what cannot run in one (CREATE
    # DATABASE) runs alone. The order is the plan's own, so the server sees what the plan showed.
    runnable = (a for a in execution_order(actions) if a.sql)
    created: list[Action] = []  # what this apply created that a later failure takes back, as committed

    def committed(kind: str, action: Action) -> None:
        if kind == "changed" and action.op is Op.CREATE and action.kind in _UNDONE:
            created.append(action)
        event(kind, action)

    for (database, transactional), group in groupby(runnable, key=lambda a: (a.database, a.transactional)):
        batch = list(group)
        try:
            if database:
                with connect(settings, database) as conn:
                    _run(conn, batch, transactional, committed, explained, warn)
            else:
                _run(admin, batch, transactional, committed, explained, warn)
        except BaseException:
            _undo(admin, created, database, event, warn)
            raise


# Created objects a failed apply takes back (see _undo). Only creations: an ALTER ROLE of a role
# that was there before is left as it ran, as its old state cannot be restored (the plan does not
# hold the old password, only that there was one).
_UNDONE = ("database", "role", "membership")


def _undo(admin: psycopg.Connection, created: list[Action], failed_in: str | None, event: Event,
          warn: Callable[[str], None] | None) -> None:
    """When a batch fails (or is interrupted), what this apply created and committed before it that
    would outlive the failed apply is dropped again, each on its own and best effort:

    - the database the failed batch went into, if this apply created it: CREATE DATABASE cannot
      share that transaction. Databases whose own batch committed stay, with what went into them.
    - every role it created (newest first): the cluster-wide batch commits before any database's.
      Their memberships go with them, and are reported undone too.

    None of them existed before, so nothing is lost. One that something else holds on to is left,
    as it would be without this, and ``warn`` says so: a database somebody connected to, a role that
    owns objects or holds privileges that an earlier, committed transaction of this apply gave it
    (DROP refuses). The failure itself is what the caller raises, whatever happens here."""
    undo = [a for a in created if a.kind == "database" and a.address.parts[0] == failed_in]
    undo += [a for a in reversed(created) if a.kind == "role"]
    gone: set[str] = set()
    for action in undo:
        name = action.address.parts[0]
        try:
            admin.execute(sql.SQL("DROP {} {}").format(sql.SQL(action.kind.upper()), sql.Identifier(name)))
        except psycopg.Error as exc:
            if warn is not None:
                reason = exc.diag.message_primary or str(exc).strip()
                warn(f"{action.address}: created by this apply and kept, as it could not be dropped again: {reason}")
            continue
        event("undone", action)
        if action.kind == "role":
            gone.add(name)
    for action in created:
        if action.kind == "membership" and gone.intersection(action.address.parts):
            event("undone", action)


def _locks(action: Action) -> int:
    new_table = action.phase is Phase.TABLE and action.op is Op.CREATE
    return LOCKS_PER_STATEMENT * len(action.sql) + (LOCKS_PER_NEW_TABLE - LOCKS_PER_STATEMENT) * new_table


def _transactions(conn: psycopg.Connection, batch: list[Action], warn: Callable[[str], None] | None
                  ) -> list[list[Action]]:
    """``batch`` as one transaction, unless its locks, all held to its end, would take more than
    the server's lock table spares (LOCK_BUDGET): then as several, in order. Thousands of new tables
    in one transaction end in "out of shared memory" on a default server, for this apply and for
    any other session that needs a lock meanwhile."""
    if sum(_locks(a) for a in batch) <= LOCKS_WITHOUT_ASKING:
        return [batch]
    parts = list(batched(batch, _locks, lock_budget(conn)))
    if len(parts) > 1 and warn is not None:
        warn(f"database {conn.info.dbname}: {len(batch)} changes need more locks than one transaction may take on "
             f"this server, so they run in {len(parts)} transactions, in order; if one fails, the ones before it "
             "stay applied and the next apply completes the rest (raise max_locks_per_transaction to keep one)")
    return parts


def _run(conn: psycopg.Connection, batch: list[Action], transactional: bool, event: Event,
         explained: Explain, warn: Callable[[str], None] | None) -> None:
    if not transactional:  # CREATE DATABASE and friends cannot run inside a transaction
        for action in batch:
            for statement in action.sql:
                _statement(conn, action, executable(statement), statement.display, event, None)
            event("changed", action)
        return
    for index, part in enumerate(_transactions(conn, batch, warn)):
        with conn.transaction():
            for action in part:
                for statement in action.sql:
                    _statement(conn, action, executable(statement), statement.display, event, explained,
                               statement.copy, committed_before=index > 0)
        for action in part:
            event("changed", action)


def _statement(conn: psycopg.Connection, action: Action, text: str, shown: str, event: Event,
               explained: Explain | None, copy: bytes | None = None, committed_before: bool = False) -> None:
    interrupt.check()
    try:
        if copy is None:
            conn.execute(text)
        else:
            with conn.cursor().copy(text) as writer:
                writer.write(copy)
    except psycopg.Error as exc:
        event("failed", action)
        interrupt.check()  # cancelled by Ctrl-C: its transaction is rolled back
        diag = exc.diag.message_primary or str(exc).strip()
        detail = f" ({exc.diag.message_detail})" if exc.diag.message_detail else ""
        explanation = explained(conn, action, exc) if explained else None
        raise ApplyFailed(action, shown, diag + detail, explanation, committed_before) from None


# Where every apply of a server takes its lock, whatever its pg_database: an advisory lock belongs
# to one database. initdb creates `postgres` with CONNECT for PUBLIC; template1 would do too, but a
# session in it stops CREATE DATABASE from copying it.
LOCK_DATABASE = "postgres"


@contextmanager
def apply_lock(settings: Connection, admin: psycopg.Connection, wait: float,
               warn: Callable[[str], None]) -> Iterator[None]:
    """One apply at a time per server: a session advisory lock in LOCK_DATABASE, waited for up to
    ``wait`` seconds. A server where that database cannot be reached gets the lock in ``admin``'s
    database, as ``warn`` says: then only applies through the same pg_database exclude each other."""
    with ExitStack() as stack:
        holder = admin
        if admin.info.dbname != LOCK_DATABASE:
            try:
                holder = stack.enter_context(connect(settings, LOCK_DATABASE, application_name=application_name()))
            except ErpprovError as exc:
                warn(f"the apply lock is held in database {admin.info.dbname}, not {LOCK_DATABASE} ({exc.message}): "
                     "an apply through another pg_database would not wait for this one")
        with _advisory_lock(holder, wait):
            yield


@contextmanager
def _advisory_lock(conn: psycopg.Connection, wait: float) -> Iterator[None]:
    deadline = time.monotonic() + wait
    while not one_value(conn, "SELECT pg_try_advisory_lock(%s, %s)", LOCK_KEYS):
        if time.monotonic() >= deadline:
            raise ErpprovError("another erpprov apply holds the lock on this server: "
                               f"{advisory_holder(conn, LOCK_KEYS)}",
                               hint="wait for it to finish, or pass a longer --lock-wait")
        interrupt.check()
        time.sleep(0.25)
    try:
        yield
    finally:
        if not conn.closed and not conn.broken:  # a lost session has released its locks already
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", LOCK_KEYS)


def application_name() -> str:
    return f"erpprov apply pid={os.getpid()} on {socket.gethostname()}"[:63]
