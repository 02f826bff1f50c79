"""Export round trips for the table tests: the tables of a live database, exported, loaded back as
a playbook would load them, and planned against that same database."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import psycopg
import yaml
from pydantic import SecretStr

from erpprov.core import model
from erpprov.core.tables import TableDiff
from erpprov.ops.export import export_playbook
from tests.tables.tablekit import plan, tables


def exported_tables(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """The `tables:` of the connected database's export, through YAML text as a file holds them."""
    return exported_play(conn)["databases"][0].get("tables", [])


def exported_play(conn: psycopg.Connection) -> dict[str, Any]:
    """The export of the connected database (and the server's roles), through YAML text."""
    info = conn.info
    settings = model.Connection(driver="external", pg_host=info.host, pg_port=info.port, pg_user=info.user,
                                pg_password=SecretStr(info.password))
    with psycopg.connect(host=info.host, port=info.port, user=info.user, password=info.password,
                         dbname="postgres", autocommit=True) as admin:
        play = export_playbook(admin, settings, databases=[info.dbname])[0]
    return yaml.safe_load(yaml.safe_dump(play, sort_keys=False))


def replan_export(conn: psycopg.Connection) -> tuple[list[dict[str, Any]], TableDiff]:
    """The exported tables and the plan of them against their source (empty when export wrote it all)."""
    exported = exported_tables(conn)
    return exported, plan(conn, tables(yaml.safe_dump(exported)))


def schema_dump(server: Any, database: str) -> list[str]:
    """pg_dump --schema-only of a database of the test server, as sorted lines: two databases that
    hold the same tables dump alike whatever order their columns and objects were made in."""
    out = subprocess.run(["pg_dump", "--schema-only", "--no-owner", "--no-privileges", "-h", server.host,
                          "-p", str(server.port), "-U", server.user, database], capture_output=True, text=True,
                         check=True, env={**os.environ, "PGPASSWORD": server.password}, timeout=60).stdout
    return sorted(line.rstrip(",") for line in out.splitlines()
                  if line.strip() and not line.startswith(("--", "SET ", "\\")))  # \\restrict: a random key
