"""Stage 4, plan: for one target (a play on a host), read the live state, canonicalize the
desired one, diff them, and gather the actions into a HostPlan. Changes nothing on the server
but rolled-back scratch builds (docs/design.md).

    inspect (catalogs, docker) ─┐
    desired (model)  ───────────┴─► diff (pure) ─► HostPlan
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from contextlib import nullcontext
from dataclasses import replace

import psycopg
from pydantic import SecretStr

from erpprov.core import model
from erpprov.core.actions import Action, HostPlan, Op
from erpprov.core.address import Address
from erpprov.core.cluster import LiveCluster, LiveDatabase, Privileges
from erpprov.core.schema_objects import LiveObject
from erpprov.core.seed import RowDigests
from erpprov.core.tables import TableDiff, TablesState
from erpprov.core.target import Target
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
from erpprov.diff.data import diff_data
from erpprov.diff.function_users import live_key, retriggered, take_callers_along
from erpprov.diff.functions import diff_functions, same_types
from erpprov.diff.renamed_grants import after_renames, as_recreated
from erpprov.diff.role_references import unknown_roles
from erpprov.diff.schema_objects import (
    managed_addresses,
    prune_in_use,
    prune_objects,
    refuse_reading_dropped,
    unmanaged_objects,
)
from erpprov.diff.scripts import diff_scripts
from erpprov.diff.sequences import diff_sequences
from erpprov.diff.tables import diff_tables
from erpprov.diff.tables.repartition import as_new, rebuilt_columns, rebuilt_tables, refuse_lost_triggers
from erpprov.diff.triggers import desired_trigger, diff_triggers, on_renamed_tables
from erpprov.diff.type_users import take_type_users_along
from erpprov.diff.types import diff_composites, diff_domains, diff_types
from erpprov.diff.views import Uses, diff_views
from erpprov.drivers import make_driver
from erpprov.drivers.base import Driver
from erpprov.errors import ErpprovError
from erpprov.files.templates import plan_templates
from erpprov.load.taint import known_secrets, redact, redact_actions
from erpprov.postgres.connect import connect, connect_preferring, connection_kept, one_value
from erpprov.postgres.scram import matching_passwords_started
from erpprov.state import catalog
from erpprov.state.canon import canonicalize, extension_prelude, refuse_bad_prelude
from erpprov.state.data_compare import compare_data
from erpprov.state.function_canon import (
    canonical_functions,
    check_unbuilt,
    declared_signatures,
    function_prelude,
)
from erpprov.state.matview_indexes import desired_indexes, with_live_indexes
from erpprov.state.prune_users import read_prune_users
from erpprov.state.schema_catalog import domain_calls_prelude, read_schema_objects, read_type_users, scratch_prelude
from erpprov.state.scratch import canonicalize_in_scratch_database
from erpprov.state.script_journal import read_journal
from erpprov.state.snapshot import Snapshot
from erpprov.state.table_catalog import inspect_tables, with_row_signal
from erpprov.state.trigger_canon import canonical_conditions
from erpprov.state.type_canon import canonical_types
from erpprov.state.view_canon import canonical_views


def plan_target(target: Target, *, driver: Driver | None = None, wait: float = 0.0,
                fingerprinted: bool = True) -> HostPlan:
    """Everything that differs between the files and the live host. Changes nothing.

    ``fingerprinted=False`` skips the digest of the live state, which only saved and JSON plans
    carry (at a thousand tables it costs more than reading them)."""
    driver = driver or make_driver(target)
    container_actions = driver.plan()
    files, file_warnings = plan_templates(target)
    host_plan = HostPlan(host=target.host, driver=driver.name, actions=container_actions + files,
                         warnings=file_warnings)
    if container_actions:
        # No server to read yet: its contents are planned once it runs (`plan --offline` shows them).
        state = "does not exist" if any(a.op is Op.CREATE for a in container_actions) else "is not running"
        host_plan.warnings.append(f"the server {state} yet; its contents are planned when apply has started it "
                                  "(`erpprov plan --offline` shows what the files create)")
        return _shown(host_plan, target)
    first = target.play.databases[0].name if target.play.databases else None
    with connection_kept(target.connection), connect_preferring(target.connection, first, wait=wait) as admin:
        result, snapshot = plan_sql(target, admin)
    host_plan.actions.extend(result.actions)
    host_plan.unmanaged.extend(result.unmanaged)
    host_plan.warnings.extend(result.warnings)
    if fingerprinted:
        host_plan.fingerprint = snapshot.digest()
    return _shown(host_plan, target)


def _shown(plan: HostPlan, target: Target) -> HostPlan:
    """The plan as printed and saved: nothing rendered from a secret (a comment "{{ pg_password }}")."""
    secrets = known_secrets(target)
    plan.actions = redact_actions(plan.actions, secrets)
    plan.warnings = [redact(w, secrets) for w in plan.warnings]
    return plan


def plan_sql(target: Target, admin: psycopg.Connection, digests: RowDigests | None = None, *,
             applying: bool = False) -> tuple[Result, Snapshot]:
    """``digests``: of the seeded rows, taken or reused (the plans before and after an apply);
    ``applying``: the plan apply makes before it changes anything, which refuses what a plan
    only warns about."""
    play = target.play
    cluster = catalog.read_cluster(admin)
    unknown = unknown_roles(play, cluster, applying=applying)
    snapshot = Snapshot(cluster=cluster)
    canon = Canon(timestamps=catalog.canonical_timestamps(
        admin, sorted({r.valid_until for r in play.roles if r.valid_until})))
    contents = Result()
    # Comparing passwords is PBKDF2, milliseconds per role: it runs while the databases are read
    # and their tables canonicalized, which mostly wait for the server.
    with matching_passwords_started(passwords_to_compare(play, cluster)) as passwords:
        for db in play.databases:
            contents.extend(_plan_database(target, admin, db, cluster, canon, snapshot, digests))
        canon.passwords = passwords()
    result = Result(warnings=[unknown] if unknown else [])
    result.extend(diff_roles(play, cluster, canon, login_role=target.connection.pg_user))
    result.extend(diff_databases(play, cluster))
    result.extend(contents)
    return result, snapshot


def _connect_source(target: Target, db: model.Database, source: str) -> psycopg.Connection:
    """A session of ``source``: the database, or the template a new one will be copied from."""
    try:
        return connect(target.connection, source)
    except ErpprovError as exc:
        if source != db.template:
            raise
        raise ErpprovError(f"database {db.name}: its template {source} cannot be read: {exc.message}",
                           hint="name an existing database that accepts connections as `template`, or leave "
                                "`template` out") from None


def _plan_database(target: Target, admin: psycopg.Connection, db: model.Database, cluster: LiveCluster,
                   canon: Canon, snapshot: Snapshot, digests: RowDigests | None) -> Result:
    # A new database starts as a copy of its template (template0 refuses connections; a fresh
    # template1 holds the same), so that is the state its plan builds on.
    source = db.name
    if db.name not in cluster.databases:
        source = db.template if db.template and db.template != "template0" else "template1"
    # the session the cluster was read through, when it is this database's (plan_target)
    with nullcontext(admin) if admin.info.dbname == source else _connect_source(target, db, source) as conn:
        live = catalog.read_database(conn, db.name)
        # Function signatures are this database's: its own lookup, not added to the shared canon.
        canon = replace(canon, functions=catalog.canonical_functions(conn, function_signatures(db)))
        live_tables = inspect_tables(conn)
        prune = {s.name for s in db.schemas if s.prune}
        if db.prune:
            prune |= set(live.schemas) | {t.schema_ for t in db.tables}
        live_objects = read_schema_objects(conn, dependencies=bool(prune))  # what prune keeps needs them
        if db.materialized_views:  # the indexes of the live ones, declared or kept across a rebuild
            live_objects.views = with_live_indexes(conn, live_objects.views)
        # The types and sequences the file adds exist in the scratch build, so the columns using them canonicalize.
        missing = catalog.unavailable_extensions(conn, [e.name for e in db.extensions if e.state == "present"
                                                        and e.name not in live.extensions])
        if missing:
            raise ErpprovError(f"database {db.name}: the server has no extension {', '.join(missing)} "
                               "(pg_available_extensions)", hint="install the package that provides it on the "
                               "server (e.g. postgresql-contrib), or remove it from the file")
        prelude = [*extension_prelude(db, live.extensions), *scratch_prelude(db, live_objects)]
        views: list[model.View | model.MaterializedView] = [*db.views, *db.materialized_views]
        functions: list[model.Function | model.Procedure] = [*db.functions, *db.procedures]
        may_build = bool((db.tables or views or functions or db.triggers or db.types)
                         and one_value(conn, "SELECT has_database_privilege(current_database(), 'CREATE')"))
        if may_build:
            refuse_bad_prelude(conn, prelude)
        desired_functions = canonical_functions(conn, functions) if may_build else {}
        over_new_types = check_unbuilt(conn, functions, desired_functions, prelude) if may_build else set()
        # defaults, checks and domains may call the functions this apply creates, which may take or
        # return its types: their stand-ins follow the types, a domain's default and checks follow them
        prelude += function_prelude(functions, desired_functions.keys() | over_new_types,
                                    live_objects.functions.values())
        domain_calls = domain_calls_prelude(db, live_objects)
        prelude += domain_calls
        if may_build and domain_calls:
            refuse_bad_prelude(conn, prelude)
        unresolved = [s for s, found in canon.functions.items() if found is None]
        if unresolved and may_build:  # a grant on a function this apply creates
            canon = replace(canon, functions={**canon.functions, **declared_signatures(conn, unresolved, prelude)})
        if not db.tables or may_build:
            desired_tables = canonicalize(conn, db.tables, live_tables, prelude)
        else:
            desired_tables = canonicalize_in_scratch_database(target, admin, db.tables, live_tables, prelude)
        # Without CREATE here, views are compared as written: a plan shows them until they match.
        desired_views, desired_uses = canonical_views(conn, views, prelude) if may_build else ({}, {})
        composites, domains = canonical_types(conn, db.types, prelude, db.functions) if may_build else ({}, {})
        type_diff = diff_types(db.types, live_objects.enums, db.name)
        type_diff.extend(diff_composites(db.types, composites, live_objects.composites, db.name))
        type_diff.extend(diff_domains(db.types, domains, live_objects.domains, db.name, db.functions))
        if not prune and any(a.op is Op.REPLACE and a.kind == "type" for a in type_diff.actions):
            live_objects.type_users = read_type_users(conn)  # what a type dropped and created again takes along
        triggers = [desired_trigger(t) for t in db.triggers]
        conditions = canonical_conditions(conn, triggers) if may_build else {}
        triggers = [replace(t, when=conditions.get(i, t.when)) for i, t in enumerate(triggers)]
        table_diff, live_tables = diff_read_rows(conn, desired_tables, live_tables, database=db.name,
                                                        prune_schemas=prune)
        found = compare_data(conn, db.name, db.tables, desired_tables, live_tables, digests)
        data = diff_data(found, db.tables, known_secrets(target) if found else ())
        scripts = diff_scripts(db.name, db.scripts, read_journal(conn) if db.scripts else {})
        managed = managed_addresses(db, live_objects) | {
            Address(f.kind, db.name, f.schema, f"{name}({f.identity})") for i, f in desired_functions.items()
            for name in filter(None, (f.name, functions[i].renamed_from))} | {
            Address(g.kind, db.name, g.schema, g.signature) for f in desired_functions.values()
            if (g := same_types(f, live_objects.functions)) is not None}
        pruned = prune_objects(live_objects, db.name, managed, prune)
        dropping = {a.address for a in pruned.actions}
        users = read_prune_users(conn, [*(o for o in live_objects.objects if o.address(db.name) in dropping),
                                        *(LiveObject("table", *a.address.parts[1:]) for a in table_diff.actions
                                          if a.address.kind == "table" and a.op is Op.DELETE)])
    snapshot.databases[db.name] = live
    snapshot.tables[db.name] = live_tables
    snapshot.schema_objects[db.name] = live_objects
    result = Result(actions=table_diff.actions + data, unmanaged=table_diff.unmanaged + unmanaged_objects(
        live_objects, db.name, managed | {a.address for a in pruned.actions}))
    if not may_build and (views or functions or db.triggers or any(t.enum is None for t in db.types)):
        result.warnings.append(
            f"database {db.name}: {target.connection.pg_user} may not create schemas here, so views, functions, "
            "triggers, domains and composite types cannot be built to compare them: they are written as the "
            "files say and shown as changes (grant it CREATE on the database to compare them)")
    result.extend(type_diff)
    result.extend(diff_sequences(db.sequences, live_objects.sequences, db.name))
    function_diff = diff_functions(functions, desired_functions, live_objects.functions, _acl_by("function", live),
                                  db.name)
    function_diff.actions, taken_triggers = take_callers_along(
        function_diff.actions, live_objects.function_users, [(t.schema, t.table, t.name) for t in triggers],
        desired_tables, {(t.schema_, t.name): t.default for t in db.types if t.base_type is not None})
    recreated = frozenset(live_key(a) for a in function_diff.actions if a.op is Op.REPLACE)
    pruned_views = frozenset((a.address.parts[1], a.address.parts[2]) for a in pruned.actions
                             if a.address.kind in ("view", "materialized_view"))
    view_diff = diff_views(views, desired_views, live_objects.views,
                           Uses(live=live_objects.view_uses, desired=desired_uses, calls=live_objects.view_calls,
                                recreated_functions=recreated, pruned=pruned_views, columns=live_objects.view_columns,
                                changed_columns=_changed_columns(table_diff.actions)
                                | rebuilt_columns(desired_tables, live_tables)),
                           _acl_by("table", live), db.name, desired_indexes(views, desired_views))
    result.extend(view_diff)
    result.extend(function_diff)
    # a view the views' own drops already take along is not dropped twice
    taken = {a.address for a in view_diff.actions if a.op is Op.DELETE}
    result.actions += [a for a in pruned.actions if a.address not in taken]
    rebuilt = rebuilt_tables(desired_tables, live_tables)
    refuse_lost_triggers(rebuilt, live_objects.triggers, ((t.schema, t.table, t.name) for t in triggers))
    live_triggers = on_renamed_tables(live_objects.triggers, table_diff.actions)
    trigger_diff = diff_triggers(triggers, {k: t for k, t in live_triggers.items()
                                            if k[:2] not in rebuilt and k not in taken_triggers}, db.name)
    trigger_diff.actions = retriggered(trigger_diff.actions, taken_triggers)
    result.extend(trigger_diff)
    result.extend(scripts)
    result.actions = take_type_users_along(result.actions, live_objects.type_users, db.types,
                                           list(live_objects.domains), db.name, db.functions)
    result.actions = prune_in_use(result.actions, users, db.name, db.types)
    refuse_reading_dropped(desired_uses, [(a.address.parts[1], a.address.parts[2]) for a in table_diff.actions
                                          if a.address.kind == "table" and a.op is Op.DELETE])
    canon = replace(canon, declared_functions={i: (f.schema, f.signature) for i, f in desired_functions.items()})
    kept_tables, kept = as_new(desired_tables, live_tables, live)  # rebuilt tables are new to their grants
    kept = as_recreated(after_renames(kept, result.actions), result.actions)
    try:
        planned = planned_objects(desired_tables, kept_tables)
        planned["table"] |= {(v.schema_, v.name): v.owner for v in views}
        planned["type"] = {(t.schema_, t.name): t.owner for t in db.types}
        planned["function"] = {(f.schema, f.signature): functions[i].owner for i, f in desired_functions.items()}
        planned["sequence"] |= {(s.schema_, s.name): s.owner for s in db.sequences}
        result.extend(diff_database_contents(db, kept, cluster, canon, planned, target.play.roles))
    except GrantTargetMissing as exc:
        raise ErpprovError(str(exc), hint="declare the object, or fix the grant's name") from None
    return result


def _changed_columns(actions: list[Action]) -> frozenset[tuple[str, str, str]]:
    """The columns the table diff drops or retypes: the views that read them go and come back."""
    return frozenset((a.address.parts[1], a.address.parts[2], a.address.parts[3]) for a in actions
                     if a.address.kind == "column" and (a.op is Op.DELETE or (
                         a.op is Op.UPDATE and {"type", "collation"} & set(a.after or {}))))


def _acl_by(kind: str, live: LiveDatabase) -> dict[tuple[str, str], dict[str, Privileges]]:
    """Each object of ``kind``'s grantees and privileges (views' among the tables')."""
    acl: dict[tuple[str, str], dict[str, Privileges]] = defaultdict(dict)
    for (ref, grantee), privileges in live.acl.items():
        if ref.kind == kind and ref.schema is not None:
            acl[(ref.schema, ref.name)][grantee] = privileges
    return acl


def planned_objects(desired: TablesState, live: TablesState) -> Planned:
    """Tables, and the sequences that new serial/identity columns will own, with their owners, so
    that grants on "all tables/sequences in schema X" cover them in the same run. (Sequences of
    existing columns are live objects already, under whatever name they have; they are listed
    when their table's owner is declared, which ALTER TABLE ... OWNER TO hands on to them.)"""
    sequences = {}
    for key, table in desired.tables.items():
        existing = live.tables.get(key)
        for column in table.columns:
            if column.sequence and (existing is None or existing.column(column.name) is None):
                sequences[column.sequence] = table.owner
        if existing is not None and table.owner is not None:
            sequences |= {column.sequence: table.owner for column in existing.columns if column.sequence}
    tables = {key: table.owner for key, table in desired.tables.items()}
    # partitions are relations of their own: "all tables in schema X" reaches them too
    tables |= {(p.schema, p.name): table.owner for table in desired.tables.values() for p in table.partitions}
    return {"table": tables, "sequence": sequences}


def plan_offline(target: Target) -> HostPlan:
    """What the files create on an empty instance, for review where no server is reachable.

    Canonical forms still come from PostgreSQL itself: a throwaway embedded cluster stands in for
    the empty instance, so the offline plan is exactly what `apply` would do on a new machine.
    """
    from erpprov.drivers.throwaway import throwaway_cluster

    with throwaway_cluster(target.connection.pg_user) as (cluster, password):
        stand_in = target.connection.model_copy(update={
            "pg_host": cluster.host, "pg_port": cluster.port, "pg_password": SecretStr(password),
            "pg_sslmode": None, "pg_database": "postgres"})
        offline = Target(host=target.host, play=target.play, connection=stand_in,
                         project_dir=target.project_dir, variables=target.variables)
        with connect(stand_in, wait=10) as admin:
            result, _ = plan_sql(offline, admin)
    files, file_warnings = plan_templates(target)
    return _shown(HostPlan(host=target.host, driver="offline", actions=result.actions + files,
                           warnings=result.warnings + file_warnings), target)


def diff_read_rows(conn: psycopg.Connection, desired: TablesState, live: TablesState, *, database: str,
                   prune_schemas: Collection[str] = ()) -> tuple[TableDiff, TablesState]:
    """The diff, and the live state it was made from. Whether a table holds rows shapes only the
    hazards and notes of actions, and reading it costs a relation open per table: a diff without
    actions does not need it; one with actions is made again once it is read."""
    diff = diff_tables(desired, live, database=database, prune_schemas=prune_schemas)
    if diff.actions:
        live = with_row_signal(conn, live, _touchable(desired, live, prune_schemas))
        diff = diff_tables(desired, live, database=database, prune_schemas=prune_schemas)
    return diff, live


def _touchable(desired: TablesState, live: TablesState, prune_schemas: Collection[str]) -> set[tuple[str, str]]:
    """The live tables whose rows an action's hazards can depend on: the declared ones (and those
    they are renamed from), and those a prune may drop. Any other table is left alone."""
    keys = set(desired.tables) | {(t.schema, t.renamed_from) for t in desired.tables.values() if t.renamed_from}
    return keys | {key for key in live.tables if key[0] in prune_schemas}
