"""Connections to a host's server, with retries while it starts up."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.abc import Params

from erpprov.core import interrupt
from erpprov.core.model import Connection
from erpprov.errors import ErpprovError

# Server states worth waiting out: not listening yet, or up but still starting/recovering.
_TRANSIENT = ("connection refused", "the database system is starting up", "the database system is in recovery",
              "could not connect", "server closed the connection unexpectedly", "no such file or directory",
              "the database system is shutting down")


# admin_shutdown, crash_shutdown, cannot_connect_now: the server went away under us
_SHUTDOWN = {"57P01", "57P02", "57P03"}

# What a server-side timeout means for the user, by SQLSTATE (lock_not_available, query_canceled).
_TIMEOUT_HINTS = {
    "55P03": "another session holds a lock erpprov needs; wait for its transaction to end, or raise pg_lock_timeout",
    "57014": "the statement was canceled, by pg_statement_timeout (raise it for this host if the statement "
             "may take longer) or by an administrator",
}


def conninfo(conn: Connection, dbname: str | None = None, application_name: str = "erpprov") -> dict[str, Any]:
    params: dict[str, Any] = {
        "host": conn.pg_host,
        "port": conn.pg_port,
        "user": conn.pg_user,
        "dbname": dbname or conn.pg_database,
        "connect_timeout": max(1, int(conn.pg_connect_timeout)),
        "application_name": application_name,
        # Names and text come back as str whatever the database's encoding (a SQL_ASCII database
        # would otherwise hand psycopg bytes).
        "client_encoding": "UTF8",
        "options": session_options(conn),
    }
    if conn.pg_password is not None:
        params["password"] = conn.pg_password.get_secret_value()
    for key in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
        value = getattr(conn, f"pg_{key}")
        if value is not None:
            params[key] = value
    return params


def one_value(conn: psycopg.Connection, query: LiteralString | sql.Composed, params: Params | None = None) -> Any:
    """The first column of the one row `query` returns: a count, a setting, a function's result."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise psycopg.ProgrammingError("the query returned no row")
    return row[0]


def session_options(conn: Connection) -> str:
    """The host's timeouts as startup options: every session has them from its first statement,
    with no round trip to set them. `options` replaces libpq's PGOPTIONS, so the user's come
    first and ours, later, win.

    JIT is off unless PGOPTIONS turns it on (as pg_dump does): erpprov's statements are catalog
    reads and DDL, and at thousands of tables the planner's cost estimate of a catalog read passes
    the JIT thresholds, so the server spent about a second compiling code for a read that runs in
    half that.

    standard_conforming_strings stays on whatever the server or database says: playbook
    expressions are proven with a lexer that treats a backslash in '...' as a plain character
    (erpprov.core.fragments), and the server must read them the same way."""
    ours = (f"-c lock_timeout={int(conn.pg_lock_timeout * 1000)}ms "
            f"-c statement_timeout={int(conn.pg_statement_timeout * 1000)}ms "
            "-c standard_conforming_strings=on")
    return " ".join(part for part in ("-c jit=off", os.environ.get("PGOPTIONS", "").strip(), ours) if part)


# Every session open in this process, so that a Ctrl-C can cancel what each runs (core.interrupt).
_open: weakref.WeakSet[psycopg.Connection] = weakref.WeakSet()
_open_lock = threading.Lock()


def _session(conn: Connection, dbname: str | None, application_name: str) -> psycopg.Connection:
    """One attempt at an autocommit session, registered for cancel_running; a Ctrl-C that came
    before or while it waited is raised as that rather than as the failed attempt."""
    interrupt.check()
    try:
        session = psycopg.connect(**conninfo(conn, dbname, application_name), autocommit=True)
    except psycopg.OperationalError:
        interrupt.check()
        raise
    with _open_lock:
        _open.add(session)
    return session


def cancel_running() -> None:
    """Ask the server to cancel the statement each open session runs (from any thread: libpq's
    cancel request travels on a connection of its own). Their transactions then roll back."""
    with _open_lock:
        sessions = list(_open)
    for session in sessions:
        if not session.closed:
            with contextlib.suppress(psycopg.Error, OSError):
                session.cancel()


def connect(conn: Connection, dbname: str | None = None, *, wait: float = 0.0,
            application_name: str = "erpprov") -> psycopg.Connection:
    """An autocommit connection; transient failures are retried with backoff for ``wait`` seconds."""
    deadline = time.monotonic() + wait
    delay = 0.2
    while True:
        try:
            return _session(conn, dbname, application_name)
        except psycopg.OperationalError as exc:
            text = str(exc).strip()
            transient = any(marker in text.lower() for marker in _TRANSIENT)
            if transient and time.monotonic() + delay < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            raise _failed(conn, dbname, exc) from None


def _failed(conn: Connection, dbname: str | None, exc: psycopg.OperationalError) -> ErpprovError:
    return ErpprovError(f"cannot connect to {conn.pg_user}@{conn.pg_host}:{conn.pg_port}/{dbname or conn.pg_database}: "
                        f"{summary(exc)}", hint=_hint(str(exc).strip()))


def connect_preferring(conn: Connection, preferred: str | None, *, wait: float = 0.0) -> psycopg.Connection:
    """A connection to ``preferred`` when the server lets this role into it, else, as connect(), to
    pg_database. Cluster-wide catalogs (roles, databases) read the same from any database: a plan
    of one database then reads everything through one session instead of two."""
    if preferred and preferred != conn.pg_database:
        try:
            return _session(conn, preferred, "erpprov")
        except psycopg.OperationalError as exc:
            # Not there yet, no CONNECT, pg_hba says no: pg_database then. Not when the server
            # refused the login itself (a wrong password would count twice against the role), is
            # not listening, or did not answer at all (the second attempt would wait as long).
            text = str(exc)
            if connection_hint(text) is not None or "timeout expired" in text.lower():
                raise _failed(conn, preferred, exc) from None
    return connect(conn, wait=wait)


def summary(exc: psycopg.Error) -> str:
    """The server's primary message, or libpq's first line without its "connection to server at
    ... failed:" preamble (the address is in our own message already)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = (getattr(exc, "diag", None) and exc.diag.message_primary) or (lines[0] if lines else type(exc).__name__)
    return re.sub(r"^(connection failed: )?(connection to server at .*?failed: )?(FATAL: +)?", "", first)


# Why a connection failed, as the user can fix it: the first row whose pattern the message holds
# gives the hint. erpprov's own connections and the client programs (pg_dump, psql, pg_restore)
# both read this table, so the same failure gets the same hint whichever met it. The password
# row comes first: when libpq tried several addresses, one that answered is the one to fix.
_CONNECTION_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"password authentication failed|no password supplied", re.IGNORECASE),
     "check pg_password for this host (e.g. POSTGRES_PASSWORD in .env)"),
    # a Unix socket that is not there reads "No such file or directory"
    (re.compile(r"connection refused|could not connect|no such file or directory", re.IGNORECASE),
     "is the server running? `erpprov status` tells; `erpprov apply` starts the container or cluster"),
    # FATAL: the role the session logs in as (pg_user); a role a statement names fails as ERROR
    (re.compile(r'FATAL:\s+role "[^"]*" does not exist'),
     "check pg_user / pg_database for this host in the inventory"),
)


def connection_hint(message: str) -> str | None:
    """The hint for a failed connection's message (libpq's, or a client program's stderr)."""
    return next((hint for pattern, hint in _CONNECTION_HINTS if pattern.search(message)), None)


def _hint(text: str) -> str | None:
    if (hint := connection_hint(text)) is not None:
        return hint
    # our own connection names only pg_user's role and pg_database (a client's may name others)
    if "does not exist" in text.lower():
        return "check pg_user / pg_database for this host in the inventory"
    return None


@contextmanager
def connection_kept(conn: Connection) -> Iterator[None]:
    """A server that goes away mid-run (restart, removed container), or one holding what erpprov
    cannot read, is a fault to report, not a bug."""
    try:
        try:
            yield
        except psycopg.Error:
            interrupt.check()  # a statement cancelled by Ctrl-C: the interruption is the news, not the error
            raise
    except psycopg.errors.CharacterNotInRepertoire as exc:
        # UTF-8 is asked for on every connection; only a SQL_ASCII database can hold other bytes
        raise ErpprovError(f"the server holds text that is not valid UTF-8: {summary(exc)}",
                           hint="a SQL_ASCII database may hold names or comments written in another encoding; "
                                "rename or rewrite them in UTF-8") from None
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        state = getattr(exc, "sqlstate", None)
        if state and not state.startswith("08") and state not in _SHUTDOWN:
            raise ErpprovError(f"the server refused: {summary(exc)}", hint=_TIMEOUT_HINTS.get(state)) from None
        raise ErpprovError(
            f"lost the connection to {conn.pg_host}:{conn.pg_port}: {summary(exc)}",
            hint="the server stopped or restarted; transactions that had not committed were rolled back; "
                 "run the command again once it is up",
        ) from None
