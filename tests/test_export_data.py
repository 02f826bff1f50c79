"""`export --data`: a table's rows as CSV beside the exported playbook, loaded back by `data:` —
export, apply to an empty database, re-plan empty, the same rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from tests.helpers import apply_all, plan_of
from tests.test_export import _renamed, _targets

ROWS_SQL = r"""
CREATE TABLE items (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n numeric(8,3), t text, j jsonb,
                    ts timestamptz, twice int GENERATED ALWAYS AS (id * 2) STORED);
INSERT INTO items (n, t, j, ts) VALUES
  (1.5, '', '{"a": [1, "x"]}', '2024-01-01 10:00+02'),
  (NULL, NULL, NULL, NULL),
  (2, 'NULL', 'null', 'infinity'),
  (-0.001, E'two\nlines, "quoted", \\N and ünïcødé', '[]', '1999-12-31 23:59:59.123456+00');
CREATE TABLE tags (label text UNIQUE, weight int);
INSERT INTO tags VALUES ('a', 1), ('b', NULL);
"""


def _rows(pg: Any, database: str, table: str) -> list[tuple]:
    with pg.connect(database) as conn:
        return conn.execute(f"SELECT x::text FROM {table} AS x ORDER BY 1").fetchall()


def test_exported_rows_load_back_into_an_empty_database(tmp_path: Path, pg: Any) -> None:
    from erpprov.cli import main

    with pg.connect() as conn:
        conn.execute(ROWS_SQL)
    out = tmp_path / "playbooks" / "exported.yaml"
    out.parent.mkdir()
    result = CliRunner().invoke(main, ["export", "-i", str(pg.inventory(tmp_path)), "--db", pg.dbname,
                                       "--data", "items,public.tags", "-o", str(out)])
    assert result.exit_code == 0, result.output
    csv_file = out.parent / f"{pg.dbname}.public.items.csv"
    assert csv_file.stat().st_mode & 0o777 == 0o600
    exported = yaml.safe_load(out.read_text())
    tables = {t["name"]: t for t in exported[0]["databases"][0]["tables"]}
    assert tables["items"]["data"] == {"from": csv_file.name}
    assert tables["tags"]["data"] == {"from": f"{pg.dbname}.public.tags.csv", "key": ["label"]}
    assert plan_of(_targets(tmp_path, pg, exported)) == []  # the source holds these rows already
    copy_name = pg.dbname + "_d"
    apply_all(_targets(tmp_path, pg, _renamed(exported, pg.dbname, copy_name)))  # fails unless it converges
    for table in ("items", "tags"):
        assert _rows(pg, copy_name, table) == _rows(pg, pg.dbname, table)
    unknown = CliRunner().invoke(main, ["export", "-i", str(pg.inventory(tmp_path)), "--db", pg.dbname,
                                        "--data", "nope"])
    assert unknown.exit_code == 1 and "public.nope" in unknown.output
