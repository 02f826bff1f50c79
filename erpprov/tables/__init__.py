"""The table reconciler: tables, columns, keys, checks, foreign keys, indexes, comments, owners.

    live    = inspect_tables(conn)                     # four bulk catalog queries
    desired = canonicalize(conn, tables, live)         # one rolled-back scratch build
    live    = with_row_signal(conn, live, desired)     # which tables that differ hold rows
    diff    = diff_tables(desired, live, database=db)  # pure: actions + unmanaged addresses

Modules: state (the shared vocabulary), inspect (catalog queries), canon (scratch build),
names (PostgreSQL's naming rule), diff (pure diff), ddl (SQL builders), explain (error messages).
"""

from erpprov.tables.canon import canonicalize
from erpprov.tables.diff import diff_tables
from erpprov.tables.explain import explain_failure
from erpprov.tables.inspect import inspect_tables, with_row_signal
from erpprov.tables.state import TableDiff, TablesState

__all__ = [
           "TableDiff",
           "TablesState",
           "canonicalize",
           "diff_tables",
           "explain_failure",
           "inspect_tables",
           "with_row_signal",
]
