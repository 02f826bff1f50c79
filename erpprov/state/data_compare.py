"""Declared rows against live rows, compared by the server (docs/playbook.md, data).

For each seeded table, in a transaction that is always rolled back: the declared rows are copied
into a temporary table with the columns' own types, a unique index on it proves no key repeats,
and one query compares them with the live table. A fixed number of round trips per table, whatever
the number of rows; PostgreSQL decides what is equal (1.50 and 1.5, two spellings of a timestamp,
of a JSON document). The values only ever travel as COPY input.

Inside apply, the first plan also takes a digest of the declared rows of each table it changes;
the plan after the apply compares it with a digest of the live table, one read of it, and copies
and compares the rows in full only when the two differ (erpprov.core.seed.RowDigests).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import psycopg
from psycopg import sql

from erpprov.core import model
from erpprov.core.seed import DataComparison, Digest, RowDigests, SeedRows
from erpprov.core.tables import PRIMARY_KEY, TablesState, TableState
from erpprov.errors import ErpprovError, Location
from erpprov.postgres import data_ddl

_COPY_CONTEXT = re.compile(r"COPY \w+, line (\d+)(?:, column ([^:]+))?")


# hash_record_extended, which the digests sum, is PostgreSQL 14's
_DIGESTS_SINCE = 140000


def compare_data(conn: psycopg.Connection, database: str, tables: list[model.Table], desired: TablesState,
                 live: TablesState, digests: RowDigests | None = None) -> list[tuple[DataComparison, SeedRows]]:
    """The comparison of every table with `data:`, with the rows it was made from. ``digests``:
    taken of the tables with changes (by the plan inside apply), or reused (by the plan after it)."""
    if conn.info.server_version < _DIGESTS_SINCE:
        digests = None
    found = []
    for table in tables:
        if table.data is None:
            continue
        rows: SeedRows = table.data.loaded
        want = desired.tables[(table.schema_, table.name)]
        have = live.tables.get(want.key)
        if have is None and table.renamed_from:  # renamed by this plan: its rows are under the old name
            have = live.tables.get((table.schema_, table.renamed_from))
        taken = digests.taken.get((database, table.schema_, table.name)) if digests and digests.reuse else None
        if taken is not None and have is not None and have.name == table.name:
            blank = _blank(database, table, want, rows)
            if _holds(conn, blank, have, taken):
                found.append((replace(blank, declared=taken[0]), rows))
                continue
        comparison = _compare(conn, database, table, want, have, rows,
                              digests.taken if digests is not None and not digests.reuse else None)
        found.append((comparison, rows))
    return found


def _holds(conn: psycopg.Connection, blank: DataComparison, have: TableState, taken: Digest) -> bool:
    """Whether the live table holds exactly the declared rows (over their columns): then no mode
    has anything to do. A digest that differs, or cannot be read, only means a full comparison."""
    live_columns = {c.name: c.type for c in have.columns}
    try:
        with conn.transaction(force_rollback=True):
            found = conn.execute(data_ddl.digest_query(blank, have.name, live_columns)).fetchone()
    except psycopg.Error:
        return False
    return found is not None and (found[0], found[1]) == taken


def _blank(database: str, table: model.Table, want: TableState, rows: SeedRows) -> DataComparison:
    assert table.data is not None
    columns = {c.name: c for c in want.columns}  # the loader checked that the rows name only these
    key = tuple(table.data.key) or next((c.columns for c in want.constraints if c.kind == PRIMARY_KEY), ())
    chosen = [columns[name] for name in rows.columns]
    return DataComparison(
        database=database, schema=table.schema_, table=table.name, mode=table.data.mode, columns=rows.columns,
        types=tuple(c.type for c in chosen), key=key,
        sequences=tuple(c.name for c in chosen if c.serial or c.identity),
        identity_always=any(c.identity == "always" for c in chosen))


def _compare(conn: psycopg.Connection, database: str, table: model.Table, want: TableState,
             have: TableState | None, rows: SeedRows,
             digests: dict[tuple[str, str, str], Digest] | None) -> DataComparison:
    blank = _blank(database, table, want, rows)
    live_columns = {c.name: c.type for c in have.columns} if have is not None else {}
    where = f"{table.schema_}.{table.name}"
    with conn.transaction(force_rollback=True):
        try:
            conn.execute(f"{data_ddl.COMPARE_MEMORY}; {data_ddl.create_seed_table(blank.columns, blank.types).text}")
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ErpprovError(f"{where}: the rows cannot be compared: {exc.diag.message_primary}",
                               hint="plan compares rows in a temporary table: the admin needs the TEMPORARY "
                                    "privilege on the database") from None
        statement = data_ddl.copy_seed(blank.columns, rows.header, rows.payload, "")
        try:
            with conn.cursor().copy(statement.text) as copy:
                copy.write(rows.payload)
        except psycopg.Error as exc:
            raise _row_error(table, rows, exc) from None
        _unique_keys(conn, blank, rows, where)
        try:
            result = conn.execute(data_ddl.compare_query(blank, have.name if have else None, live_columns)
                                  ).fetchone()
        except psycopg.Error as exc:  # a live value its column's new type cannot hold
            raise ErpprovError(f"{where}: the live rows cannot be compared with the declared ones: "
                               f"{exc.diag.message_primary or exc}",
                               hint="the table's new column types do not fit its live values; change those "
                                    "first, then declare the rows") from None
        assert result is not None
        declared, nulls, n_ins, ins, n_upd, upd, n_del, dels = result
        _refuse_key_problems(blank, rows, where, nulls, None)
        found = replace(blank, declared=declared, to_insert=n_ins, to_update=n_upd, to_delete=n_del,
                        inserts=tuple(tuple(r) for r in ins or ()),
                        updates=tuple((tuple(a), tuple(b)) for a, b in upd or ()),
                        deletes=tuple(tuple(r) for r in dels or ()))
        if digests is not None and found.changes:
            taken = _attempted(conn, data_ddl.digest_query(blank))  # None: a type without a hash function
            digest = taken.fetchone() if taken is not None else None
            if digest is not None:
                digests[(database, table.schema_, table.name)] = (digest[0], digest[1])
    return found


def _attempted(conn: psycopg.Connection, query: sql.Composable) -> psycopg.Cursor[Any] | None:
    """``query`` run past a savepoint of the comparison's transaction, in one round trip with it
    (the savepoint is left to the rollback); None when it failed, the transaction back where it was."""
    try:
        cursor = conn.execute(sql.SQL("SAVEPOINT erpprov_attempt; {}").format(query))
        cursor.nextset()  # past the savepoint's own result
        return cursor
    except psycopg.Error:
        conn.execute("ROLLBACK TO SAVEPOINT erpprov_attempt")
        return None


def _unique_keys(conn: psycopg.Connection, blank: DataComparison, rows: SeedRows, where: str) -> None:
    """No declared key repeats: proven by a unique index on the seed table, or where that fails
    (a repeated key, a key type without a btree operator class) by grouping the keys, which also
    names the first offending rows."""
    if _attempted(conn, data_ddl.unique_keys(blank)) is None:
        problems = conn.execute(data_ddl.key_problems_query(blank)).fetchone()
        assert problems is not None
        _refuse_key_problems(blank, rows, where, *problems)


def _refuse_key_problems(blank: DataComparison, rows: SeedRows, where: str, nulls: list[int] | None,
                         dups: list[int] | None) -> None:
    if nulls:  # first: two rows without a key also group as one repeated (NULL) key
        raise _at(rows, nulls[0], f"{where}: row {nulls[0]} has no value for a key column "
                  f"({', '.join(blank.key)})", "key columns identify a row: they cannot be empty")
    if dups:
        raise _at(rows, dups[0], f"{where}: row {dups[0]} repeats the key of an earlier row "
                  f"({', '.join(blank.key)})", "each key may appear once")


def _at(rows: SeedRows, row: int, message: str, hint: str) -> ErpprovError:
    """An error about data row ``row`` (1-based, as the seed table numbers rows)."""
    return ErpprovError(message, location=Location(rows.file, rows.line_of(row - 1)), hint=hint)


def _row_error(table: model.Table, rows: SeedRows, exc: psycopg.Error) -> ErpprovError:
    """A value the column's type rejects, or a CSV record of the wrong shape: named by its row,
    column and line of the file."""
    reason = exc.diag.message_primary or str(exc).strip()
    match = _COPY_CONTEXT.search(exc.diag.context or "")
    if match is None:
        return ErpprovError(f"{table.schema_}.{table.name}: the rows cannot be loaded: {reason}",
                            location=Location(rows.file))
    row = rows.row_at(int(match.group(1)))
    column = f", column {match.group(2)}" if match.group(2) else ""
    return _at(rows, row + 1, f"{table.schema_}.{table.name}: row {row + 1}{column}: {reason}",
               "fix the value in the file; nothing was changed")
