"""Seed rows as they travel to the server: one COPY payload in PostgreSQL's CSV format, and what a
comparison of those rows with the live table found.

Values are never spliced into SQL: the payload goes through COPY, so the server parses each value
with the column's own input function (1.50 and 1.5 are one numeric, JSON is read as JSON).
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# A sample of each kind of change is shown in a plan; the counts say the rest.
SAMPLE_ROWS = 3


@dataclass(frozen=True)
class SeedRows:
    """Rows of one table: ``payload`` is COPY ... (FORMAT csv) input, with a header record when
    ``header`` (a CSV file sent as written) and without one when erpprov encoded the rows."""

    columns: tuple[str, ...]
    payload: bytes
    file: str  # where the rows were written, for errors
    header: bool = False
    # The line of a row (0-based) in ``file``, looked up only for an error; None: a CSV file's record.
    row_line: Callable[[int], int | None] | None = field(default=None, compare=False, repr=False)

    @property
    def described(self) -> str:
        """Where the rows come from and a digest of them, as a plan shows the COPY: a saved plan
        whose rows changed since no longer matches (`apply plan.json` refuses it)."""
        return f"the rows of {self.file} (sha256 {hashlib.sha256(self.payload).hexdigest()[:16]})"

    def row_at(self, copy_line: int) -> int:
        """The data row (0-based) that holds line ``copy_line`` of the payload, as COPY's error
        context counts lines: physical lines, header included, so a quoted value may span several."""
        spans = _record_spans(self.payload)[1 if self.header else 0:]
        return next((row for row, (_, end) in enumerate(spans) if copy_line <= end), len(spans) - 1)

    def line_of(self, row: int) -> int | None:
        """The line of ``file`` where data row ``row`` (0-based) starts."""
        if self.row_line is not None:
            return self.row_line(row)
        spans = _record_spans(self.payload)[1:]
        return spans[row][0] if 0 <= row < len(spans) else None


def _record_spans(payload: bytes) -> list[tuple[int, int]]:
    """The first and last line of each CSV record (quoted fields may span lines)."""
    text = io.StringIO(payload.decode("utf-8", errors="replace"), newline="")
    reader = csv.reader(text)
    spans, line = [], 1
    for _ in reader:
        spans.append((line, reader.line_num))
        line = reader.line_num + 1
    return spans


def copy_text(value: Any) -> str | None:
    """A value from YAML or JSON as the text PostgreSQL reads for it (None: NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    return str(value)


def encode_rows(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> bytes:
    """``rows`` as COPY CSV input without a header: NULL is an empty unquoted field, every other
    value is quoted, so an empty string stays an empty string."""
    out = []
    for row in rows:
        fields = []
        for column in columns:
            text = copy_text(row[column])
            fields.append("" if text is None else '"' + text.replace('"', '""') + '"')
        out.append(",".join(fields))
    return ("\n".join(out) + "\n").encode("utf-8") if out else b""


@dataclass(frozen=True)
class DataComparison:
    """What the server found comparing declared rows with the live table: counts and the first rows
    of each kind of change, as text (columns in ``columns`` order; None is NULL)."""

    database: str
    schema: str
    table: str
    mode: str
    columns: tuple[str, ...]
    types: tuple[str, ...]  # of ``columns``, as format_type prints them
    key: tuple[str, ...]
    declared: int = 0  # rows in the file
    to_insert: int = 0
    to_update: int = 0
    to_delete: int = 0
    inserts: tuple[tuple[str | None, ...], ...] = ()
    updates: tuple[tuple[tuple[str | None, ...], tuple[str | None, ...]], ...] = ()  # (declared, live)
    deletes: tuple[tuple[str | None, ...], ...] = ()
    sequences: tuple[str, ...] = field(default=())  # columns whose sequence follows the seeded values
    identity_always: bool = False  # an INSERT must say OVERRIDING SYSTEM VALUE

    @property
    def inserts_only(self) -> bool:
        """No declared key is in the table (its stale rows, if any, are deleted first): COPY
        straight into it."""
        return self.to_insert == self.declared

    @property
    def changes(self) -> bool:
        return bool(self.to_insert or self.to_update or self.to_delete)


Digest = tuple[int, Decimal | None]  # rows, and the sum of their hashes (None: no rows)


@dataclass
class RowDigests:
    """The declared rows of each seeded table (by database, schema, table) as the plan inside apply
    found them: how many, and the sum of their hashes (postgres.data_ddl.digest_query). The plan
    after the apply reads a table once to tell whether it holds exactly those rows, rather than
    copying the rows again to compare them; ``reuse`` marks that second plan."""

    taken: dict[tuple[str, str, str], Digest] = field(default_factory=dict)
    reuse: bool = False
