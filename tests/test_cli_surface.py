"""Command-line options that had never been run: logs, psql, --limit/--host, schema -o, plan --forks,
colour, and hazards refused or allowed by `apply` flags. Each goes through the real `erpprov`
process against a real server, as a user meets it."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from erpprov.cluster import free_port
from tests.helpers import reachable_tempdir
from tests.reliability.conftest import (
    Run,
    assert_clean_error,
    assert_converged,
    cli_environ,
    erpprov,
    finish,
    pg_env,
    server_vars,
    start_erpprov,
    write_project,
)


def _ok(run: Run) -> Run:
    assert run.returncode == 0, str(run)
    return run


# --- the local driver: logs and psql -------------------------------------------------------------

LOCAL_PASSWORD = "local-driver-secret"


@pytest.fixture(scope="module")
def local_project() -> Iterator[Path]:
    """A project whose embedded cluster `erpprov apply` created (driver: local), shared by the
    logs and psql tests: initdb is the slow part, the tests only read from it."""
    root = reachable_tempdir("erpprov-cli-local-")
    host = {"driver": "local", "pg_host": "127.0.0.1", "pg_port": free_port(), "pg_user": "postgres",
            "pg_password": "{{ env.LOCAL_PW }}"}
    play = [{"name": "local", "hosts": "dev", "container": {"name": "clidb", "data_dir": "data/pg"},
             "databases": [{"name": "clidb"}]}]
    write_project(root, yaml.safe_dump(play), host)
    env = {"LOCAL_PW": LOCAL_PASSWORD}
    try:
        _ok(erpprov(root, "apply", env=env, timeout=180, mem=None))
        assert_converged(root, env)
        yield root
    finally:
        erpprov(root, "destroy", "--volumes", "--yes", env=env, timeout=120, mem=None)
        shutil.rmtree(root, ignore_errors=True)


def _local_env() -> dict[str, str]:
    return {"LOCAL_PW": LOCAL_PASSWORD}


def test_logs_tail_prints_exactly_the_last_lines(local_project: Path) -> None:
    logged = (local_project / "data" / "pg" / "log" / "server.log").read_text().splitlines()
    one = _ok(erpprov(local_project, "logs", "-n", "1", env=_local_env()))
    three = _ok(erpprov(local_project, "logs", "--tail", "3", env=_local_env()))
    assert len(one.stdout.splitlines()) == 1 and len(three.stdout.splitlines()) == 3, (one, three)
    assert three.stdout.splitlines()[-1] == one.stdout.splitlines()[0]  # both end at the log's end
    everything = _ok(erpprov(local_project, "logs", "-n", "1000", env=_local_env()))
    assert "database system is ready to accept connections" in everything.stdout
    assert everything.stdout.splitlines() == logged[-1000:]


def test_logs_follow_prints_new_lines_until_stopped(local_project: Path) -> None:
    proc = start_erpprov(local_project, "logs", "-f", "-n", "2", env=_local_env())
    try:
        seen = _read_until(proc, "", 60)  # the two tail lines come first
        assert seen, "logs -f printed nothing"
        # Something new for the server to log: a failed login (marker as the user name).
        marker = f"follow_{uuid.uuid4().hex[:8]}"
        port = yaml.safe_load((local_project / "inventory.yaml").read_text())["all"]["children"]["dev"]["hosts"][
            "localhost"]["pg_port"]
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host="127.0.0.1", port=port, user=marker, password="wrong", dbname="postgres",
                            connect_timeout=5)
        seen += _read_until(proc, marker, 60)
        assert marker in seen, seen
        assert proc.poll() is None, "logs -f exited on its own"
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
        run = finish(proc, timeout=30)
    assert not run.timed_out and run.returncode == 130, str(run)
    assert "Traceback" not in run.stderr, str(run)


def _read_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> str:
    """Lines of ``proc``'s stdout until one holds ``needle`` (any line for ""), at most ``timeout`` s."""
    assert proc.stdout is not None
    got = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break  # it exited
            got += line
            if needle in line:
                return got
    return got


def test_psql_runs_what_stdin_feeds_it_on_the_local_cluster(local_project: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "erpprov", "psql"], cwd=local_project,
                         input="SELECT current_database() || '/' || current_user || '/' || 40 + 2;\n",
                         capture_output=True, text=True, timeout=60, env=cli_environ(_local_env()))
    assert run.returncode == 0, run.stderr
    assert "clidb/postgres/42" in run.stdout  # the play's first database, the admin user
    failing = subprocess.run([sys.executable, "-m", "erpprov", "psql", "--db", "postgres"], cwd=local_project,
                             input="\\set ON_ERROR_STOP on\nSELECT nonsense_column;\n", capture_output=True,
                             text=True, timeout=60, env=cli_environ(_local_env()))
    assert failing.returncode == 3 and "nonsense_column" in failing.stderr, failing  # psql's own exit code


def test_psql_on_an_external_server_with_db_and_user(tmp_path: Path, pg: Any) -> None:
    role = f"psql_{uuid.uuid4().hex[:8]}"
    play = [{"name": "p", "hosts": "dev", "roles": [{"name": role, "login": True, "password": "{{ env.ROLE_PW }}"}],
             "databases": [{"name": pg.dbname, "grants": [{"to": role, "privileges": ["CONNECT"]}]}]}]
    root = write_project(tmp_path, yaml.safe_dump(play), server_vars(pg))
    env = {**pg_env(pg), "ROLE_PW": "role-pw-1"}
    _ok(erpprov(root, "apply", env=env, mem=None))
    run = subprocess.run([sys.executable, "-m", "erpprov", "psql", "--user", role], cwd=root,
                         input="SELECT 'who=' || current_user || ' db=' || current_database();\n",
                         capture_output=True, text=True, timeout=60,
                         env=cli_environ({**env, "PGPASSWORD": "role-pw-1"}))
    # Connecting as another role must not send the admin's password: the role's own comes from
    # the user's environment (or ~/.pgpass, or psql's prompt on a terminal).
    assert run.returncode == 0 and f"who={role} db={pg.dbname}" in run.stdout, run
    admin = subprocess.run([sys.executable, "-m", "erpprov", "psql", "--db", "postgres"], cwd=root,
                           input="SELECT 'who=' || current_user || ' db=' || current_database();\n",
                           capture_output=True, text=True, timeout=60, env=cli_environ(env))
    assert admin.returncode == 0 and "who=postgres db=postgres" in admin.stdout, admin
    assert_converged(root, env)
