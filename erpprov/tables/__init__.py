"""The table reconciler: tables, columns, keys, checks, foreign keys, indexes, comments, owners.

    live    = inspect_tables(conn)                     # four bulk catalog queries
    desired = canonicalize(conn, tables, live)         # one rolled-back scratch build
    diff    = diff_tables(desired, live, database=db)  # pure: actions + unmanaged addresses

`diff_read_rows` runs the diff and, when it has actions, reads which tables hold rows first.

Modules: state (the shared vocabulary), inspect (catalog queries), canon (scratch build),
names (PostgreSQL's naming rule), diff (pure diff), ddl (SQL builders), explain (error messages).
"""

from collections.abc import Collection

import psycopg

from erpprov.tables.canon import canonicalize
from erpprov.tables.diff import diff_tables
from erpprov.tables.explain import explain_failure
from erpprov.tables.inspect import inspect_tables, with_row_signal
from erpprov.tables.state import TableDiff, TablesState

__all__ = [
    "TableDiff",
    "TablesState",
    "canonicalize",
    "diff_read_rows",
    "diff_tables",
    "explain_failure",
    "inspect_tables",
]


def diff_read_rows(conn: psycopg.Connection, desired: TablesState, live: TablesState, *, database: str,
                   prune_schemas: Collection[str] = ()) -> tuple[TableDiff, TablesState]:
    """The diff, and the live state it was made from. Whether a table holds rows shapes only the
    hazards and notes of actions, and reading it costs a relation open per table: a diff without
    actions does not need it; one with actions is made again once it is read."""
    diff = diff_tables(desired, live, database=database, prune_schemas=prune_schemas)
    if diff.actions:
        live = with_row_signal(conn, live, _touchable(desired, live, prune_schemas))
        diff = diff_tables(desired, live, database=database, prune_schemas=prune_schemas)
    return diff, live


def _touchable(desired: TablesState, live: TablesState, prune_schemas: Collection[str]) -> set[tuple[str, str]]:
    """The live tables whose rows an action's hazards can depend on: the declared ones (and those
    they are renamed from), and those a prune may drop. Any other table is left alone."""
    keys = set(desired.tables) | {(t.schema, t.renamed_from) for t in desired.tables.values() if t.renamed_from}
    return keys | {key for key in live.tables if key[0] in prune_schemas}
