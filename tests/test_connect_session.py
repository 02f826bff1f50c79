"""Every connection erpprov opens starts with the host's timeouts (plan's too, not only apply's),
set at connection start, with the user's own PGOPTIONS kept."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from erpprov.core.model import Connection
from erpprov.postgres.connect import connect


def _settings(pg: Any) -> Connection:
    return Connection(driver="external", pg_host=pg.host, pg_port=pg.port, pg_user=pg.user,
                      pg_password=SecretStr(pg.password), pg_lock_timeout=1.5, pg_statement_timeout=7)


def _show(conn: Any, name: str) -> str:
    return conn.execute("SELECT current_setting(%s)", (name,)).fetchone()[0]


def test_every_connection_has_the_hosts_timeouts(pg: Any) -> None:
    for database in (None, pg.dbname):
        with connect(_settings(pg), database) as conn:
            assert (_show(conn, "lock_timeout"), _show(conn, "statement_timeout")) == ("1500ms", "7s")
            assert _show(conn, "client_encoding") == "UTF8"
            assert _show(conn, "jit") == "off"  # catalog reads of thousands of tables would compile


def test_pgoptions_are_kept_and_the_inventory_wins(pg: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=7MB -c lock_timeout=9s -c jit=on")
    with connect(_settings(pg), pg.dbname) as conn:
        assert _show(conn, "work_mem") == "7MB"
        assert _show(conn, "jit") == "on"
        assert _show(conn, "lock_timeout") == "1500ms"
