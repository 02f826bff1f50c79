"""Turn a failed table statement into a message for people.

Chosen over a guard statement (a DO block counting NULLs before every SET NOT NULL) because a
guard would scan the table twice on every successful run; this runs only after a failure.
The executor calls `explain_failure(conn, action, error)` once the failed transaction has been
rolled back, on a connection outside any transaction, and shows the result next to PostgreSQL's
own message (or alone, if it returns one).
"""

from __future__ import annotations

import psycopg
from psycopg import errors, sql

from erpprov.core.actions import Action
from erpprov.postgres.connect import one_value


def explain_failure(conn: psycopg.Connection, action: Action, error: BaseException) -> str | None:
    """A clear message for errors we can say more about, else None. Counts what broke the rule
    (one read-only query); never raises."""
    if not isinstance(error, psycopg.Error) or error.diag is None:
        return None
    diag = error.diag
    if isinstance(error, errors.NotNullViolation) and diag.table_name and diag.column_name:
        schema = diag.schema_name or "public"
        where = f"{schema}.{diag.table_name}"
        try:
            count = one_value(conn, sql.SQL("SELECT count(*) FROM {} WHERE {} IS NULL").format(
                sql.Identifier(schema, diag.table_name), sql.Identifier(diag.column_name)))
        except psycopg.Error:
            return None
        rows = "1 row holds" if count == 1 else f"{count} rows hold"
        return (f"cannot make column {diag.column_name} of table {where} NOT NULL: {rows} NULL in it "
                f"({action.address}). Nothing was changed: the transaction was rolled back and {where} is "
                f"as it was. Fill them first (UPDATE {where} SET {diag.column_name} = ... WHERE "
                f"{diag.column_name} IS NULL), give the column a default, or keep it nullable.")
    if isinstance(error, errors.UniqueViolation) and diag.message_detail:
        return (f"{action.address}: existing rows hold duplicate values ({diag.message_detail}); "
                "nothing was changed. Remove the duplicates first, or drop the unique rule.")
    return None
