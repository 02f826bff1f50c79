"""The container dies or is removed mid-apply (docker driver, the local test image)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import psycopg
import yaml

from erpprov.apply.executor import LOCK_KEYS
from erpprov.drivers.embedded import free_port
from tests.dockerenv import needs_engine
from tests.helpers import assert_converged, erpprov, finish, remove_container, start_erpprov, write_project

pytestmark = needs_engine


def _project(tmp: Path, image: str, name: str, port: int, tables: int) -> Path:
    container = {"name": name, "image": image, "ports": [f"127.0.0.1:{port}:5432"], "data_dir": "data/pg",
                 "env": {"POSTGRES_PASSWORD": "{{ pg_password }}"}, "restart": "no", "wait_timeout": 60,
                 "healthcheck": {"test": "pg_isready -q -h 127.0.0.1 -U postgres", "interval": "0.5s",
                                 "timeout": "3s", "retries": 60}}
    play = [{"name": "docker", "hosts": "dev", "container": container, "databases": [{
        "name": "erp", "tables": [{"name": f"t{i}", "columns": [{"name": "id", "type": "serial",
                                                                 "primary_key": True}, {"name": "v", "type": "text"}]}
                                  for i in range(tables)]}]}]
    host = {"driver": "docker", "pg_host": "127.0.0.1", "pg_port": port, "pg_password": "{{ env.DOCKER_PW }}",
            "pg_connect_timeout": 3}
    return write_project(tmp, yaml.safe_dump(play), host)


def test_container_removed_mid_apply(tmp_path, engine, test_image):

    name, port, env = f"erpprov-rel-{uuid.uuid4().hex[:10]}", free_port(), {"DOCKER_PW": "docker-rel-pw"}
    root = _project(tmp_path, test_image, name, port, 1)
    try:
        first = erpprov(root, "apply", env=env, mem=None, timeout=180)
        assert first.returncode == 0, str(first)
        dsn = dict(host="127.0.0.1", port=port, user="postgres", password=env["DOCKER_PW"], autocommit=True)
        with psycopg.connect(**dsn, dbname="erp") as conn:
            conn.execute("INSERT INTO t0 (v) SELECT 'kept' FROM generate_series(1, 50)")
            conn.execute("CHECKPOINT")
        _project(tmp_path, test_image, name, port, 6)
        holder = psycopg.connect(**dsn, dbname="postgres")
        holder.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEYS)  # apply waits here, connected
        proc = start_erpprov(root, "apply", "--lock-wait", "60", env=env)
        time.sleep(3)
        engine.containers.get(name).remove(force=True)  # `docker rm -f` while apply runs
        holder.close()
        run = finish(proc, timeout=90)
        assert not run.timed_out and run.returncode == 1, str(run)
        # The message is a traceback today (psycopg.OperationalError escapes apply_lock): that bug is
        # pinned by test_faults.py::test_server_restart_mid_apply_gives_a_clean_error.
        again = erpprov(root, "apply", env=env, mem=None, timeout=180)
        assert again.returncode == 0, str(again)
        with psycopg.connect(**dsn, dbname="erp") as conn:
            assert conn.execute("SELECT count(*) FROM t0 WHERE v = 'kept'").fetchone()[0] == 50
            assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 6
        assert_converged(root, env)
    finally:
        remove_container(engine, name)
