"""`erpprov diff A B` between two real clusters: the session's (A) and a second throwaway one (B)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from psycopg import sql

from erpprov.drivers.embedded import LocalCluster
from tests.conftest import SUPERUSER_PASSWORD, Server, local_cluster
from tests.helpers import assert_clean_error, erpprov

SECRET = "drift-test-secret"


@pytest.fixture(scope="module")
def cluster_b() -> Iterator[LocalCluster]:
    with local_cluster(SUPERUSER_PASSWORD) as cluster:
        yield cluster


@pytest.fixture
def b(cluster_b: LocalCluster, pg: Server) -> Iterator[Server]:
    """Server B, holding a database of the same name as A's (`pg`), emptied afterwards."""
    server = Server(cluster_b.host, cluster_b.port, "postgres", SUPERUSER_PASSWORD, pg.dbname)
    with server.connect("postgres") as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(pg.dbname)))
    try:
        yield server
    finally:
        with server.connect("postgres") as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(pg.dbname)))
            admin.execute("DROP ROLE IF EXISTS app")


def _url(server: Server, password: str | None = None) -> str:
    login = f"{server.user}:{password}" if password else server.user
    return f"postgresql://{login}@{server.host}:{server.port}/postgres"


def _both(a: Server, b: Server, statement: str) -> None:
    for server in (a, b):
        with server.connect() as conn:
            conn.execute(statement)


def test_b_is_planned_to_look_like_a_and_passwords_are_compared_by_verifier(tmp_path: Path, pg: Server,
                                                                            b: Server) -> None:
    with pg.connect() as conn:
        conn.execute(f"CREATE ROLE app LOGIN PASSWORD '{SECRET}'")
        conn.execute("CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL)")
        conn.execute("GRANT SELECT ON customers TO app")
    with b.connect() as conn:
        conn.execute("CREATE TABLE customers (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE scratch (id int)")
    env = {"PGPASSWORD": SUPERUSER_PASSWORD}
    # A's password in its URL, B's from PGPASSWORD: neither may show anywhere.
    args = ("diff", _url(pg, SUPERUSER_PASSWORD), _url(b), "--db", pg.dbname, "--detailed-exitcode", "--sql")
    run = erpprov(tmp_path, *args, env=env)
    assert run.returncode == 2, str(run)
    assert "+ role.app" in run.stdout and f"+ column.{pg.dbname}.public.customers.email" in run.stdout
    assert f"table.{pg.dbname}.public.scratch" in run.stdout.split("Unmanaged")[1], "B's extra table is listed"
    assert SUPERUSER_PASSWORD not in run.stdout + run.stderr

    with b.connect() as conn:  # B now like A, the password set there on its own
        conn.execute(f"CREATE ROLE app LOGIN PASSWORD '{SECRET}'")
        conn.execute("ALTER TABLE customers ADD COLUMN email text NOT NULL")
        conn.execute("GRANT SELECT ON customers TO app")
        conn.execute("DROP TABLE scratch")
    run = erpprov(tmp_path, *args, env=env)
    assert run.returncode == 2, str(run)
    assert "~ role.app" in run.stdout and "verifiers differ" in run.stdout, str(run)
    assert 'password: "(sensitive)" → "(sensitive, differs)"' in run.stdout
    with pg.connect() as conn:
        verifier = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'").fetchone()[0]
    assert verifier not in run.stdout and verifier.split("$")[2] not in run.stdout and SECRET not in run.stdout

    with b.connect() as conn:  # the same verifier: the same password, provably
        conn.execute(sql.SQL("ALTER ROLE app PASSWORD {}").format(sql.Literal(verifier)))
    run = erpprov(tmp_path, *args, env=env)
    assert run.returncode == 0, str(run)
    assert "No changes" in run.stdout


def test_inventory_hosts_as_json_and_a_side_that_hides_passwords(tmp_path: Path, pg: Server,
                                                                          b: Server) -> None:
    _both(pg, b, "CREATE TABLE customers (id int PRIMARY KEY)")
    with pg.connect() as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers)")
    with b.connect("postgres") as admin:
        admin.execute("CREATE ROLE app LOGIN CREATEDB PASSWORD 'reader-secret'")
        admin.execute(sql.SQL("GRANT pg_read_all_data TO app"))
    hosts = {"production": {"pg_port": pg.port, "pg_password": "{{ env.PROD_PASSWORD }}"},
             "staging": {"pg_port": b.port, "pg_user": "app", "pg_password": "{{ env.STAGING_PASSWORD }}"}}
    common = {"driver": "external", "pg_host": pg.host, "pg_user": "postgres"}
    inventory = {"all": {"vars": common, "hosts": hosts}}
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    env = {"PROD_PASSWORD": SUPERUSER_PASSWORD, "STAGING_PASSWORD": "reader-secret"}
    run = erpprov(tmp_path, "diff", "production", "staging", "--db", pg.dbname, "--format", "json", env=env)
    assert run.returncode == 0, str(run)
    document = json.loads(run.stdout)
    (host,) = document["hosts"]
    assert host["host"] == "staging"
    assert f"table.{pg.dbname}.public.orders" in [a["address"] for a in host["actions"]]
    assert any("passwords not compared" in w and "staging" in w for w in host["warnings"]), host["warnings"]
    assert "reader-secret" not in run.stdout


def test_an_unknown_host_names_both_ways(tmp_path: Path, pg: Server) -> None:
    pg.inventory(tmp_path)
    assert_clean_error(erpprov(tmp_path, "diff", "localhost", "nowhere"), "nowhere", "localhost",
                       "postgresql://")


