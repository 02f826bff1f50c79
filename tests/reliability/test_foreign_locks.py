"""Locks held by other sessions: a table locked in an open transaction never hangs erpprov. Every
connection runs with the host's pg_lock_timeout, a lock that matters ends in a clean error naming
the table, and a lock on a table no action touches does not matter at all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import yaml

from tests.helpers import assert_clean_error, erpprov, pg_env, server_vars, write_project

HANG = 60  # seconds: far beyond the lock timeout; reaching it means erpprov waited on the lock


def _playbook(db: str, prune: bool = False) -> str:
    tables = [{"name": "orders", "columns": [{"name": "id", "type": "integer", "primary_key": True},
                                             {"name": "note", "type": "text"}]}]
    database = {"name": db, "tables": tables}
    if prune:
        database["schemas"] = [{"name": "public", "prune": True}]
    return yaml.safe_dump([{"name": "locks", "hosts": "dev", "databases": [database]}])


@contextmanager
def locked(pg, table: str) -> Iterator[int]:  # type: ignore[no-untyped-def]
    """``table`` of the test database, ACCESS EXCLUSIVE in another session's open transaction;
    yields that session's pid."""
    with psycopg.connect(host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname=pg.dbname) as holder:
        holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield holder.info.backend_pid
        holder.rollback()


def _project(tmp_path, pg, prune: bool = False):  # type: ignore[no-untyped-def]
    with pg.connect() as conn:
        conn.execute("CREATE TABLE orders (id integer PRIMARY KEY)")  # `note` is missing: plan has an action
        conn.execute("CREATE TABLE bystander (id integer)")
        conn.execute("INSERT INTO orders VALUES (1)")
    return write_project(tmp_path, _playbook(pg.dbname, prune), {**server_vars(pg), "pg_lock_timeout": "1s"})


def test_a_lock_on_a_table_no_action_touches_does_not_stop_plan(tmp_path, pg):
    root = _project(tmp_path, pg)
    with locked(pg, "bystander"):
        run = erpprov(root, "plan", env=pg_env(pg), timeout=HANG)
    assert not run.timed_out, f"plan waited on a lock it does not need: {run}"
    assert run.returncode == 0, str(run)
    assert f"+ column.{pg.dbname}.public.orders.note" in run.stdout, str(run)


def test_a_lock_on_a_planned_table_is_a_clean_error_naming_it(tmp_path, pg):
    root = _project(tmp_path, pg)
    with locked(pg, "orders") as pid:
        run = erpprov(root, "plan", env=pg_env(pg), timeout=HANG)
    assert_clean_error(run, "public.orders", "lock", f"pid {pid}", "pg_lock_timeout")


def test_a_lock_on_a_table_that_prune_would_drop_is_a_clean_error(tmp_path, pg):
    root = _project(tmp_path, pg, prune=True)
    with locked(pg, "bystander"):
        run = erpprov(root, "apply", env=pg_env(pg), timeout=HANG)
    assert_clean_error(run, "public.bystander", "lock")
    with pg.connect() as conn:  # nothing was applied
        assert conn.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = 'orders'::regclass "
                            "AND attname = 'note'").fetchone()[0] == 0
