"""The rows of each table's `data:`: inline, or read from a CSV, JSON or YAML file beside the
playbook, turned into one COPY payload (`erpprov.core.seed.SeedRows`) with a way back to the line
each row was written on.

A CSV file travels as written, so PostgreSQL's own CSV rules apply: an empty unquoted field is
NULL, `""` is an empty string. Values in data files are data, not templates; inline rows are
playbook strings and were rendered like every other.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from erpprov.core import model
from erpprov.core.seed import SeedRows, encode_rows
from erpprov.errors import ErpprovError, Location
from erpprov.load.yamlsrc import Source, load_yaml, read_bounded

MAX_DATA_BYTES = 512 * 1024 * 1024  # a CSV file, after decompression
Locate = Callable[[tuple[Any, ...]], Location]
# A position looked up only when an error needs it: finding one composes the playbook's whole node
# graph, which a run without errors never needs.
Where = Callable[[], Location]


def project_file(base: Path, name: str, project_dir: Path, entry: Where) -> Path:
    """``name`` relative to ``base`` (the playbook's directory), refused unless it lies inside the
    project: a plan shows a data file's first rows (and `--sql` a script's text), so a pull request
    must not be able to name a file elsewhere on the machine that runs the plan."""
    path = base / name
    if not path.resolve().is_relative_to(project_dir.resolve()):
        raise ErpprovError(f"{name!r} is outside the project directory", location=entry(),
                           hint="keep data files and scripts in the project, beside the playbook")
    return path


def attach_rows(play: model.Play, locate: Locate, playbook: Path, project_dir: Path) -> None:
    """Load the rows of every `data:` of ``play``; ``locate`` finds a path of the play in ``playbook``."""
    for i, db in enumerate(play.databases):
        for j, table in enumerate(db.tables):
            if table.data is None:
                continue
            where = ("databases", i, "tables", j, "data")
            rows = _load(table, table.data, playbook, project_dir,
                         lambda path, _w=where: locate(_w + path))  # type: ignore[misc]
            table.data._loaded = rows


def _load(table: model.Table, data: model.TableData, playbook: Path, project_dir: Path,
          locate: Locate) -> SeedRows:
    if data.rows is not None:
        rows = _mapped_rows(table, data.rows, str(playbook), lambda r: locate(("rows", r)))
    else:
        assert data.from_ is not None

        def entry() -> Location:
            return locate(("from",))

        path = project_file(playbook.parent, data.from_, project_dir, entry)
        suffixes = "".join(path.suffixes[-2:]).lower()
        try:
            if suffixes.endswith((".csv", ".csv.gz")):
                rows = _csv_rows(path, entry)
            elif path.suffix.lower() in (".json", ".yaml", ".yml"):
                source = load_yaml(path, what="data file", missing_hint="data.from is relative to the playbook")
                rows = _file_rows(table, source)
            else:
                raise ErpprovError(f"data.from: {data.from_!r} is not a .csv, .csv.gz, .json, .yaml or .yml file",
                                   location=entry())
        except ErpprovError as exc:
            if exc.location is None:  # missing, unreadable, not a file: point at the entry that names it
                raise ErpprovError(exc.message, location=entry(), hint=exc.hint) from None
            raise
    _check_columns(table, data, rows, locate)
    return rows


def _file_rows(table: model.Table, source: Source) -> SeedRows:
    if not isinstance(source.data, list):
        raise ErpprovError("a data file holds a list of rows, each a mapping of column to value",
                           location=source.locate(()))
    return _mapped_rows(table, source.data, source.file, lambda r: source.locate((r,)))


def _mapped_rows(table: model.Table, rows: list[Any], file: str, locate_row: Callable[[int], Location]) -> SeedRows:
    primary = tuple(c.name for c in table.columns if c.primary_key)
    columns: tuple[str, ...] = tuple(rows[0]) if rows and isinstance(rows[0], dict) else tuple(
        table.data.key if table.data and table.data.key else primary)
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ErpprovError(f"row {index + 1} is not a mapping of column to value", location=locate_row(index))
        if set(row) != set(columns):
            differ = sorted(set(row) ^ set(columns), key=str)
            raise ErpprovError(f"row {index + 1} names other columns than the first row (differing: "
                               f"{', '.join(map(str, differ))})", location=locate_row(index),
                               hint="every row names the same columns; write null for a missing value")
    return SeedRows(columns=tuple(map(str, columns)), payload=encode_rows(columns, rows), file=file,
                    row_line=lambda r: locate_row(r).line)


def _csv_rows(path: Path, entry: Where) -> SeedRows:
    raw = read_bounded(path, "data file", "data.from is relative to the playbook", MAX_DATA_BYTES)
    if path.suffix.lower() == ".gz":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as unzipped:
                raw = unzipped.read(MAX_DATA_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise ErpprovError(f"{path} is not a readable gzip file: {exc}", location=entry()) from None
    if len(raw) > MAX_DATA_BYTES:
        raise ErpprovError(f"{path} holds more than {MAX_DATA_BYTES // (1024 * 1024)} MiB of rows", location=entry(),
                           hint="load larger tables with a script (scripts:) or pg_restore")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ErpprovError(f"the file is not valid UTF-8 (byte {exc.start})", location=Location(str(path), line),
                           hint="save it as UTF-8") from None
    first = raw.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
    header = next(csv.reader([first]), [])
    if not header or any(not name for name in header):
        raise ErpprovError("the first line of a CSV data file names the columns", location=Location(str(path), 1))
    return SeedRows(columns=tuple(header), payload=raw, file=str(path), header=True)


def _check_columns(table: model.Table, data: model.TableData, rows: SeedRows, locate: Locate) -> None:
    names = {c.name for c in table.columns}
    for column in rows.columns:
        if column not in names:
            raise ErpprovError(f"{table.name}: the rows name column {column!r}, which the table does not declare",
                               location=Location(rows.file, 1) if rows.header else locate(()))
        if len(set(rows.columns)) != len(rows.columns):
            raise ErpprovError(f"{table.name}: the rows name column {column!r} twice", location=locate(()))
    key = data.key or [c.name for c in table.columns if c.primary_key]
    for column in key:
        if column not in rows.columns:
            raise ErpprovError(f"{table.name}: the key column {column!r} is missing from the rows "
                               f"({', '.join(rows.columns)})", location=locate(("key",) if data.key else ()),
                               hint="every row names the columns of the key")
    generated = {c.name for c in table.columns if c.generated} & set(rows.columns)
    if generated:
        raise ErpprovError(f"{table.name}: the rows set the generated column {sorted(generated)[0]!r}",
                           location=locate(()))
