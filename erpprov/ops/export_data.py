"""`export --data TABLE[,...]`: a table's rows as a CSV file beside the playbook, and the `data:`
entry that loads it back.

The server writes the CSV (COPY ... TO STDOUT, FORMAT csv): NULL as an empty unquoted field, an
empty string as `""`, exactly the rules the loader reads it back with, so the round trip is
lossless. Rows are ordered by the key, so exporting the same table twice gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql

from erpprov.core.tables import PRIMARY_KEY, UNIQUE, TablesState, TableState
from erpprov.errors import ErpprovError

TableRef = tuple[str, str]  # (schema, table)


def requested_tables(spec: Iterable[str]) -> list[tuple[str | None, str]]:
    """`--data users,sales.orders` as (schema or None, table) pairs."""
    result: list[tuple[str | None, str]] = []
    for item in spec:
        for name in filter(None, (part.strip() for part in item.split(","))):
            schema, _, table = name.rpartition(".")
            result.append((schema or None, table))
    return result


def matching(requested: list[tuple[str | None, str]], tables: TablesState) -> list[TableState]:
    """The live tables named by ``requested`` (a name without schema: public)."""
    return [tables.tables[(schema or "public", table)] for schema, table in requested
            if (schema or "public", table) in tables.tables]


def check_found(requested: list[tuple[str | None, str]], found: set[TableRef]) -> None:
    missing = [f"{schema or 'public'}.{table}" for schema, table in requested
               if (schema or "public", table) not in found]
    if missing:
        raise ErpprovError(f"--data names {', '.join(missing)}, which no exported database holds",
                           hint="write TABLE or SCHEMA.TABLE of a table in the exported databases")


def key_of(table: TableState) -> tuple[str, ...]:
    """The primary key, else the first unique constraint: what identifies a row."""
    for kind in (PRIMARY_KEY, UNIQUE):
        constraint = next((c for c in table.constraints if c.kind == kind), None)
        if constraint is not None:
            return constraint.columns
    raise ErpprovError(f"{table.schema}.{table.name} has neither a primary key nor a unique constraint, so its "
                       "rows cannot be matched on a later apply", hint="leave it out of --data")


def file_name(database: str, table: TableState) -> str:
    return f"{database}.{table.schema}.{table.name}.csv"


def table_rows(conn: psycopg.Connection, table: TableState) -> bytes:
    """The rows of every column but the generated ones, as CSV with a header, ordered by the key."""
    columns = [c.name for c in table.columns if not c.generated]
    query = sql.SQL("COPY (SELECT {} FROM {} ORDER BY {}) TO STDOUT (FORMAT csv, HEADER true)").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table.schema, table.name),
        sql.SQL(", ").join(map(sql.Identifier, key_of(table))))
    with conn.cursor().copy(query) as copy:
        return b"".join(bytes(chunk) for chunk in copy)


def data_entry(database: str, table: TableState) -> dict[str, object]:
    entry: dict[str, object] = {"from": file_name(database, table)}
    key = key_of(table)
    if not any(c.kind == PRIMARY_KEY for c in table.constraints):
        entry["key"] = list(key)
    return entry
