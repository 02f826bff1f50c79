"""Least privilege (a CREATEROLE/CREATEDB admin as on managed services), TLS (pg_sslmode honoured),
where passwords may come from, and the modes of files erpprov writes."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.helpers import assert_clean_error, assert_converged, erpprov, pg_env, server_vars, write_project

from .conftest import OwnCluster, unique

# --- least privilege ---------------------------------------------------------------------------


def _managed_admin(pg) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    admin, admin_pw = unique("mgr"), "mgr-Secret-1"
    with pg.connect("postgres") as conn:
        conn.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB PASSWORD {}").format(
            psycopg.sql.Identifier(admin), psycopg.sql.Literal(admin_pw)))
    return admin, admin_pw


def _managed_play(db: str, app: str, others: tuple[str, ...], with_tables: bool) -> list[dict]:
    su, repl, brls = others
    database: dict = {"name": db, "grants": [{"to": app, "privileges": ["CONNECT"]}]}
    if with_tables:
        database["schemas"] = [{"name": "erp", "grants": [{"to": app, "privileges": ["USAGE"]}]}]
        database["tables"] = [{"name": "t", "schema": "erp", "columns": [{"name": "id", "type": "serial",
                                                                           "primary_key": True}],
                               "grants": [{"to": app, "privileges": ["SELECT"]}]}]
    return [{"name": "managed", "hosts": "dev", "roles": [
        {"name": app, "login": True, "password": "app-pw-1", "connection_limit": 5},
        {"name": su, "superuser": True}, {"name": repl, "replication": True, "login": True},
        {"name": brls, "bypassrls": True}], "databases": [database]}]


def test_non_superuser_admin_does_what_it_can_and_reports_the_rest(tmp_path, pg):
    admin, admin_pw = _managed_admin(pg)
    app, su, repl, brls = (unique(p) for p in ("app", "su", "repl", "brls"))
    db = f"{pg.dbname}_lp"
    host = {**server_vars(pg), "pg_user": admin, "pg_password": "{{ env.MGR_PW }}"}
    root = write_project(tmp_path, yaml.safe_dump(_managed_play(db, app, (su, repl, brls), False)), host)
    env = {"MGR_PW": admin_pw}
    plan = erpprov(root, "plan", "--sql", env=env, mem=None)
    assert plan.returncode == 0, str(plan)
    for role in (su, repl, brls):
        assert f"role.{role}: SUPERUSER, REPLICATION and BYPASSRLS need a superuser" in plan.stdout, str(plan)
    assert "SUPERUSER" not in plan.stdout.replace("NOSUPERUSER", "").replace(
        "SUPERUSER, REPLICATION and BYPASSRLS", ""), "a superuser-only attribute was planned"
    applied = erpprov(root, "apply", env=env, mem=None)
    assert applied.returncode == 0, str(applied)
    assert "need a superuser" in applied.stdout
    # The database exists now (owned by the admin): its schemas and tables can be planned in it.
    (root / "playbooks" / "dev.yaml").write_text(yaml.safe_dump(_managed_play(db, app, (su, repl, brls), True)))
    applied = erpprov(root, "apply", env=env, mem=None)
    assert applied.returncode == 0, str(applied)
    with pg.connect("postgres") as conn:
        rows = conn.execute("SELECT rolname, rolsuper, rolreplication, rolbypassrls FROM pg_roles "
                            "WHERE rolname = ANY(%s)", ([su, repl, brls],))
        flags = {r[0]: tuple(r[1:]) for r in rows}
        assert flags == {su: (False, False, False), repl: (False, False, False), brls: (False, False, False)}
    with psycopg.connect(host=pg.host, port=pg.port, user=app, password="app-pw-1", dbname=db) as conn:
        conn.execute("SELECT * FROM erp.t")
    again = erpprov(root, "plan", "--detailed-exitcode", env=env, mem=None)
    assert again.returncode == 0, str(again)
    assert "password cannot be compared" in again.stdout + again.stderr, str(again)


def test_non_superuser_admin_creates_a_database_with_tables_in_one_apply(tmp_path, pg):
    admin, admin_pw = _managed_admin(pg)
    app, su, repl, brls = (unique(p) for p in ("app", "su", "repl", "brls"))
    host = {**server_vars(pg), "pg_user": admin, "pg_password": "{{ env.MGR_PW }}"}
    root = write_project(tmp_path, yaml.safe_dump(_managed_play(f"{pg.dbname}_lp1", app, (su, repl, brls), True)),
                         host)
    applied = erpprov(root, "apply", env={"MGR_PW": admin_pw}, mem=None)
    assert applied.returncode == 0, str(applied)
    assert_converged(root, {"MGR_PW": admin_pw})


# --- TLS -----------------------------------------------------------------------------------------

def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def ssl_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OwnCluster, Path, Path]]:
    own = OwnCluster(conf="ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'")
    try:
        data = own.cluster.data_dir
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1",
                 "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                 "-keyout", str(data / "server.key"), "-out", str(data / "server.crt"))
        for name in ("server.key", "server.crt"):
            os.chmod(data / name, 0o600)
            own.cluster._give_away(data / name)  # as root the server runs as `postgres`, which must own them
        hba = data / "pg_hba.conf"  # TLS only over TCP: a plain connection has no matching line
        hba.write_text("\n".join("hostssl" + line[4:] if line.startswith("host ") else line
                                 for line in hba.read_text().splitlines()) + "\n")
        own.cluster.start()
        client = tmp_path_factory.mktemp("tls")
        (client / "root.crt").write_bytes((data / "server.crt").read_bytes())
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=impostor", "-days", "1",
                 "-keyout", str(client / "wrong.key"), "-out", str(client / "wrong.crt"))
        yield own, client / "root.crt", client / "wrong.crt"
    finally:
        own.close()


def _tls_project(tmp_path: Path, own: OwnCluster, **host: object) -> Path:
    play = [{"name": "tls", "hosts": "dev", "databases": [{"name": "tlsdb"}]}]
    return write_project(tmp_path, yaml.safe_dump(play), own.host_vars(**host))


def test_sslmode_require_is_used(tmp_path, ssl_cluster):
    own, _, _ = ssl_cluster
    root = _tls_project(tmp_path, own, pg_sslmode="require")
    assert erpprov(root, "apply", env=own.env, mem=None).returncode == 0  # pg_hba accepts TLS only
    assert_converged(root, own.env)
    from erpprov.load.project import load_project
    from erpprov.postgres.connect import connect

    target = load_project(root / "playbooks" / "dev.yaml", root / "inventory.yaml", environ=own.env).targets[0]
    with connect(target.connection) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0] is True


def test_sslmode_disable_is_refused_by_a_tls_only_server(tmp_path, ssl_cluster):
    own, _, _ = ssl_cluster
    run = erpprov(_tls_project(tmp_path, own, pg_sslmode="disable"), "plan", env=own.env, mem=None)
    assert_clean_error(run, "cannot connect", "no encryption")


def test_verify_full_with_the_right_root_cert(tmp_path, ssl_cluster):
    own, root_crt, _ = ssl_cluster
    root = _tls_project(tmp_path, own, pg_sslmode="verify-full", pg_sslrootcert=str(root_crt))
    assert erpprov(root, "apply", env=own.env, mem=None).returncode == 0
    assert_converged(root, own.env)


def test_verify_full_with_a_wrong_root_cert_fails_clearly(tmp_path, ssl_cluster):
    own, _, wrong = ssl_cluster
    run = erpprov(_tls_project(tmp_path, own, pg_sslmode="verify-full", pg_sslrootcert=str(wrong)), "plan",
                  env=own.env, mem=None)
    assert_clean_error(run, "cannot connect", "certificate verify failed")


def test_client_programs_use_every_tls_setting(tmp_path, ssl_cluster):
    """pg_dump and psql verify the server as erpprov's own connections do (verify-full + root cert)."""
    own, root_crt, _ = ssl_cluster
    root = _tls_project(tmp_path, own, pg_sslmode="verify-full", pg_sslrootcert=str(root_crt))
    assert erpprov(root, "apply", env=own.env, mem=None).returncode == 0
    with own.connect("tlsdb") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS shipped (id int)")
        conn.execute("INSERT INTO shipped VALUES (7)")
    run = erpprov(root, "backup", "--db", "tlsdb", "-o", "tls.sql", env=own.env, mem=None)
    assert run.returncode == 0, str(run)
    run = erpprov(root, "restore", "tls.sql", "--db", "tlsdb", "--into", "tlsdb_copy", env=own.env, mem=None)
    assert run.returncode == 0, str(run)
    with own.connect("tlsdb_copy") as conn:
        assert conn.execute("SELECT id FROM shipped").fetchall() == [(7,)]


def test_client_programs_refuse_a_server_the_root_cert_does_not_vouch_for(tmp_path, ssl_cluster):
    """With a root certificate, libpq verifies the server even under `require`: a backup must too,
    instead of silently talking to whoever answers."""
    own, _, wrong = ssl_cluster
    root = _tls_project(tmp_path, own, pg_sslmode="require", pg_sslrootcert=str(wrong))
    run = erpprov(root, "backup", "--db", "postgres", "-o", "wrong.sql", env=own.env, mem=None)
    assert_clean_error(run, "certificate verify failed")
    assert not (root / "wrong.sql").exists()


# --- where passwords come from -------------------------------------------------------------------

def test_password_from_pgpassfile(tmp_path, ssl_cluster):
    own, _, _ = ssl_cluster
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{own.port}:*:postgres:{own.password}\n")
    pgpass.chmod(0o600)
    host = {k: v for k, v in own.host_vars(pg_sslmode="require").items() if k != "pg_password"}
    root = write_project(tmp_path / "p", yaml.safe_dump([{"name": "pgpass", "hosts": "dev",
                                                          "databases": [{"name": "pgpassdb"}]}]), host)
    env = {"PGPASSFILE": str(pgpass)}  # no pg_password in the inventory, no PGPASSWORD: only the file
    run = erpprov(root, "apply", env=env, mem=None, drop_env=("PGPASSWORD",))
    assert run.returncode == 0, str(run)
    assert_converged(root, env)


def test_password_from_dotenv_and_environment(tmp_path, pg):
    role = unique("envrole")
    root = write_project(tmp_path, yaml.safe_dump([{"name": "env", "hosts": "dev", "roles": [
        {"name": role, "login": True, "password": "{{ env.APP_PW }}"}]}]), server_vars(pg),
        env_file=f"RELIABILITY_PG_PASSWORD='{pg.password}'\n")
    run = erpprov(root, "apply", env={"APP_PW": "from-the-environment"}, mem=None)  # admin password: .env
    assert run.returncode == 0, str(run)
    assert "from-the-environment" not in run.stdout + run.stderr and pg.password not in run.stdout + run.stderr
    assert_converged(root, {"APP_PW": "from-the-environment"})
    # the role's password is the environment's: it logs in with it
    with psycopg.connect(host=pg.host, port=pg.port, user=role, password="from-the-environment",
                         dbname="postgres") as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)


def test_password_from_a_vars_file_outside_the_repository(tmp_path, pg):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "pg.yaml").write_text(yaml.safe_dump({"admin_pw": pg.password}))
    host = {**server_vars(pg), "pg_password": "{{ admin_pw }}"}
    play = [{"name": "vf", "hosts": "dev", "vars_files": [str(secrets / "pg.yaml")],
             "databases": [{"name": f"{pg.dbname}_vf"}]}]
    root = write_project(tmp_path / "repo", yaml.safe_dump(play), host)
    assert erpprov(root, "apply", mem=None).returncode == 0
    assert_converged(root)


def test_password_from_a_plain_secret_file(tmp_path, pg):
    secret = tmp_path / "pg_password"
    secret.write_text(pg.password + "\n")
    host = {**server_vars(pg), "pg_password": "{{ lookup('file', '" + str(secret) + "') | trim }}"}
    root = write_project(tmp_path / "repo", yaml.safe_dump([{"name": "sf", "hosts": "dev"}]), host)
    run = erpprov(root, "plan", mem=None)
    assert run.returncode == 0, str(run)


# --- file modes ----------------------------------------------------------------------------------

def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_erpprov_writes_are_private_even_with_umask_0(tmp_path, pg):
    root = write_project(tmp_path, yaml.safe_dump([{
        "name": "files", "hosts": "dev", "databases": [{"name": f"{pg.dbname}_f"}],
        "templates": [{"src": "app.env.j2", "dest": "out/app.env"}]}]), server_vars(pg))
    (root / "templates").mkdir()
    (root / "templates" / "app.env.j2").write_text("DATABASE_URL=postgres://postgres:{{ pg_password }}@x/db\n")
    env = pg_env(pg)
    assert erpprov(root, "plan", "-o", "plan.json", env=env, mem=None, umask=0).returncode == 0
    assert _mode(root / "plan.json") == 0o600
    assert pg.password not in (root / "plan.json").read_text()
    assert erpprov(root, "apply", env=env, mem=None, umask=0).returncode == 0
    assert _mode(root / "out" / "app.env") == 0o600
    backup = erpprov(root, "backup", "-o", "backups/db.sql", env=env, mem=None, umask=0, timeout=120)
    assert backup.returncode == 0, str(backup)
    assert _mode(root / "backups" / "db.sql") == 0o600
    assert _mode(root / "backups") == 0o700
    assert_converged(root, env)
