"""Two, then ten, concurrent applies of the same playbook on one server: they take turns (the
advisory lock), none fails except with the lock-wait message, and the final state is right."""

from __future__ import annotations

import time

import pytest
import yaml

from erpprov.apply.executor import LOCK_KEYS
from tests.helpers import (
    assert_clean_error,
    assert_converged,
    erpprov,
    finish,
    pg_env,
    server_vars,
    start_erpprov,
    write_project,
)

from .conftest import unique, waiting_for_the_lock


@pytest.mark.parametrize("count", [2, 10])
def test_concurrent_applies_take_turns(tmp_path, pg, count):
    role = unique("conc")
    databases = [f"{pg.dbname}_c{i}" for i in range(2)]
    play = [{"name": "concurrent", "hosts": "dev", "roles": [{"name": role, "login": True}],
             "databases": [{"name": db, "grants": [{"to": role, "privileges": ["CONNECT"]}],
                            "tables": [{"name": f"t{i}", "columns": [{"name": "id", "type": "serial",
                                                                      "primary_key": True}],
                                        "grants": [{"to": role, "privileges": ["SELECT"]}]} for i in range(5)]}
                           for db in databases]}]
    root = write_project(tmp_path, yaml.safe_dump(play), server_vars(pg))
    runs = [start_erpprov(root, "apply", "--lock-wait", "90", env=pg_env(pg)) for _ in range(count)]
    results = [finish(proc, timeout=150) for proc in runs]
    for run in results:
        assert not run.timed_out and "Traceback" not in run.stderr, str(run)
        assert run.returncode == 0 or "another erpprov apply holds the lock" in run.stderr, str(run)
    succeeded = [r for r in results if r.returncode == 0]
    assert succeeded, "no apply succeeded"
    if count == 2:  # the lock wait (90 s) is far beyond one apply: the waiting one gets its turn
        assert len(succeeded) == count, [str(r) for r in results]
    # Exactly one of them created the objects; the others found them done.
    assert sum(f"changed: [localhost] role {role}" in r.stdout for r in results) == 1
    assert sum(f"changed: [localhost] table {databases[0]}.public.t0" in r.stdout for r in results) == 1
    assert_converged(root, pg_env(pg))


def test_applies_through_different_pg_databases_take_turns(tmp_path, pg):
    """The advisory lock belongs to one database: every apply takes it in `postgres`, whatever the
    inventory's pg_database, or two of them would run at once."""
    role = unique("conc")
    play = [{"name": "concurrent", "hosts": "dev", "roles": [{"name": role, "login": True}],
             "databases": [{"name": pg.dbname, "tables": [{"name": "t0", "columns": [
                 {"name": "id", "type": "serial", "primary_key": True}]}]}]}]
    roots = [write_project(tmp_path / via, yaml.safe_dump(play), {**server_vars(pg), "pg_database": via})
             for via in ("postgres", pg.dbname)]
    with pg.connect("postgres") as holder:  # an apply of a third inventory holds the lock meanwhile
        holder.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEYS)
        runs = [start_erpprov(root, "apply", "--lock-wait", "90", env=pg_env(pg)) for root in roots]
        waiting: set[int] = set()
        for _ in range(600):  # bounded: 60 s at most
            waiting = waiting_for_the_lock(pg, [p.pid for p in runs])
            if len(waiting) == 2 or any(p.poll() is not None for p in runs):
                break
            time.sleep(0.1)
        granted = holder.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                                 "AND classid = %s AND objid = %s", LOCK_KEYS).fetchall()
        holder.execute("SELECT pg_advisory_unlock(%s, %s)", LOCK_KEYS)
        holder_pid = holder.info.backend_pid
    results = [finish(proc, timeout=150) for proc in runs]
    assert waiting == {p.pid for p in runs}, f"not both waited for the lock: {[str(r) for r in results]}"
    assert granted == [(holder_pid,)]  # neither apply had it while they waited
    for run in results:
        assert run.returncode == 0, str(run)
    assert sum(f"changed: [localhost] role {role}" in r.stdout for r in results) == 1
    assert sum(f"changed: [localhost] table {pg.dbname}.public.t0" in r.stdout for r in results) == 1
    assert_converged(roots[1], pg_env(pg))


def test_the_lock_holder_through_postgres_stops_an_apply_through_another_database(tmp_path, pg):
    root = write_project(tmp_path, yaml.safe_dump([{"name": "p", "hosts": "dev", "databases": [{"name": pg.dbname}]}]),
                         {**server_vars(pg), "pg_database": pg.dbname})
    with pg.connect("postgres", application_name="erpprov apply pid=4242 on laptop") as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEYS)
        blocked = erpprov(root, "apply", "--lock-wait", "1", env=pg_env(pg))
        holder.execute("SELECT pg_advisory_unlock(%s, %s)", LOCK_KEYS)
    assert_clean_error(blocked, "another erpprov apply holds the lock", "erpprov apply pid=4242 on laptop")
    assert erpprov(root, "apply", env=pg_env(pg)).returncode == 0  # once it is free, the apply proceeds


def test_without_connect_on_postgres_the_lock_falls_back_and_says_so(tmp_path, own_cluster):
    """An admin that may not enter `postgres` still applies: the lock is taken in its pg_database,
    and the output says that other pg_databases would not wait for it."""
    with own_cluster.connect() as conn:
        conn.execute("CREATE ROLE deployer LOGIN CREATEROLE CREATEDB PASSWORD 'deployer-secret'")
        conn.execute("CREATE DATABASE deploy OWNER deployer")
        conn.execute("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")
    play = [{"name": "p", "hosts": "dev", "databases": [{"name": "deploy", "tables": [
        {"name": "t0", "columns": [{"name": "id", "type": "integer"}]}]}]}]
    host = own_cluster.host_vars(pg_user="deployer", pg_database="deploy", pg_password="deployer-secret")
    root = write_project(tmp_path, yaml.safe_dump(play), host)
    run = erpprov(root, "apply", env=own_cluster.env)
    assert run.returncode == 0, str(run)
    assert "changed: [localhost] table deploy.public.t0" in run.stdout, str(run)
    assert "the apply lock is held in database deploy, not postgres" in run.stdout, str(run)
