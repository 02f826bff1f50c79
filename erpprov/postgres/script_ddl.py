"""The journal of scripts that ran (`erpprov.script_runs` in each managed database), and the
statements that run a script and record it.

The journal lives in a schema of erpprov's own, which the catalog reads leave out: it is
bookkeeping, never a managed or unmanaged object of the playbook.
"""

from __future__ import annotations

from psycopg import sql

from erpprov import __version__
from erpprov.core.actions import Statement
from erpprov.postgres.ddl import ident, literal, text

JOURNAL_SCHEMA, JOURNAL_TABLE = "erpprov", "script_runs"
JOURNAL = ident(JOURNAL_SCHEMA, JOURNAL_TABLE)
# Catalog predicates (n: pg_namespace, c: pg_class) that leave out the journal, which is erpprov's
# bookkeeping, and its schema once it holds the journal; anything else a user keeps in a schema of
# that name is theirs, and listed like the rest.
NOT_JOURNAL = f"NOT ({{n}}.nspname = '{JOURNAL_SCHEMA}' AND {{c}}.relname = '{JOURNAL_TABLE}')"
NOT_JOURNAL_SCHEMA = (f"NOT ({{n}}.nspname = '{JOURNAL_SCHEMA}' "
                      f"AND to_regclass('{JOURNAL_SCHEMA}.{JOURNAL_TABLE}') IS NOT NULL)")

READ_JOURNAL = sql.SQL("SELECT name, checksum, applied_at::text FROM {} ORDER BY name").format(JOURNAL)
JOURNAL_EXISTS = sql.SQL("SELECT to_regclass({}) IS NOT NULL").format(literal(text(JOURNAL)))


def run_script(name: str, script: str, checksum: str) -> list[Statement]:
    """The journal (created if missing), the script as written, and its record."""
    return [
        Statement(text(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident(JOURNAL_SCHEMA)))),
        Statement(text(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, checksum text NOT NULL, "
            "applied_at timestamptz NOT NULL, erpprov_version text NOT NULL)").format(JOURNAL))),
        Statement(script),
        Statement(text(sql.SQL(
            "INSERT INTO {} (name, checksum, applied_at, erpprov_version) VALUES ({}, {}, now(), {}) "
            "ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = excluded.applied_at, "
            "erpprov_version = excluded.erpprov_version").format(
            JOURNAL, literal(name), literal(checksum), literal(__version__)))),
    ]
