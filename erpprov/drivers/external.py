"""A server managed elsewhere (staging, a managed service): only the SQL side is erpprov's."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

from erpprov.cluster import find_bindir
from erpprov.drivers.base import Driver, DriverStatus, Progress
from erpprov.errors import ErpprovError
from erpprov.loader import Target
from erpprov.model import Connection
from erpprov.plan import Action


class ExternalDriver(Driver):
    name = "external"

    @property
    def address(self) -> str | None:
        return None

    def plan(self) -> list[Action]:
        return []

    def ensure(self, progress: Progress) -> None:
        return None

    def status(self) -> DriverStatus:
        return DriverStatus(self.name, exists=True, running=True, healthy=True, detail="managed elsewhere")

    def logs(self, tail: int, follow: bool) -> Iterator[str]:
        raise ErpprovError("the external driver has no logs to show", hint="read them where the server is managed")

    def destroy(self, volumes: bool, progress: Progress) -> None:
        raise ErpprovError(f"host {self.target.host} uses the external driver; erpprov does not destroy it")


def client_env(conn: Connection) -> dict[str, str]:
    """libpq environment for client programs, so the password never appears on a command line."""
    env = {**os.environ, "PGHOST": conn.pg_host, "PGPORT": str(conn.pg_port), "PGUSER": conn.pg_user,
           "PGDATABASE": conn.pg_database}
    if conn.pg_password is not None:
        env["PGPASSWORD"] = conn.pg_password.get_secret_value()
    if conn.pg_sslmode:
        env["PGSSLMODE"] = conn.pg_sslmode
    # The same TLS files as erpprov's own connections (conninfo): without them psql/pg_dump could
    # not verify the server, nor present the client certificate a `cert` server asks for.
    for key in ("sslrootcert", "sslcert", "sslkey"):
        value = getattr(conn, f"pg_{key}")
        if value is not None:
            env[f"PG{key.upper()}"] = value
    return env


def _client_program(argv: list[str]) -> list[str]:
    program = find_bindir() / argv[0]
    if not program.exists():
        raise ErpprovError(f"{argv[0]} is not installed", hint="install the PostgreSQL client programs")
    return [str(program), *argv[1:]]


def run_client(target: Target, argv: list[str]) -> int:
    """Run psql/pg_dump/... from the local PostgreSQL binaries against the target's server."""
    return subprocess.call(_client_program(argv), env=client_env(target.connection))


def start_client(target: Target, argv: list[str]) -> subprocess.Popen[bytes]:
    """As run_client, but started with binary pipes for streaming (backup, restore)."""
    return subprocess.Popen(_client_program(argv), env=client_env(target.connection), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
