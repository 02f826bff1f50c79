"""The documentation of the connection options every module of the collection takes (erpprov's
pg_* host variables); module_utils/erpprov.py holds their argument spec."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  driver:
    description: Where the server runs (erpprov's C(driver) host variable); C(auto) needs no server
      management when the state has no C(container).
    type: str
    choices: [auto, docker, local, external]
  pg_host:
    description: Server address.
    type: str
  pg_port:
    description: Server port.
    type: int
  pg_user:
    description: Role erpprov connects as.
    type: str
  pg_password:
    description: Its password. Never shown.
    type: str
  pg_database:
    description: Database for cluster-wide work.
    type: str
  pg_sslmode:
    description: libpq sslmode.
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  pg_sslrootcert:
    description: CA certificate file.
    type: path
  pg_sslcert:
    description: Client certificate file.
    type: path
  pg_sslkey:
    description: Client key file.
    type: path
  pg_connect_timeout:
    description: Seconds to wait for a connection.
    type: float
  pg_lock_timeout:
    description: Seconds to wait for a table lock.
    type: float
  pg_statement_timeout:
    description: Seconds one statement may run.
    type: float
  docker_host:
    description: As DOCKER_HOST, for the docker driver.
    type: str
"""
