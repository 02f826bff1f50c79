"""Where a scratch build runs when the database itself will not take one."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import psycopg
from psycopg import sql

from erpprov.core import model
from erpprov.core.tables import TablesState
from erpprov.core.target import Target
from erpprov.errors import ErpprovError
from erpprov.postgres.connect import connect
from erpprov.state.canon import canonicalize


def canonicalize_in_scratch_database(target: Target, admin: psycopg.Connection, declared: list[model.Table],
                                      live: TablesState, prelude: Sequence[sql.Composed] = ()) -> TablesState:
    """The scratch build needs CREATE on the database, which an admin of a managed service may
    lack on a template or on someone else's database; a database of its own (CREATEDB) does."""
    name = f"erpprov_scratch_{uuid.uuid4().hex[:12]}"
    try:
        # template0: template1 may be in use (the caller reads it), and CREATE DATABASE needs it idle
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    except psycopg.errors.InsufficientPrivilege:
        raise ErpprovError(
            f"{target.connection.pg_user} may neither create schemas where the tables are planned nor create a "
            "scratch database, so their definitions cannot be checked by the server",
            hint="grant it CREATE on the database, or CREATEDB") from None
    try:
        with connect(target.connection, name) as conn:
            return canonicalize(conn, declared, live, prelude)
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
