"""A database in SQL_ASCII, where the server does no conversion: erpprov still reads names and text
as strings (it asks for UTF-8 on every connection), so export, plan and apply work on it and
converge, and non-ASCII text stored as UTF-8 bytes reads back as written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from psycopg import sql

from tests.helpers import erpprov

COMMENT = "Bestellungen für Kunden — ünïcode"


def _ascii_database(pg: Any) -> str:
    name = f"{pg.dbname}_ascii"
    with pg.connect("postgres") as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' "
                              "LC_CTYPE 'C'").format(sql.Identifier(name)))
    with pg.connect(name, client_encoding="UTF8") as conn:
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, note text NOT NULL DEFAULT 'offen')")
        conn.execute(sql.SQL("COMMENT ON TABLE orders IS {}").format(sql.Literal(COMMENT)))
    return name


def test_export_plan_apply_on_a_sql_ascii_database(tmp_path: Path, pg: Any) -> None:
    database = _ascii_database(pg)
    pg.inventory(tmp_path)
    (tmp_path / "playbooks").mkdir()
    playbook = tmp_path / "playbooks" / "dev.yaml"
    playbook.write_text("- {name: dev, hosts: dev}\n")

    exported = erpprov(tmp_path, "export", "--db", database, "-o", str(playbook))
    assert exported.returncode == 0, exported.stderr
    plays = yaml.safe_load(playbook.read_text())
    table = next(t for t in plays[0]["databases"][0]["tables"] if t["name"] == "orders")
    assert table["comment"] == COMMENT
    assert [c["name"] for c in table["columns"]] == ["id", "note"]

    unchanged = erpprov(tmp_path, "plan", "--detailed-exitcode")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr

    table["columns"].append({"name": "shipped_at", "type": "timestamptz", "comment": "versandt am"})
    plays[0]["databases"][0]["tables"].append(
        {"name": "kunden", "comment": "Straße", "columns": [{"name": "id", "type": "bigserial", "primary_key": True}]})
    playbook.write_text(yaml.safe_dump(plays, allow_unicode=True))
    applied = erpprov(tmp_path, "apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"changed: [localhost] table {database}.public.kunden" in applied.stdout

    again = erpprov(tmp_path, "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    with pg.connect(database, client_encoding="UTF8") as conn:
        assert conn.execute("SELECT obj_description('kunden'::regclass, 'pg_class')").fetchone()[0] == "Straße"


def test_text_that_is_not_utf8_is_a_clean_error(tmp_path: Path, pg: Any) -> None:
    """SQL_ASCII stores any bytes: a name written in Latin-1 cannot be read as UTF-8."""
    database = _ascii_database(pg)
    with pg.connect(database, client_encoding="SQL_ASCII") as conn:
        conn.execute(b'CREATE TABLE "caf\xe9" (id integer)')
    pg.inventory(tmp_path)
    (tmp_path / "playbooks").mkdir()
    playbook = f"- {{name: dev, hosts: dev, databases: [{{name: {database}}}]}}\n"
    (tmp_path / "playbooks" / "dev.yaml").write_text(playbook)
    for command in (["plan"], ["export", "--db", database]):
        run = erpprov(tmp_path, *command)
        assert run.returncode == 1 and run.stderr.startswith("error: "), run.stderr
        assert "Traceback" not in run.stderr and "not valid UTF-8" in run.stderr, run.stderr
