"""Which scripts already ran in a database: erpprov.script_runs, read in one query (two when it
does not exist yet)."""

from __future__ import annotations

import psycopg

from erpprov.core.scripts import JournalEntry
from erpprov.postgres.connect import one_value
from erpprov.postgres.script_ddl import JOURNAL_EXISTS, READ_JOURNAL


def read_journal(conn: psycopg.Connection) -> dict[str, JournalEntry]:
    if not one_value(conn, JOURNAL_EXISTS):
        return {}
    return {name: JournalEntry(checksum, applied_at) for name, checksum, applied_at in conn.execute(READ_JOURNAL)}
