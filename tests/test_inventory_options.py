"""Inventory host variables and template variables that no test had exercised: driver: auto,
pg_database, client certificates (pg_sslcert/pg_sslkey), pg_lock_timeout, pg_statement_timeout,
playbook_dir, project_dir and lookup('env'). Through the CLI, against real servers."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dockerenv import IMAGE, needs_engine
from tests.helpers import Run, assert_clean_error, assert_converged, erpprov, pg_env, server_vars, write_project
from tests.reliability.conftest import OwnCluster


def _ok(run: Run) -> Run:
    assert run.returncode == 0, str(run)
    return run


# --- driver: auto ---------------------------------------------------------------------------------

@pytest.mark.parametrize("engine_answers", [pytest.param(True, marks=needs_engine), False])
def test_driver_auto_picks_docker_when_an_engine_answers_else_local(tmp_path: Path, engine_answers: bool,
                                                                    request: pytest.FixtureRequest) -> None:
    # Without an engine the image is only a name: the test runs (and must) where no engine answers.
    test_image = request.getfixturevalue("test_image") if engine_answers else IMAGE
    name = f"erpprov-auto-{uuid.uuid4().hex[:8]}"
    host: dict[str, Any] = {"driver": "auto", "pg_port": 5999, "pg_password": "x"}
    if not engine_answers:
        host["docker_host"] = f"unix://{tmp_path}/no-engine.sock"  # nothing listens there
    play = [{"name": "c", "hosts": "dev", "container": {"name": name, "image": test_image, "data_dir": "data"}},
            {"name": "sql only", "hosts": "dev", "roles": [{"name": "r"}]}]
    root = write_project(tmp_path, yaml.safe_dump(play), host)
    # The plan only reads: nothing is created, whichever driver is chosen.
    run = erpprov(root, "plan", "-v", mem=None)
    expected = ("docker", f"+ container.{name}") if engine_answers else ("local", f"+ cluster.{name}")
    assert f"localhost (driver: {expected[0]})" in run.stdout and expected[1] in run.stdout, str(run)
    assert not (tmp_path / "data").exists()
    # A play without a container has nothing to run: auto means external there (it reads the
    # server, which is absent here, so it fails to connect to the configured port).
    assert "cannot connect to postgres@127.0.0.1:5999" in run.stderr, str(run)


# --- pg_database ----------------------------------------------------------------------------------

def test_pg_database_is_where_cluster_wide_work_connects(tmp_path: Path, pg: Any) -> None:
    role = f"pgdb_{uuid.uuid4().hex[:8]}"
    play = [{"name": "p", "hosts": "dev", "roles": [{"name": role}]}]
    root = write_project(tmp_path, yaml.safe_dump(play), {**server_vars(pg), "pg_database": pg.dbname})
    env = pg_env(pg)
    _ok(erpprov(root, "apply", env=env, mem=None))
    assert_converged(root, env)
    # No database declared: psql opens pg_database.
    psql = erpprov(root, "psql", env=env, input="SELECT 'db=' || current_database();\n")
    assert psql.returncode == 0 and f"db={pg.dbname}" in psql.stdout, psql
    write_project(root, yaml.safe_dump(play), {**server_vars(pg), "pg_database": "no_such_db"})
    assert_clean_error(erpprov(root, "plan", env=env, mem=None), "cannot connect",
                       f"@{pg.host}:{pg.port}/no_such_db", 'database "no_such_db" does not exist')


# --- client certificates ----------------------------------------------------------------------------

def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _issue(ca: Path, directory: Path, name: str, subject: str, *extra: str) -> tuple[Path, Path]:
    """A key and a certificate for ``subject``, signed by the CA at ``ca``.{crt,key}."""
    key, csr, crt = (directory / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-subj", subject, "-keyout", str(key), "-out", str(csr))
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca.with_suffix(".crt")), "-CAkey", str(ca.with_suffix(".key")),
             "-CAcreateserial", "-days", "1", "-out", str(crt), *extra)
    os.chmod(key, 0o600)  # libpq refuses a client key others can read
    return crt, key


@pytest.fixture(scope="module")
def cert_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OwnCluster, Path]]:
    """A cluster that accepts only TLS clients presenting a certificate our CA signed (`cert`
    authentication: no password at all); yields it and the directory of the client's files."""
    own = OwnCluster(conf="ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                          "ssl_ca_file = 'root.crt'")
    try:
        client = tmp_path_factory.mktemp("certs")
        ca = client / "root"
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-subj", "/CN=test CA", "-days", "1", "-keyout", str(ca.with_suffix(".key")),
                 "-out", str(ca.with_suffix(".crt")))
        ext = client / "san.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        _issue(ca, client, "server", "/CN=localhost", "-extfile", str(ext))
        _issue(ca, client, "postgres", "/CN=postgres")  # cert auth maps the CN to the role
        data = own.cluster.data_dir
        for source, name in (("server.crt", "server.crt"), ("server.key", "server.key"), ("root.crt", "root.crt")):
            (data / name).write_bytes((client / source).read_bytes())
            os.chmod(data / name, 0o600)
            own.cluster._give_away(data / name)  # as root the server runs as `postgres`, which must own them
        (data / "pg_hba.conf").write_text("local all all trust\nhostssl all all 127.0.0.1/32 cert\n")
        own.cluster.start()
        yield own, client
    finally:
        own.close()


def test_client_certificate_authenticates_without_a_password(tmp_path: Path,
                                                           cert_cluster: tuple[OwnCluster, Path]) -> None:
    own, certs = cert_cluster
    host = {k: v for k, v in own.host_vars().items() if k != "pg_password"}
    host.update(pg_sslmode="verify-full", pg_sslrootcert=str(certs / "root.crt"),
                pg_sslcert=str(certs / "postgres.crt"), pg_sslkey=str(certs / "postgres.key"))
    play = [{"name": "tls", "hosts": "dev", "databases": [{"name": "certdb", "tables": [
        {"name": "t", "columns": [{"name": "id", "type": "integer"}]}]}]}]
    root = write_project(tmp_path, yaml.safe_dump(play), host)
    env = {"PGSSLCERT": "/nonexistent", "PGSSLKEY": "/nonexistent"}  # only the inventory's may count
    _ok(erpprov(root, "apply", env=env, mem=None, drop_env=("PGPASSWORD",)))
    assert_converged(root, env)
    # The client programs (backup, psql) reach the same server with the same certificate.
    backup = _ok(erpprov(root, "backup", "-o", str(tmp_path / "certdb.sql"), env=env, mem=None,
                         drop_env=("PGPASSWORD",)))
    assert "backed up certdb" in backup.stdout and "CREATE TABLE public.t" in (tmp_path / "certdb.sql").read_text()
    # Without the certificate the server has nothing to accept.
    write_project(root, yaml.safe_dump(play), {k: v for k, v in host.items() if k not in ("pg_sslcert", "pg_sslkey")})
    assert_clean_error(erpprov(root, "plan", env=env, mem=None, drop_env=("PGPASSWORD",)), "cannot connect",
                       "certificate")


# --- pg_lock_timeout and pg_statement_timeout --------------------------------------------------------

def test_lock_and_statement_timeouts_bound_a_blocked_apply(tmp_path: Path, pg: Any) -> None:
    def play(columns: list[str]) -> str:
        return yaml.safe_dump([{"name": "p", "hosts": "dev", "databases": [{"name": pg.dbname, "tables": [
            {"name": "items", "columns": [{"name": c, "type": "integer"} for c in columns]}]}]}])

    def timeouts(lock: str, statement: str) -> None:
        write_project(root, play(["id", "added"]), {**server_vars(pg), "pg_lock_timeout": lock,
                                                   "pg_statement_timeout": statement})

    env = pg_env(pg)
    root = write_project(tmp_path, play(["id"]), server_vars(pg))
    _ok(erpprov(root, "apply", env=env, mem=None))
    added = f"column.{pg.dbname}.public.items.added"
    blocker = pg.connect()
    try:
        # A reader's lock (a long report): erpprov can read the table, but not ALTER it.
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE items IN ACCESS SHARE MODE")
        timeouts("1s", "5m")  # the ALTER gives up on the lock
        assert_clean_error(erpprov(root, "apply", env=env, mem=None, timeout=120), added,
                           "canceling statement due to lock timeout")  # the ALTER itself: the server's words
        timeouts("5m", "1500ms")  # the lock is waited for, but the statement itself gives up
        assert_clean_error(erpprov(root, "apply", env=env, mem=None, timeout=120), added,
                           "canceling statement due to statement timeout")
        blocker.execute("ROLLBACK")
        # A writer's lock (a long migration) blocks even reading the table's definition: plan and
        # apply give up after the lock timeout instead of waiting for ever.
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        timeouts("1s", "5m")
        for command in ("plan", "apply"):
            assert_clean_error(erpprov(root, command, env=env, mem=None, timeout=60),
                               "public.items", "locked by another session", "pg_lock_timeout")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    with pg.connect() as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 'items'"
                            ).fetchone()[0] == 1  # nothing was applied
    _ok(erpprov(root, "apply", env=env, mem=None))  # unblocked, the same settings go through
    assert_converged(root, env)


# --- playbook_dir, project_dir, lookup('env') -----------------------------------------------------------

def test_playbook_dir_project_dir_and_lookup_env(tmp_path: Path, pg: Any) -> None:
    role = f"vars_{uuid.uuid4().hex[:8]}"
    comment = "{{ playbook_dir }}|{{ project_dir }}|{{ lookup('env', 'ERPPROV_T_VALUE') }}|" \
              "{{ lookup('env', 'ERPPROV_T_UNSET') }}"
    play = [{"name": "p", "hosts": "dev", "roles": [{"name": role, "comment": comment}]}]
    root = write_project(tmp_path, yaml.safe_dump(play), server_vars(pg))
    env = {**pg_env(pg), "ERPPROV_T_VALUE": "from-the-environment"}
    drop = ("ERPPROV_T_UNSET",)
    _ok(erpprov(root, "apply", env=env, mem=None, drop_env=drop))
    with pg.connect("postgres") as conn:
        live = conn.execute("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s",
                            (role,)).fetchone()[0]
    real = tmp_path.resolve()
    assert live == f"{real / 'playbooks'}|{real}|from-the-environment|"
    assert_converged(root, env)
    # A playbook outside playbooks/: its own directory is the project.
    elsewhere = tmp_path / "ops"
    elsewhere.mkdir()
    (elsewhere / "site.yaml").write_text(yaml.safe_dump(play))
    planned = erpprov(root, "plan", "-i", "inventory.yaml", "ops/site.yaml", env=env, mem=None, drop_env=drop)
    assert planned.returncode == 0, str(planned)
    # The comment depends on the environment, a secret source: the plan shows that the role changes
    # (its comment now names ops/) and masks the value (issue #14).
    assert f"~ role.{role}" in planned.stdout and "from-the-environment" not in planned.stdout, str(planned)
