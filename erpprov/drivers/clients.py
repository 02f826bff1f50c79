"""PostgreSQL client programs (psql, pg_dump, pg_restore) from the local binaries, run against a
target's server with every connection setting in their environment. Every driver starts them
through here (docker's own exec path aside)."""

from __future__ import annotations

import os
import subprocess

from erpprov.core.model import Connection
from erpprov.core.target import Target
from erpprov.drivers.embedded import find_bindir
from erpprov.errors import ErpprovError

# libpq's environment variable for each connection parameter the library sets (connect.conninfo)
_LIBPQ_ENV = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "dbname": "PGDATABASE", "password": "PGPASSWORD",
              "connect_timeout": "PGCONNECT_TIMEOUT", "application_name": "PGAPPNAME", "sslmode": "PGSSLMODE",
              "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
              "client_encoding": "PGCLIENTENCODING", "options": "PGOPTIONS"}


def client_env(conn: Connection) -> dict[str, str]:
    """libpq environment for client programs: every setting erpprov's own connections use (TLS
    verification included), in the environment so the password never appears on a command line."""
    from erpprov.postgres.connect import conninfo

    params = conninfo(conn, application_name="erpprov-client")
    return {**os.environ, **{_LIBPQ_ENV[key]: str(value) for key, value in params.items()}}


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
