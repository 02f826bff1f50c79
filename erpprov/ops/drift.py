"""`erpprov diff A B`: the plan that would make server B look like server A ("is staging still
like production?").

A is read as `export` reads it and taken as the desired state; B is planned against it exactly as
`plan` plans files against a server, with B as an external server (its container, if any, is not
A's business). So the renderers, the exit codes and what counts as unmanaged are `plan`'s.

Passwords: the export writes none, so the plan leaves them alone, and then they are compared by
their stored verifiers when both servers let us read them (pg_authid: superusers only). A SCRAM
verifier holds a random salt, so equal verifiers prove equal passwords, while different ones
mean a different password or the same one set separately; the plan says which it cannot tell.
Neither verifier is ever shown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr

from erpprov.core import model
from erpprov.core.actions import SENSITIVE, Action, HostPlan, Op, Phase
from erpprov.core.address import Address
from erpprov.core.target import Target
from erpprov.drivers.external import ExternalDriver
from erpprov.errors import ErpprovError
from erpprov.ops.export import export_playbook
from erpprov.plan.build import plan_target
from erpprov.postgres.connect import connect, connection_kept
from erpprov.state import catalog

DIFFERS = f"{SENSITIVE[:-1]}, differs)"


@dataclass(frozen=True)
class Server:
    """One side of the comparison: how it is named in the output, and how to reach it."""

    name: str
    connection: model.Connection


def server_from_url(url: str) -> Server:
    """A server given as a libpq URL or key=value string. Its password may come from the URL,
    PGPASSWORD or ~/.pgpass; the name shown is host:port, never the URL (it may hold a password)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ErpprovError("not a connection URL or key=value string",
                           hint="postgresql://USER@HOST:PORT/DB, or an inventory host's name") from exc
    fields: dict[str, Any] = {"driver": "external"}
    for key, field in (("host", "pg_host"), ("port", "pg_port"), ("user", "pg_user"), ("dbname", "pg_database"),
                       ("sslmode", "pg_sslmode"), ("sslrootcert", "pg_sslrootcert")):
        if params.get(key):
            fields[field] = params[key]
    if params.get("password"):
        fields["pg_password"] = SecretStr(str(params["password"]))
    connection = model.Connection.model_validate(fields)
    return Server(f"{connection.pg_host}:{connection.pg_port}", connection)


def desired_from(source: Server, databases: list[str] | None) -> model.Play:
    """Server A as a play: what `export` writes, without the password placeholders (passwords
    are compared apart, see the module docstring)."""
    with connection_kept(source.connection), connect(source.connection) as admin:
        exported = export_playbook(admin, source.connection, databases=databases, hosts=source.name,
                                   name=f"as on {source.name}", templated=False)[0]
    for role in exported.get("roles", []):
        role.pop("password", None)
        role.pop("update_password", None)
    return model.Play.model_validate(exported)


def drift(source: Server, subject: Server, databases: list[str] | None,
          project_dir: Path) -> tuple[HostPlan, model.Play]:
    """The plan that would make ``subject`` (B) look like ``source`` (A), and A as a play."""
    play = desired_from(source, databases)
    connection = subject.connection.model_copy(update={"driver": "external"})
    target = Target(host=subject.name, play=play, connection=connection, project_dir=project_dir, variables={})
    plan = plan_target(target, driver=ExternalDriver(target), fingerprinted=False)
    plan.actions, warning = _password_actions(plan.actions, source, subject, {r.name for r in play.roles})
    if warning:
        plan.warnings.append(warning)
    return plan, play


def _verifiers(server: Server) -> dict[str, str | None] | None:
    with connection_kept(server.connection), connect(server.connection) as admin:
        return catalog.read_cluster(admin).passwords


def _password_actions(actions: list[Action], source: Server, subject: Server,
                      roles: set[str]) -> tuple[list[Action], str | None]:
    wanted, have = _verifiers(source), _verifiers(subject)
    if wanted is None or have is None:
        unreadable = " and ".join(s.name for s, v in ((source, wanted), (subject, have)) if v is None)
        return actions, f"passwords not compared: only a superuser may read their verifiers on {unreadable}"
    differing = sorted(r for r in roles if r in have and wanted.get(r) != have.get(r))
    note = ("the stored password verifiers differ: a different password, or the same one set separately "
            "(each verifier has its own random salt)")
    by_address = {a.address: i for i, a in enumerate(actions)}
    result = list(actions)
    for role in differing:
        address = Address("role", role)
        if address in by_address:
            old = result[by_address[address]]
            result[by_address[address]] = replace(
                old, before={**(old.before or {}), "password": SENSITIVE},
                after={**(old.after or {}), "password": DIFFERS}, note="; ".join(n for n in (old.note, note) if n))
        else:
            result.append(Action(address, Op.UPDATE, Phase.ROLE, before={"password": SENSITIVE},
                                 after={"password": DIFFERS}, note=note))
    return result, None
