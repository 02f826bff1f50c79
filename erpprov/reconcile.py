"""Plan and apply for one target (a play on a host): the pipeline of DESIGN.md.

    inspect (catalogs, docker) ─┐
    desired (model)  ───────────┴─► diff (pure) ─► HostPlan ─► execute ─► re-inspect: must be empty
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg import sql
from pydantic import SecretStr

from erpprov import catalog, model, tables
from erpprov.connect import connect, connection_kept
from erpprov.diff import (
    Canon,
    GrantTargetMissing,
    Planned,
    Result,
    diff_database_contents,
    diff_databases,
    diff_roles,
    function_signatures,
    passwords_to_compare,
)
from erpprov.drivers import make_driver
from erpprov.drivers.base import Driver, Progress
from erpprov.errors import ErpprovError
from erpprov.executor import application_name, apply_lock, execute, session_settings
from erpprov.loader import Target
from erpprov.plan import Action, Hazard, HostPlan, Op, fingerprint, in_order
from erpprov.scram import matching_passwords_started
from erpprov.state import LiveCluster, LiveDatabase
from erpprov.templatefiles import plan_templates, write_templates


@dataclass
class Snapshot:
    """What was read from one server, kept so apply can compare it with what the plan saw."""

    cluster: LiveCluster | None = None
    databases: dict[str, LiveDatabase] = field(default_factory=dict)
    tables: dict[str, object] = field(default_factory=dict)

    def digest(self) -> str:
        redacted = self.cluster.__dict__ | {"passwords": None} if self.cluster else None
        return fingerprint({"cluster": redacted, "databases": self.databases, "tables": self.tables})


def plan_target(target: Target, *, driver: Driver | None = None, wait: float = 0.0,
                fingerprinted: bool = True) -> HostPlan:
    """Everything that differs between the files and the live host. Changes nothing.

    ``fingerprinted=False`` skips the digest of the live state, which only saved and JSON plans
    carry (at a thousand tables it costs more than reading them)."""
    driver = driver or make_driver(target)
    container_actions = driver.plan()
    host_plan = HostPlan(host=target.host, driver=driver.name, actions=container_actions + plan_templates(target))
    if container_actions:
        # No server to read yet: its contents are planned once it runs (`plan --offline` shows them).
        state = "does not exist" if any(a.op is Op.CREATE for a in container_actions) else "is not running"
        host_plan.warnings.append(f"the server {state} yet; its contents are planned when apply has started it "
                                  "(`erpprov plan --offline` shows what the files create)")
        return host_plan
    with connection_kept(target.connection), connect(target.connection, wait=wait) as admin:
        result, snapshot = plan_sql(target, admin)
    host_plan.actions.extend(result.actions)
    host_plan.unmanaged.extend(result.unmanaged)
    host_plan.warnings.extend(result.warnings)
    if fingerprinted:
        host_plan.fingerprint = snapshot.digest()
    return host_plan


def plan_sql(target: Target, admin: psycopg.Connection) -> tuple[Result, Snapshot]:
    play = target.play
    cluster = catalog.read_cluster(admin)
    snapshot = Snapshot(cluster=cluster)
    canon = Canon(timestamps=catalog.canonical_timestamps(
        admin, sorted({r.valid_until for r in play.roles if r.valid_until})))
    contents = Result()
    # Comparing passwords is PBKDF2, milliseconds per role: it runs while the databases are read
    # and their tables canonicalized, which mostly wait for the server.
    with matching_passwords_started(passwords_to_compare(play, cluster)) as passwords:
        for db in play.databases:
            contents.extend(_plan_database(target, admin, db, cluster, canon, snapshot))
        canon.passwords = passwords()
    result = Result()
    result.extend(diff_roles(play, cluster, canon))
    result.extend(diff_databases(play, cluster))
    result.extend(contents)
    return result, snapshot


def _plan_database(target: Target, admin: psycopg.Connection, db: model.Database, cluster: LiveCluster,
                   canon: Canon, snapshot: Snapshot) -> Result:
    # A new database starts as a copy of its template (template0 refuses connections; a fresh
    # template1 holds the same), so that is the state its plan builds on.
    source = db.name
    if db.name not in cluster.databases:
        source = db.template if db.template and db.template != "template0" else "template1"
    with connect(target.connection, source) as conn:
        # Reading a table's definition waits for a lock someone else holds on it: bounded like
        # apply's statements, or one long transaction elsewhere stalls plan and apply for ever.
        session_settings(conn, target.connection)
        live = catalog.read_database(conn, db.name)
        # Function signatures are this database's: its own lookup, not added to the shared canon.
        canon = replace(canon, functions=catalog.canonical_functions(conn, function_signatures(db)))
        live_tables = tables.inspect_tables(conn)
        if not db.tables or conn.execute(
                "SELECT has_database_privilege(current_database(), 'CREATE')").fetchone()[0]:
            desired_tables = tables.canonicalize(conn, db.tables, live_tables)
        else:
            desired_tables = _canonicalize_in_scratch_database(target, admin, db.tables, live_tables)
        prune = {s.name for s in db.schemas if s.prune}
        if db.prune:
            prune |= set(live.schemas) | {t.schema_ for t in db.tables}
        table_diff, live_tables = tables.diff_read_rows(conn, desired_tables, live_tables, database=db.name,
                                                        prune_schemas=prune)
    snapshot.databases[db.name] = live
    snapshot.tables[db.name] = live_tables
    result = Result(actions=table_diff.actions, unmanaged=table_diff.unmanaged)
    try:
        result.extend(diff_database_contents(db, live, cluster, canon, planned_objects(desired_tables, live_tables),
                                             target.play.roles))
    except GrantTargetMissing as exc:
        raise ErpprovError(str(exc), hint="declare the object, or fix the grant's name") from None
    return result


def _canonicalize_in_scratch_database(target: Target, admin: psycopg.Connection, declared: list[model.Table],
                                      live: tables.TablesState) -> tables.TablesState:
    """The scratch build needs CREATE on the database, which an admin of a managed service may
    lack on a template or on someone else's database; a database of its own (CREATEDB) does."""
    name = f"erpprov_scratch_{uuid.uuid4().hex[:12]}"
    try:
        # template0: template1 may be in use (the caller reads it), and CREATE DATABASE needs it idle
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    except psycopg.errors.InsufficientPrivilege:
        raise ErpprovError(
            f"{target.connection.pg_user} may neither create schemas where the tables are planned nor create a "
            "scratch database, so their definitions cannot be checked by the server",
            hint="grant it CREATE on the database, or CREATEDB") from None
    try:
        with connect(target.connection, name) as conn:
            return tables.canonicalize(conn, declared, live)
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def planned_objects(desired: tables.TablesState, live: tables.TablesState) -> Planned:
    """Tables, and the sequences that new serial/identity columns will own, with their owners, so
    that grants on "all tables/sequences in schema X" cover them in the same run. (Sequences of
    existing columns are live objects already, under whatever name they have.)"""
    new_sequences = {}
    for key, table in desired.tables.items():
        existing = live.tables.get(key)
        for column in table.columns:
            if column.sequence and (existing is None or existing.column(column.name) is None):
                new_sequences[column.sequence] = table.owner
    return {"table": {key: table.owner for key, table in desired.tables.items()}, "sequence": new_sequences}


Event = Callable[[str, str], None]  # ("ok" | "changed" | "failed", address)


@dataclass
class ApplyOptions:
    allow_hazards: frozenset[Hazard] = frozenset()
    lock_wait: float = 30.0
    connect_wait: float = 10.0  # how long a server may refuse connections (longer right after a start)
    saved: dict[str, Any] | None = None  # this host's entry of a `plan -o` file
    # Asked, when set, whether hazards not allowed by flags may go ahead (a typed confirmation).
    confirm: Callable[[list[tuple[Action, Hazard]]], bool] | None = None


@dataclass
class ApplyReport:
    host: str
    driver: str
    changed: list[Action] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)  # declared objects that were already right
    warnings: list[str] = field(default_factory=list)


def refused_hazards(actions: list[Action], allowed: frozenset[Hazard]) -> list[tuple[Action, Hazard]]:
    return [(a, h) for a in actions for h in a.hazards if h not in allowed]


def _check_hazards(actions: list[Action], options: ApplyOptions) -> None:
    refused = refused_hazards(actions, options.allow_hazards)
    if refused and options.confirm is not None and options.confirm(refused):
        return
    if refused:
        lines = "\n".join(f"  {a.address} ({h.value}){': ' + a.note if a.note else ''}" for a, h in refused)
        kinds = " ".join(f"--allow-hazard {k}" for k in sorted({h.value for _, h in refused}))
        raise ErpprovError(f"apply refuses {len(refused)} hazardous change(s); nothing was changed:\n{lines}",
                           hint=f"review them with `erpprov plan`, then pass {kinds} (or --allow-destructive)")


def apply_target(target: Target, options: ApplyOptions, event: Event, progress: Progress,
                 driver: Driver | None = None) -> ApplyReport:
    driver = driver or make_driver(target)
    report = ApplyReport(host=target.host, driver=driver.name)
    container_actions = driver.plan()
    _check_hazards(container_actions, options)
    if container_actions:
        driver.ensure(progress)
        for action in container_actions:
            event("changed", action.address)
        report.changed.extend(container_actions)
    wait = options.connect_wait
    if container_actions and target.play.container:
        wait = max(wait, target.play.container.wait_timeout)
    try:
        _apply_sql(target, options, event, report, wait)
        files = plan_templates(target)
        write_templates(target, files)
        for action in files:
            event("changed", action.address)
        report.changed.extend(files)
        changed = {a.address for a in report.changed}
        report.ok = [address for address in declared_addresses(target, driver) if address not in changed]
        for address in report.ok:
            event("ok", address)
    except ErpprovError as exc:
        raise HostFailed(exc, report) from None
    return report


def declared_addresses(target: Target, driver: Driver) -> list[str]:
    """The objects a play declares, by address, for Ansible-style "ok" lines."""
    play = target.play
    addresses = [driver.address] if driver.address else []
    addresses += [f"role.{r.name}" for r in play.roles if r.state == "present"]
    for db in play.databases:
        addresses.append(f"database.{db.name}")
        addresses += [f"schema.{db.name}.{s.name}" for s in db.schemas]
        addresses += [f"extension.{db.name}.{e.name}" for e in db.extensions]
        addresses += [f"table.{db.name}.{t.schema_}.{t.name}" for t in db.tables]
    addresses += [f"file.{f.dest}" for f in play.templates]
    return addresses


class HostFailed(ErpprovError):
    """An apply that failed part-way: the error, plus what had been changed before it."""

    def __init__(self, cause: ErpprovError, report: ApplyReport):
        super().__init__(cause.message, location=cause.location, hint=cause.hint)
        self.report = report


def _apply_sql(target: Target, options: ApplyOptions, event: Event, report: ApplyReport, wait: float) -> None:
    def record(kind: str, action: Action) -> None:
        if kind == "changed":
            report.changed.append(action)
        event(kind, action.address)

    with connection_kept(target.connection), \
            connect(target.connection, wait=wait, application_name=application_name()) as admin:
        session_settings(admin, target.connection)
        with apply_lock(admin, options.lock_wait):
            result, snapshot = plan_sql(target, admin)
            report.warnings = result.warnings
            if options.saved is not None:
                _check_saved(options.saved, result, snapshot)
            _check_hazards(result.actions, options)
            if not result.actions:
                return  # nothing ran, so nothing can have failed to converge
            execute(result.actions, target.connection, admin, record, explain=tables.explain_failure)
            again, _ = plan_sql(target, admin)
    leftover = [a for a in again.actions if not a.repeats]
    if leftover:
        raise ErpprovError(
            "apply did not converge: a fresh plan still shows " + ", ".join(a.address for a in leftover),
            hint="this is a bug in erpprov; please report it with the output of `erpprov plan --sql`")


def _check_saved(saved: dict[str, Any], result: Result, snapshot: Snapshot) -> None:
    host = saved.get("host")
    if saved.get("fingerprint") != snapshot.digest():
        raise ErpprovError(f"host {host}: the live state changed since the plan was saved; nothing was applied",
                           hint="run `erpprov plan -o FILE` again and review the new plan")
    # The server's part of the saved plan: the container and the files are planned again by apply.
    planned = [a for a in saved.get("actions", [])
               if a["address"].split(".")[0] not in ("container", "cluster", "file")]
    if planned != [a.to_json() for a in in_order(result.actions)]:
        raise ErpprovError(f"host {host}: the actions differ from the saved plan; nothing was applied",
                           hint="the playbook or its variables changed; run `erpprov plan -o FILE` again")


def plan_offline(target: Target) -> HostPlan:
    """What the files create on an empty instance, for review where no server is reachable.

    Canonical forms still come from PostgreSQL itself: a throwaway embedded cluster stands in for
    the empty instance, so the offline plan is exactly what `apply` would do on a new machine.
    """
    import secrets
    import shutil
    import tempfile
    from pathlib import Path

    from erpprov.cluster import LocalCluster, free_port

    base = Path(tempfile.mkdtemp(prefix="erpprov-offline-"))
    os.chmod(base, 0o755)  # as root the server runs as another account that must reach its data dir
    password = secrets.token_urlsafe(16)
    cluster = LocalCluster(base / "data", free_port(), superuser=target.connection.pg_user)
    try:
        cluster.init(password, durable=False)
        cluster.start()
        stand_in = target.connection.model_copy(update={
            "pg_host": cluster.host, "pg_port": cluster.port, "pg_password": SecretStr(password),
            "pg_sslmode": None, "pg_database": "postgres"})
        offline = Target(host=target.host, play=target.play, connection=stand_in,
                         project_dir=target.project_dir, variables=target.variables)
        with connect(stand_in, wait=10) as admin:
            result, _ = plan_sql(offline, admin)
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)
    return HostPlan(host=target.host, driver="offline", actions=result.actions + plan_templates(target),
                    warnings=result.warnings)
