"""Every connection erpprov opens starts with the host's timeouts (plan's too, not only apply's),
set at connection start, with the user's own PGOPTIONS kept."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from erpprov.core.model import Connection
from erpprov.errors import ErpprovError
from erpprov.plan.build import plan_target
from erpprov.postgres.connect import connect
from tests.helpers import assert_clean_error, erpprov, load_targets, silent_server, write_project


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


_ONE_TABLE = """
- name: one
  hosts: dev
  databases:
    - name: {db}
      tables:
        - {{name: t, columns: [{{name: id, type: integer, primary_key: true}}]}}
"""


def test_a_plan_of_one_database_reads_through_one_session(tmp_path: Path, pg: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Roles and databases read the same from any database: a plan of a database that exists reads
    them through that database's session, not a second one; a database not there yet is planned
    through pg_database (and its template), as before."""
    opened: list[str] = []
    real = psycopg.connect

    def counted(*args: Any, **kwargs: Any) -> psycopg.Connection:
        connection = real(*args, **kwargs)
        opened.append(connection.info.dbname)
        return connection

    monkeypatch.setattr(psycopg, "connect", counted)
    exists = load_targets(tmp_path / "exists", pg, _ONE_TABLE.format(db=pg.dbname))[0]
    assert [a.address.kind for a in plan_target(exists).actions] == ["table"]
    assert opened == [pg.dbname]
    opened.clear()
    missing = load_targets(tmp_path / "missing", pg, _ONE_TABLE.format(db=f"{pg.dbname}_new"))[0]
    assert {a.address.kind for a in plan_target(missing).actions} == {"database", "table"}
    assert opened == ["postgres", "template1"]  # the new one refused the first attempt


def test_a_server_that_does_not_answer_is_waited_for_once(tmp_path: Path) -> None:
    """The plan tries the play's own database first, then pg_database: a server that never answers
    must not make it wait for the connection timeout twice (counted as connection attempts)."""
    accepted: list[socket.socket] = []
    done = threading.Event()
    # the accepting thread looks this often whether to stop: one left behind would outlive the
    # test (prefetch, for one, refuses to fork beside it)
    with silent_server(timeout=0.2) as (silent, host):

        def accept() -> None:
            while not done.is_set():
                with contextlib.suppress(TimeoutError):
                    accepted.append(silent.accept()[0])

        accepting = threading.Thread(target=accept)
        accepting.start()
        try:
            project = write_project(tmp_path, _ONE_TABLE.format(db="app"), {**host, "pg_connect_timeout": 2})
            run = erpprov(project, "plan")
        finally:
            done.set()
            accepting.join(timeout=10)
            for conn in accepted:
                conn.close()
    assert not accepting.is_alive()
    assert_clean_error(run, "cannot connect", "timeout")
    assert len(accepted) == 1, f"{len(accepted)} connection attempts"


def test_a_wrong_password_is_tried_once(tmp_path: Path, pg: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """pg_database is the fallback for a database the role cannot enter, not for a login the
    server refused: a second attempt would count a wrong password twice against the role."""
    attempts: list[str] = []
    real = psycopg.connect

    def counted(*args: Any, **kwargs: Any) -> psycopg.Connection:
        attempts.append(str(kwargs.get("dbname")))
        return real(*args, **kwargs)

    monkeypatch.setattr(psycopg, "connect", counted)
    target = load_targets(tmp_path, pg, _ONE_TABLE.format(db=pg.dbname), pg_password="not-the-password")[0]
    with pytest.raises(ErpprovError, match="password authentication failed"):
        plan_target(target)
    assert attempts == [pg.dbname]
