"""Shared fixtures: a real, throwaway PostgreSQL cluster for the whole session, and a clean
database (with cluster-wide objects cleaned up afterwards) for each test that asks for one."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from erpprov.drivers.embedded import LocalCluster, free_port
from tests.helpers import reachable_tempdir, server_vars, write_inventory

pytest_plugins = ["tests.dockerenv"]  # the engine and test-image fixtures

SUPERUSER_PASSWORD = "test-superuser-secret"

# No command a test runs starts a resident of its own in the user's runtime directory (one would
# outlive the tests); tests/test_resident.py asks for residents in directories of its own.
os.environ["ERPPROV_RESIDENT"] = "off"


@dataclass
class Server:
    host: str
    port: int
    user: str
    password: str
    dbname: str

    def connect(self, dbname: str | None = None, **kwargs: object) -> psycopg.Connection:
        return psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                               dbname=dbname or self.dbname, autocommit=True, **kwargs)

    def inventory(self, tmp: Path, **host_vars: object) -> Path:
        """An inventory whose only host, `localhost` in group `dev`, is this server."""
        return write_inventory(tmp, {**server_vars(self, password_from_env=False), **host_vars})


@pytest.fixture(scope="session", autouse=True)
def parse_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The parse cache of every test, and of every CLI run a test starts, in a directory of the
    session's own: never the user's."""
    home = tmp_path_factory.mktemp("cache-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(home))
        yield home


@pytest.fixture
def server_tmp() -> Iterator[Path]:
    base = reachable_tempdir()
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def local_cluster(password: str, settings: str = "") -> Iterator[LocalCluster]:
    """A throwaway cluster on a free loopback port, superuser `postgres` with ``password``;
    ``settings`` (postgresql.conf lines) is appended to its configuration before it starts."""
    base = reachable_tempdir()
    # ERPPROV_TEST_BINDIR: another server version's binaries (.ci/run runs the schema tests on 16 too)
    bindir = os.environ.get("ERPPROV_TEST_BINDIR")
    cluster = LocalCluster(base / "data", free_port(), bindir=Path(bindir) if bindir else None)
    try:
        cluster.init(password, durable=False)
        if settings:
            with open(cluster.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.write(settings)
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[LocalCluster]:
    with local_cluster(SUPERUSER_PASSWORD) as cluster:
        yield cluster


CONTRIB = ("citext", "btree_gist")


@pytest.fixture(scope="session")
def contrib_available(pg_cluster: LocalCluster) -> bool:
    with psycopg.connect(host=pg_cluster.host, port=pg_cluster.port, user="postgres", password=SUPERUSER_PASSWORD,
                         dbname="postgres") as conn:
        found = conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = ANY(%s)",
                             [list(CONTRIB)]).fetchone()
    return bool(found and found[0] == len(CONTRIB))


@pytest.fixture(autouse=True)
def _contrib(request: pytest.FixtureRequest) -> None:
    """Tests marked `contrib` need the server's contrib extensions. The system's PostgreSQL has them
    (a missing one fails the test); only another server's binaries (ERPPROV_TEST_BINDIR) may lack them."""
    if request.node.get_closest_marker("contrib") is None:
        return
    if not request.getfixturevalue("contrib_available") and os.environ.get("ERPPROV_TEST_BINDIR"):
        pytest.skip(f"this server has no {' / '.join(CONTRIB)} (contrib)")


def _names(conn: psycopg.Connection, query: str) -> set[str]:
    return {row[0] for row in conn.execute(query)}


@pytest.fixture
def pg(pg_cluster: LocalCluster) -> Iterator[Server]:
    """A fresh database on the session's cluster; databases and roles the test creates are dropped."""
    server = Server(pg_cluster.host, pg_cluster.port, "postgres", SUPERUSER_PASSWORD, f"t_{uuid.uuid4().hex[:12]}")
    with server.connect("postgres") as admin:
        roles_before = _names(admin, "SELECT rolname FROM pg_roles")
        dbs_before = _names(admin, "SELECT datname FROM pg_database")
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(server.dbname)))
    try:
        yield server
    finally:
        with server.connect("postgres") as admin:
            for db in _names(admin, "SELECT datname FROM pg_database") - dbs_before:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
            for role in _names(admin, "SELECT rolname FROM pg_roles") - roles_before:
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
