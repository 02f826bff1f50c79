"""The benchmark's own throwaway PostgreSQL: an embedded cluster on a free loopback port in a
temporary directory, stopped and removed at the end even on failure."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from bench.workload import DATABASE, ROLE_PREFIX
from erpprov.drivers.embedded import LocalCluster, free_port

HOST = "127.0.0.1"
USER = "postgres"

# One logged entry per query message the server receives (simple or extended protocol).
_STATEMENT = re.compile(r"LOG:  (statement|execute [^:]*): ")
_CONNECTION = re.compile(r"LOG:  connection authorized: ")


@dataclass
class Server:
    cluster: LocalCluster
    password: str

    @property
    def host(self) -> str:
        return self.cluster.host

    @property
    def port(self) -> int:
        return self.cluster.port

    @property
    def bindir(self) -> Path:
        assert self.cluster.bindir is not None
        return self.cluster.bindir

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(host=self.host, port=self.port, user=USER, password=self.password, dbname=dbname,
                               autocommit=True)

    def env(self) -> dict[str, str]:
        """Environment for libpq clients (psql, pg_dump)."""
        return {**os.environ, "PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": USER,
                "PGPASSWORD": self.password, "PGDATABASE": "postgres"}

    def version(self) -> str:
        with self.connect() as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0])

    # --- the workload's objects ----------------------------------------------------------------

    def reset(self, databases: Sequence[str] = (DATABASE,)) -> None:
        """Drop the benchmark databases and roles: the empty state a first apply starts from."""
        with self.connect() as conn:
            for database in databases:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            roles = [r for (r,) in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s",
                                                (ROLE_PREFIX + "%",))]
            for role in roles:
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
            conn.execute("CHECKPOINT")

    def summary(self) -> dict[str, object]:
        """What the workload created, read from the catalogs, for comparing two tools' results."""
        with self.connect() as conn:
            roles = sorted(conn.execute(
                "SELECT rolname, rolcanlogin, rolpassword LIKE 'SCRAM-SHA-256$%%' FROM pg_authid "
                "WHERE rolname LIKE %s", (ROLE_PREFIX + "%",)).fetchall())
            datacl = conn.execute("SELECT datacl::text[] FROM pg_database WHERE datname = %s",
                                  (DATABASE,)).fetchone()
        if datacl is None:
            return {"roles": roles, "database": None}
        with self.connect(DATABASE) as conn:
            columns = sorted(conn.execute("""
                SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                       pg_get_expr(d.adbin, d.adrelid)
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
                WHERE n.nspname = 'public' AND c.relkind = 'r'""").fetchall())
            constraints = sorted(conn.execute("""
                SELECT c.relname, con.conname, con.contype, pg_get_constraintdef(con.oid)
                FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'""").fetchall())
            indexes = sorted(conn.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'").fetchall())
            acls = sorted(conn.execute("""
                SELECT c.relname, c.relkind, coalesce(c.relacl::text[], '{}'), pg_get_userbyid(c.relowner)
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S')""").fetchall())
        return {"roles": roles, "database": sorted(datacl[0] or []), "columns": columns,
                "constraints": constraints, "indexes": indexes, "acls": acls}

    # --- counting what clients send -----------------------------------------------------------

    def log_statements(self, on: bool) -> None:
        """log_statement = 'all' and log_connections (ALTER SYSTEM + reload), or back to the defaults."""
        with self.connect() as conn:
            if on:
                conn.execute("ALTER SYSTEM SET log_statement = 'all'")
                conn.execute("ALTER SYSTEM SET log_connections = on")
            else:
                conn.execute("ALTER SYSTEM RESET log_statement")
                conn.execute("ALTER SYSTEM RESET log_connections")
            conn.execute("SELECT pg_reload_conf()")
            # The reload is asynchronous: wait until a new session sees the setting.
            want = "all" if on else "none"
            for _ in range(100):
                with self.connect() as probe:
                    if probe.execute("SHOW log_statement").fetchone()[0] == want:
                        return
                import time

                time.sleep(0.05)
            raise RuntimeError("the server did not pick up log_statement")

    def log_size(self) -> int:
        try:
            return self.cluster.log_file.stat().st_size
        except OSError:
            return 0

    def count_since(self, offset: int) -> tuple[int, int]:
        """(statements, connections) logged since `offset` of the server log."""
        with open(self.cluster.log_file, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", errors="replace")
        return len(_STATEMENT.findall(text)), len(_CONNECTION.findall(text))


@contextmanager
def throwaway_server(*, durable: bool = True) -> Iterator[Server]:
    """``durable=False`` skips initdb's fsyncs: for the fleet, whose figures are not the disk's."""
    base = Path(tempfile.mkdtemp(prefix="erpprov-bench-"))
    os.chmod(base, 0o755)  # as root the server runs as another account that must reach its data dir
    cluster = LocalCluster(base / "data", free_port(HOST), host=HOST, superuser=USER)
    password = secrets.token_urlsafe(16)
    try:
        cluster.init(password, durable=durable)
        cluster.start()
        yield Server(cluster, password)
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)
