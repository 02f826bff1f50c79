"""Building declared objects in a rolled-back transaction where some may not build yet (they use
a table or type the same apply creates): what the views, functions and triggers share."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import sql


def build(conn: psycopg.Connection, setup: Sequence[sql.Composed], builds: Sequence[sql.Composed]) -> None:
    """Inside the caller's rolled-back transaction: ``setup`` (which must succeed), then every
    statement of ``builds`` that the server accepts. All at once, one round trip each, when they
    all build — each statement in an extended-protocol message of its own; otherwise one at a
    time, each in a savepoint, in as many rounds as objects wait for one built after them."""
    with conn.pipeline():
        for statement in setup:
            conn.execute(statement, prepare=False)
    try:
        with conn.transaction(), conn.pipeline():
            for statement in builds:
                conn.execute(statement, prepare=False)
        return
    except psycopg.Error:
        pass
    pending = list(builds)
    for _ in range(len(pending)):
        waiting = []
        for statement in pending:
            try:
                with conn.transaction():
                    conn.execute(statement, prepare=False)
            except psycopg.Error:
                waiting.append(statement)
        if len(waiting) == len(pending):
            return
        pending = waiting


def prelude_as_possible(conn: psycopg.Connection, prelude: Sequence[sql.Composed]) -> None:
    """Inside the caller's rolled-back transaction: ``prelude``, what the plan creates that a build
    reads (extensions, types, function stand-ins), all in one round trip and one savepoint. If the
    server refuses any of it, none of it is there: the table or type build names what it refused."""
    if not prelude:
        return
    try:
        with conn.transaction(), conn.pipeline():
            for statement in prelude:
                conn.execute(statement, prepare=False)
    except psycopg.Error:
        pass
