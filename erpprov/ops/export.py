"""Export: the live server as a playbook (issue #7).

The live state is read with the same readers the reconciler uses (`catalog.read_cluster`,
`catalog.read_database`, `tables.inspect_tables`), so a playbook exported from a server plans
empty against that same server. Values are written in the text PostgreSQL prints for them
(format_type, pg_get_expr, ...), which the reconciler canonicalizes back to itself.

What is left out on purpose:
- passwords: a login role gets a `{{ env.<ROLE>_PASSWORD }}` placeholder with `update_password:
  on_create`, so applying the export never resets a live password;
- ACL entries equal to what a NULL ACL stands for (`implicit_acl`), i.e. what PostgreSQL gives a
  new object anyway;
- the schema objects erpprov cannot write yet (range types, aggregates, rules, functions with a
  BEGIN ATOMIC body..., read by `state.schema_catalog`): never silently, each is listed in
  `Exported.left_out`, which the CLI prints on stderr and at the top of the file. Grants on sequences (and functions an
  extension makes) are exported in their schema's grants, grants on tables, views, types and the
  functions the file declares on the object;
- what cannot be created on a server without a left-out object (`core.left_out`): a grant on it
  (a range type's multirange's too), a view calling or reading it, a function whose argument
  default calls it or that takes it, a trigger on it or calling it. Listed too, each saying which.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import psycopg

from erpprov.core import model
from erpprov.core.cluster import (
    PUBLIC,
    LiveCluster,
    LiveDatabase,
    Member,
    ObjectRef,
    Privileges,
    RoleState,
    attributes_beyond_defaults,
)
from erpprov.core.fragments import index_entry, index_ordering
from erpprov.core.left_out import dependents
from erpprov.core.schema_objects import (
    CompositeState,
    DomainState,
    EnumState,
    FunctionState,
    LiveObject,
    SchemaObjects,
    SequenceState,
    TriggerState,
    ViewState,
)
from erpprov.core.tables import (
    CHECK,
    EXCLUSION,
    FOREIGN_KEY,
    IDENTITY_OPTIONS,
    PRIMARY_KEY,
    UNIQUE,
    ColumnState,
    ConstraintState,
    IndexKey,
    IndexState,
    PartitionState,
    PolicyState,
    TablesState,
    TableState,
)
from erpprov.diff.sequences import OPTIONS as SEQUENCE_OPTIONS
from erpprov.diff.sequences import desired_sequence
from erpprov.errors import ErpprovError
from erpprov.ops import export_data
from erpprov.postgres.acl import DEFAULT_PRIVILEGE_KIND, all_privileges, implicit_acl
from erpprov.postgres.connect import connect
from erpprov.postgres.naming import column_addition, make_object_name, unquote
from erpprov.state import catalog
from erpprov.state.matview_indexes import with_live_indexes
from erpprov.state.schema_catalog import function_parts, read_schema_objects
from erpprov.state.table_catalog import inspect_tables

# Left out unless named: the maintenance database every cluster has (templates are never read).
EXPORTED_ONLY_WHEN_NAMED = frozenset({"postgres"})
# Extensions every new database already has (from template1): declaring them adds nothing.
BUILTIN_EXTENSIONS = frozenset({"plpgsql"})

_SERIAL_TYPES = {"integer": "serial", "bigint": "bigserial", "smallint": "smallserial"}


def export_playbook(admin: psycopg.Connection, connection: model.Connection, *,
                    databases: list[str] | None = None, hosts: str = "all",
                    name: str = "Exported from the live server", templated: bool = True, data: Iterable[str] = (),
                    data_files: dict[str, bytes] | None = None, prune: bool = False,
                    left_out: list[str] | None = None) -> list[dict[str, Any]]:
    """A playbook of one play describing the roles and ``databases`` (default: all but `postgres`)
    of the server ``admin`` is connected to; ``connection`` opens the per-database connections.
    ``templated=False``: the values as they are, for a model built without Jinja2 (`diff`).
    The tables named in ``data`` get a `data:` entry, and their rows go into ``data_files``
    (file name -> CSV bytes), which the caller writes beside the playbook. ``prune`` marks each
    database `prune: true`: applied elsewhere, the file makes that database hold what this one
    holds, dropping what it does not (as hazards). What the playbook cannot hold yet is appended
    to ``left_out``, as people name it ("database erp: rule no_delete on public.orders"): erpprov
    never drops an object from an export without saying so."""
    requested = export_data.requested_tables(data)
    found: set[tuple[str, str]] = set()
    cluster = catalog.read_cluster(admin)
    chosen = _chosen_databases(cluster, databases)
    play: dict[str, Any] = {"name": name, "hosts": hosts}
    names = sorted(r for r in cluster.roles if r != cluster.current_user)
    variables = password_variables(names)
    roles = [_role(cluster.roles[r], variables[r]) for r in names]
    if roles:
        play["roles"] = roles
    exported = []
    for db in chosen:
        with connect(connection, db) as conn:
            live = catalog.read_database(conn, db)
            live_tables = inspect_tables(conn)
            entries = {}
            for table in export_data.matching(requested, live_tables):
                entries[table.key] = export_data.data_entry(db, table)
                if data_files is not None:
                    data_files[export_data.file_name(db, table)] = export_data.table_rows(conn, table)
                found.add(table.key)
            objects = read_schema_objects(conn)
            objects.views = with_live_indexes(conn, objects.views)
            unwritable = {key: why for key, f in objects.functions.items() if (why := f.unwritable())}
            objects.functions = {key: f for key, f in objects.functions.items() if key not in unwritable}
            left, reasons = _leave_out(objects)
            functions = function_parts(conn) if objects.functions else {}
        gone = _gone(left, objects)
        grants_left_out: list[str] = []
        exported.append(_database(cluster, live, live_tables, entries, objects, functions, gone, grants_left_out)
                        | ({"prune": True} if prune else {}))
        if left_out is not None:
            left_out += [f"database {db}: {_left_out(o, unwritable, reasons, objects)}" for o in left]
            left_out += [f"database {db}: {grant}" for grant in grants_left_out]
            left_out += [f"database {db}: {prop.replace('_', ' ')} of table {t.schema}.{t.name}"
                         for t in live_tables.tables.values() for prop in t.unmanaged]
    export_data.check_found(requested, found)
    if exported:
        play["databases"] = exported
    return [_escape_templates(play) if templated else play]


_JINJA_MARKERS = ("{{", "{%", "{#")


def _escape_templates(node: Any, key: str | None = None) -> Any:
    """Every string of a playbook is a Jinja2 template: a comment or default that contains `{{`
    (or `{%`, `{#`) is wrapped in {% raw %} so that it loads as the text it is. The password
    placeholders are the one template the export means."""
    if isinstance(node, str):  # most values: one scan for `{` rules nearly all of them out
        if "{" in node and key != "password" and any(m in node for m in _JINJA_MARKERS):
            return "{% raw %}" + node + "{% endraw %}"
        return node
    if isinstance(node, dict):
        return {k: _escape_templates(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_escape_templates(v) for v in node]
    return node


def _chosen_databases(cluster: LiveCluster, databases: list[str] | None) -> list[str]:
    if databases is None:
        return sorted(set(cluster.databases) - EXPORTED_ONLY_WHEN_NAMED)
    missing = [d for d in databases if d not in cluster.databases]
    if missing:
        raise ErpprovError(f"no database named {', '.join(sorted(missing))} on the server (templates cannot be "
                           "exported)", hint=f"choose from {', '.join(sorted(cluster.databases))}")
    return sorted(set(databases))


# --- roles ----------------------------------------------------------------------------------


def password_variable(role: str) -> str:
    """The environment variable that holds a role's password: APP_USER_PASSWORD for app-user."""
    stem = re.sub(r"[^A-Z0-9]+", "_", role.upper()).strip("_") or "ROLE"
    if stem[0].isdigit():
        stem = "_" + stem
    return f"{stem}_PASSWORD"


def password_variables(roles: Iterable[str]) -> dict[str, str]:
    """Each role's password variable, distinct for roles that spell alike (my-app and my_app).

    Where several roles share a variable, the one whose name is the variable in lower case
    (my_app) keeps it, and the others get a digest of their name after a double underscore,
    which a plain variable never holds (runs of other characters become one "_"). The choice
    depends only on the names, so the same server exports the same variables."""
    by_variable: dict[str, list[str]] = defaultdict(list)
    for role in sorted(set(roles)):
        by_variable[password_variable(role)].append(role)
    result = {}
    for variable, names in by_variable.items():
        for name in names:
            if len(names) == 1 or name == variable.removesuffix("_PASSWORD").lower():
                result[name] = variable
            else:
                digest = hashlib.sha256(name.encode()).hexdigest()[:8].upper()
                result[name] = variable.removesuffix("_PASSWORD") + f"__{digest}_PASSWORD"
    return result


def _role(state: RoleState, variable: str) -> dict[str, Any]:
    role: dict[str, Any] = {"name": state.name, **attributes_beyond_defaults(state)}
    if state.login:
        # Never the password: a placeholder the user fills in, and on_create so that applying the
        # export to the server it came from leaves the live passwords alone.
        role["password"] = "{{ env." + variable + " }}"
        role["update_password"] = "on_create"
    if state.settings:
        role["settings"] = dict(state.settings)
    if state.comment is not None:
        role["comment"] = state.comment
    if state.members:
        role["member_of"] = [_membership(m) for m in state.members]
    return role


def _membership(member: Member) -> str | dict[str, Any]:
    if not member.admin and member.inherit is None and member.set is None:
        return member.role
    entry: dict[str, Any] = {"role": member.role, "admin": member.admin}
    entry |= {k: getattr(member, k) for k in ("inherit", "set") if getattr(member, k) is not None}
    return entry


# --- privileges -----------------------------------------------------------------------------


def _explicit_acl(acl: dict[str, Privileges], kind: str, owner: str,
                  version: int) -> dict[str, Privileges]:
    """The grantees whose privileges differ from what a NULL ACL stands for. Owner and PUBLIC are
    looked at even without an entry: an empty set there means their defaults were revoked."""
    grantees = set(acl) | {owner, PUBLIC}
    return {g: acl.get(g, frozenset()) for g in sorted(grantees)
            if acl.get(g, frozenset()) != implicit_acl(kind, owner, g, version)}


def _privilege_names(privileges: Iterable[str], kind: str, version: int) -> list[str]:
    names = set(privileges)
    everything = set(all_privileges(kind, version))
    if len(everything) > 1 and names == everything:  # ALL reads better than the full list, not than EXECUTE
        return ["ALL"]
    order = model.PRIVILEGES[kind] + tuple(sorted(names - set(model.PRIVILEGES[kind])))
    return [p for p in order if p in names]


def _split_options(privileges: Privileges) -> list[tuple[frozenset[str], bool]]:
    """One grant per grant option: a grant entry carries a single `with_grant_option`."""
    plain = frozenset(p for p, g in privileges if not g)
    grantable = frozenset(p for p, g in privileges if g)
    if not privileges:
        return [(frozenset(), False)]
    return [(names, option) for names, option in ((plain, False), (grantable, True)) if names]


def _grant(to: str, names: Iterable[str], option: bool, kind: str, version: int) -> dict[str, Any]:
    grant: dict[str, Any] = {"to": to, "privileges": _privilege_names(names, kind, version)}
    if option:
        grant["with_grant_option"] = True
    return grant


def _acl_of(live: LiveDatabase) -> dict[ObjectRef, dict[str, Privileges]]:
    by_object: dict[ObjectRef, dict[str, Privileges]] = defaultdict(dict)
    for (ref, grantee), privileges in live.acl.items():
        by_object[ref][grantee] = privileges
    return by_object


# ALTER DEFAULT PRIVILEGES rows of one schema: (for_role, on) -> {grantee: privileges}.
_DefaultRows = dict[tuple[str, str], dict[str, Privileges]]


def _default_acl_of(live: LiveDatabase) -> dict[str | None, _DefaultRows]:
    """`live.default_acl` grouped by schema (None: database-wide) and row. A row with no grantee
    (the empty-grantee key: it grants nothing) is kept, with an empty ACL."""
    by_schema: dict[str | None, _DefaultRows] = defaultdict(dict)
    for key, privileges in live.default_acl.items():
        row = by_schema[key.schema].setdefault((key.for_role, key.on), {})
        if key.grantee:
            row[key.grantee] = privileges
    return dict(by_schema)


def _database_grants(cluster: LiveCluster, name: str, owner: str) -> list[dict[str, Any]]:
    acl = {g: p for (db, g), p in cluster.database_acl.items() if db == name}
    grants = []
    for grantee, privileges in _explicit_acl(acl, "database", owner, cluster.server_version).items():
        # The database grant list holds one entry per grantee; a mix of grant options is written
        # with the option of the privileges that have it (rare, and reported by the next plan).
        option = any(g for _, g in privileges)
        grants.append(_grant(grantee, (p for p, _ in privileges), option, "database", cluster.server_version))
    return grants


# --- databases ------------------------------------------------------------------------------


# The kind an object's ACL is read under (catalog.read_database), for the kinds that have one.
_ACL_KIND = {"function": "function", "procedure": "function", "aggregate": "function", "view": "table",
             "materialized_view": "table", "foreign_table": "table", "sequence": "sequence", "type": "type"}


def _gone(left: list[LiveObject], objects: SchemaObjects) -> dict[ObjectRef, tuple[LiveObject, LiveObject]]:
    """The objects the export leaves out, by the name their ACL has: (the object, the left-out one it
    goes with). A range type's multirange has grants of its own and goes with it."""
    gone = {ObjectRef(_ACL_KIND[o.kind], o.schema, o.name): (o, o) for o in left if o.kind in _ACL_KIND}
    for o in left:
        multirange = objects.multiranges.get((o.schema or "", o.name)) if o.kind == "type" else None
        if multirange is not None:
            gone[ObjectRef("type", *multirange)] = (LiveObject("type", *multirange, variety="multirange"), o)
    return gone


def _written(obj: LiveObject, objects: SchemaObjects) -> bool:
    """Whether the export writes ``obj``: enum types, standalone sequences, views (and the indexes
    of materialized views), functions, procedures, triggers."""
    key = (obj.schema or "", obj.name)
    types = objects.enums.keys() | objects.composites.keys() | objects.domains.keys()
    return ((obj.kind == "type" and key in types) or (obj.kind == "sequence" and key in objects.sequences)
            or (obj.kind in ("view", "materialized_view") and key in objects.views)
            or (obj.kind == "materialized_view_index" and (obj.schema or "", obj.table or "") in objects.views)
            or (obj.kind in ("function", "procedure") and key in objects.functions)
            or (obj.kind == "trigger" and (obj.schema, obj.table, obj.name) in objects.triggers))


def _leave_out(objects: SchemaObjects) -> tuple[list[LiveObject], dict[LiveObject, str]]:
    """The objects the export leaves out, in reading order: those it cannot write, and the views,
    functions, domains, composite types, materialized view indexes and triggers that cannot be
    created without one of those
    (`core.left_out`), which are taken out of ``objects`` and come each with why."""
    roots = [o for o in objects.objects if not _written(o, objects)]
    reasons = dependents(objects, roots)
    objects.views = {key: v for key, v in objects.views.items() if LiveObject(v.kind, *key) not in reasons}
    objects.triggers = {(schema, table, name): t for (schema, table, name), t in objects.triggers.items()
                        if LiveObject("trigger", schema, name, table) not in reasons}
    objects.functions = {key: f for key, f in objects.functions.items() if LiveObject(f.kind, *key) not in reasons}
    objects.domains = {key: d for key, d in objects.domains.items()
                       if LiveObject("type", *key, variety="domain") not in reasons}
    objects.composites = {key: c for key, c in objects.composites.items()
                          if LiveObject("type", *key, variety="composite") not in reasons}
    left = set(roots) | reasons.keys()
    return [o for o in objects.objects if o in left], reasons


def _left_out(obj: LiveObject, unwritable: dict[tuple[str, str], str], reasons: dict[LiveObject, str],
              objects: SchemaObjects) -> str:
    """How the file's header names an object it leaves out; a function in C (or internal), or
    with a BEGIN ATOMIC body, says why it is never written (`FunctionState.unwritable`); an object
    left out with another, which.
    A left-out function that parts of the file's tables (or domains) call, or a left-out type that
    columns of its tables are of, says which: they are written, since leaving them out would change
    the server the file came from when applied to it (a default or column not in the file is
    dropped), so the function or type must be made first elsewhere."""
    key = (obj.schema or "", obj.name)
    if obj in reasons:
        text = f"{obj.describe()}: {reasons[obj]}"
    else:
        why = unwritable.get(key) if obj.kind in ("function", "procedure") else None
        text = obj.describe() + (f" {why}" if why else "")
    if obj.kind == "type":
        users, verb = sorted(f"column {schema}.{table}.{column}" for kind, schema, table, column
                             in objects.type_users.get(key, ()) if kind == "column"), "use"
    else:
        users, verb = sorted(_part(*user) for user in objects.function_users.get(key, ())
                             if user[0] != "trigger"), "call"  # a trigger calling it is left out with it
    if users:
        text += f"; create it before applying the file elsewhere: {', '.join(users)} {verb} it"
    return text


def _part(kind: str, schema: str, table: str, name: str) -> str:
    """A part of a table or domain that calls a function (`SchemaObjects.function_users`), named."""
    if kind == "default":
        return f"the default of column {schema}.{table}.{name}"
    if kind == "generated column":
        return f"generated column {schema}.{table}.{name}"
    return f"{kind} {name} on {schema}.{table}"


def _database(cluster: LiveCluster, live: LiveDatabase, live_tables: TablesState,
              data: dict[tuple[str, str], dict[str, object]], objects: SchemaObjects,
              functions: FunctionParts, gone: dict[ObjectRef, tuple[LiveObject, LiveObject]],
              grants_left_out: list[str]) -> dict[str, Any]:
    """``gone``: the objects the export leaves out, by the name their ACL has; a grant on one is
    left out too, and named in ``grants_left_out``."""
    state = cluster.databases[live.name]
    version = cluster.server_version
    db: dict[str, Any] = {"name": live.name, "owner": state.owner}
    if state.connection_limit != -1:
        db["connection_limit"] = state.connection_limit
    if state.comment is not None:
        db["comment"] = state.comment
    grants = _database_grants(cluster, live.name, state.owner)
    if grants:
        db["grants"] = grants
    acl = _acl_of(live)
    default_acl = _default_acl_of(live)
    table_grants, function_grants, schema_grants = _object_grants(acl, live_tables, objects, live, version, gone,
                                                                  grants_left_out)
    schemas = [_schema(live, name, acl, schema_grants.get(name, []), default_acl.get(name, {}), version)
               for name in sorted(live.schemas)]
    if schemas:
        db["schemas"] = schemas
    extensions = [_extension(live, name) for name in sorted(live.extensions) if name not in BUILTIN_EXTENSIONS]
    if extensions:
        db["extensions"] = extensions
    types = [_enum(e, table_grants.get(key, [])) for key, e in sorted(objects.enums.items())]
    types += [_domain(d, table_grants.get(key, [])) for key, d in sorted(objects.domains.items())]
    types += [_composite(c, table_grants.get(key, [])) for key, c in sorted(objects.composites.items())]
    if types:
        db["types"] = types
    sequences = [_sequence(q) for _, q in sorted(objects.sequences.items())]
    if sequences:
        db["sequences"] = sequences
    tables = [_table(t, table_grants.get(key, [])) | ({"data": data[key]} if key in data else {})
              for key, t in sorted(live_tables.tables.items())]
    if tables:
        db["tables"] = tables
    ordered = _reading_order(objects)
    for key, materialized in (("views", False), ("materialized_views", True)):
        views = [_view(v, table_grants.get((v.schema, v.name), [])) for v in ordered if v.materialized == materialized]
        if views:
            db[key] = views
    for key, procedure in (("functions", False), ("procedures", True)):
        declared = [_function(f, functions[k], function_grants.get(k, [])) for k, f in sorted(objects.functions.items())
                    if f.procedure == procedure]
        if declared:
            db[key] = declared
    triggers = [_trigger(t) for _, t in sorted(objects.triggers.items())]
    if triggers:
        db["triggers"] = triggers
    defaults = _default_privileges(default_acl.get(None, {}), True, version)
    if defaults:
        db["default_privileges"] = defaults
    return db


def _extension(live: LiveDatabase, name: str) -> dict[str, Any]:
    ext = live.extensions[name]
    return {"name": ext.name, "version": ext.version, "schema": ext.schema}


def _schema(live: LiveDatabase, name: str, acl: dict[ObjectRef, dict[str, Privileges]],
            object_grants: list[dict[str, Any]], default_rows: _DefaultRows, version: int) -> dict[str, Any]:
    state = live.schemas[name]
    schema: dict[str, Any] = {"name": name, "owner": state.owner}
    if state.comment is not None:
        schema["comment"] = state.comment
    grants = []
    explicit = _explicit_acl(acl.get(ObjectRef("schema", None, name), {}), "schema", state.owner, version)
    for grantee, privileges in explicit.items():
        grants += [_grant(grantee, names, option, "schema", version) for names, option in _split_options(privileges)]
    grants += object_grants
    if grants:
        schema["grants"] = grants
    defaults = _default_privileges(default_rows, False, version)
    if defaults:
        schema["default_privileges"] = defaults
    return schema


# Grant entries written on their object, by (schema, name).
_ByObject = dict[tuple[str, str], list[dict[str, Any]]]


def _object_grants(acl: dict[ObjectRef, dict[str, Privileges]], live_tables: TablesState, objects: SchemaObjects,
                   live: LiveDatabase, version: int, gone: dict[ObjectRef, tuple[LiveObject, LiveObject]],
                   grants_left_out: list[str]) -> tuple[_ByObject, _ByObject, dict[str, list[dict[str, Any]]]]:
    """Grants on tables and enum types (written on the object: a table and a type never share a
    name in a schema), on the functions and procedures the file declares (on the function: a
    schema's grant names a function that must exist when the plan is made), and on sequences and other
    functions (and tables whose grantee holds privileges with mixed grant options) written in their
    schema's grants, objects with the same privileges grouped into one entry. A grant on an object
    in ``gone`` would fail where the object is not: it is named in ``grants_left_out`` instead."""
    on_table: _ByObject = defaultdict(list)
    on_function: _ByObject = defaultdict(list)  # by (schema, signature): apart, a table may be named `f()`
    grouped: dict[tuple[str, str, str, frozenset[str], bool], list[str]] = defaultdict(list)
    # a partition has grants of its own, written in its schema's grants (it has no table entry)
    partitions = {(p.schema, p.name) for table in live_tables.tables.values() for p in table.partitions}
    # built once: a union per object made this quadratic in the number of tables
    tables_and_views = live_tables.tables.keys() | objects.views.keys()
    granted_relations = tables_and_views | partitions
    written_types = objects.enums.keys() | objects.composites.keys() | objects.domains.keys()
    for ref in sorted(acl, key=lambda r: (r.kind, r.schema or "", r.name)):
        if ref.kind == "schema" or ref.schema is None:
            continue
        owner = live.owners[ref]
        if ref in gone:
            grants_left_out += [_grant_left_out(ref, *gone[ref], grantee, privileges, version)
                                for grantee, privileges in _explicit_acl(acl[ref], ref.kind, owner, version).items()]
            continue
        if ref.kind == "table" and (ref.schema, ref.name) not in granted_relations:
            continue  # an extension's relation: CREATE EXTENSION makes it, with its grants
        if ref.kind == "type" and (ref.schema, ref.name) not in written_types:
            continue  # an extension's type
        # the name a grant's `tables:`/`sequences:`/`functions:` list uses
        spelling = live.signatures.get(ref, ref.name)
        for grantee, privileges in _explicit_acl(acl[ref], ref.kind, owner, version).items():
            parts = _split_options(privileges)
            if ref.kind == "type":  # one entry per grantee: the option of the privileges that have it
                on_table[(ref.schema, ref.name)].append(
                    _grant(grantee, (p for p, _ in privileges), any(g for _, g in privileges), "type", version))
                continue
            if ref.kind == "table" and len(parts) == 1 and (ref.schema, ref.name) in tables_and_views:
                names, option = parts[0]
                on_table[(ref.schema, ref.name)].append(_grant(grantee, names, option, "table", version))
                continue
            if ref.kind == "function" and (ref.schema, ref.name) in objects.functions:  # EXECUTE alone: one part
                [(names, option)] = parts
                on_function[(ref.schema, ref.name)].append(_grant(grantee, names, option, "function", version))
                continue
            for names, option in parts:
                grouped[(ref.schema, ref.kind, grantee, names, option)].append(spelling)
    in_schema: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (schema, kind, grantee, names, option), spellings in sorted(
            grouped.items(), key=lambda item: (item[0][0], item[0][1], item[0][2], sorted(item[0][3]), item[0][4])):
        grant = _grant(grantee, names, option, kind, version)
        grant[kind + "s"] = sorted(spellings)
        in_schema[schema].append(grant)
    return dict(on_table), dict(on_function), dict(in_schema)


def _grant_left_out(ref: ObjectRef, obj: LiveObject, with_: LiveObject, grantee: str, privileges: Privileges,
                    version: int) -> str:
    """How the file's header names a grant it leaves out with its object (``with_``, if it goes
    with another): `grant EXECUTE on function public.f(text) to app: the function is left out`."""
    names = ", ".join(_privilege_names((p for p, _ in privileges), ref.kind, version)) or "no privileges"
    option = " with grant option" if any(g for _, g in privileges) else ""
    why = f"the {obj.kind.replace('_', ' ')} is left out" if with_ == obj else f"{with_.describe()} is left out"
    return f"grant {names}{option} on {obj.describe()} to {grantee}: {why}"


def _default_privileges(rows: _DefaultRows, database_wide: bool, version: int) -> list[dict[str, Any]]:
    """ALTER DEFAULT PRIVILEGES rows of one schema, or the database-wide ones.

    A database-wide row replaces the built-in defaults for its role and object kind, so there
    the owner and PUBLIC are compared with those defaults (PUBLIC's EXECUTE on functions revoked
    reads as `privileges: []`); a schema row only adds, so every grantee in it is written."""
    entries = []
    for for_role, on in sorted(rows):
        acl = rows[(for_role, on)]
        kind = DEFAULT_PRIVILEGE_KIND[on]
        if database_wide:
            acl = _explicit_acl(acl, kind, for_role, version)
        for grantee, privileges in sorted(acl.items()):
            for names, option in _split_options(privileges):
                entry = {"on": on, "for_role": for_role, **_grant(grantee, names, option, kind, version)}
                entries.append(entry)
    return entries


# --- types and sequences --------------------------------------------------------------------


def _owned(result: dict[str, Any], owner: str | None, comment: str | None) -> dict[str, Any]:
    if owner is not None:
        result["owner"] = owner
    if comment is not None:
        result["comment"] = comment
    return result


def _enum(enum: EnumState, grants: list[dict[str, Any]]) -> dict[str, Any]:
    result = _owned({"name": enum.name, "schema": enum.schema, "enum": list(enum.values)}, enum.owner, enum.comment)
    if grants:
        result["grants"] = sorted(grants, key=lambda g: g["to"])
    return result


def _domain(domain: DomainState, grants: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {"name": domain.name, "schema": domain.schema, "base_type": domain.base}
    if domain.collation:
        result["collation"] = unquote(domain.collation)
    if domain.default is not None:
        result["default"] = domain.default
    if domain.not_null:
        result["not_null"] = True
    if domain.checks:  # pg_get_constraintdef prints CHECK (expr): the playbook holds expr
        result["checks"] = [{"name": name, "expression": definition.removeprefix("CHECK (").removesuffix(")")}
                            for name, definition in domain.checks]
    if grants:
        result["grants"] = sorted(grants, key=lambda g: g["to"])
    return _owned(result, domain.owner, domain.comment)


def _composite(composite: CompositeState, grants: list[dict[str, Any]]) -> dict[str, Any]:
    attributes = [{"name": n, "type": t, **({"collation": unquote(c)} if c else {})}
                  for n, t, c in composite.attributes]
    result: dict[str, Any] = {"name": composite.name, "schema": composite.schema, "attributes": attributes}
    if grants:
        result["grants"] = sorted(grants, key=lambda g: g["to"])
    return _owned(result, composite.owner, composite.comment)


def _sequence(seq: SequenceState) -> dict[str, Any]:
    """The options that differ from PostgreSQL's defaults for the sequence's type and direction."""
    defaults = desired_sequence(model.Sequence.model_validate(
        {"name": seq.name, "type": seq.type, "increment": seq.increment}))
    result: dict[str, Any] = {"name": seq.name, "schema": seq.schema, "type": seq.type}
    result |= {option: getattr(seq, option) for option in SEQUENCE_OPTIONS
               if getattr(seq, option) != getattr(defaults, option) or (option == "increment" and seq.increment != 1)}
    if seq.owned_by:
        schema, table, column = seq.owned_by
        result["owned_by"] = {"table": table, "column": column, "schema": schema}
    return _owned(result, seq.owner, seq.comment)


def _reading_order(objects: SchemaObjects) -> list[ViewState]:
    """The views, each after the views it reads (pg_depend), else by name: the order applying the
    file creates them in on an empty server."""
    placed: list[ViewState] = []
    done: set[tuple[str, str]] = set()
    pending = sorted(objects.views)
    for _ in range(len(pending)):
        for key in pending:
            if key not in done and not (objects.view_uses.get(key, set()) & set(objects.views)) - done:
                placed.append(objects.views[key])
                done.add(key)
    return placed + [objects.views[k] for k in pending if k not in done]


def _view(view: ViewState, grants: list[dict[str, Any]]) -> dict[str, Any]:
    # pg_get_viewdef's text, without the ';' it ends with (a playbook query is one SELECT, no ';')
    result: dict[str, Any] = {"name": view.name, "schema": view.schema,
                              "query": view.definition.strip().removesuffix(";").rstrip()}
    if view.materialized and not view.populated:
        result["with_data"] = False
    for option in ("security_barrier", "security_invoker"):
        if getattr(view, option):
            result[option] = True
    if view.check_option:
        result["check_option"] = view.check_option
    if view.index_states:
        result["indexes"] = [_index(i) for i in sorted(view.index_states, key=lambda i: i.name)]
    if grants:
        result["grants"] = sorted(grants, key=lambda g: (g["to"], g.get("with_grant_option", False)))
    return _owned(result, view.owner, view.comment)


FunctionParts = dict[tuple[str, str], tuple[list[dict[str, Any]], str, bool]]
# What CREATE FUNCTION gives when the file says nothing (model.Function's defaults).
_FUNCTION_DEFAULTS = {"volatility": "volatile", "strict": False, "security_definer": False, "parallel": "unsafe",
                      "leakproof": False}


def _function(function: FunctionState, parts: tuple[list[dict[str, Any]], str, bool],
              grants: list[dict[str, Any]]) -> dict[str, Any]:
    arguments, result, setof = parts
    entry: dict[str, Any] = {"name": function.name, "schema": function.schema}
    columns = [{"name": a["name"], "type": a["type"]} for a in arguments if a.get("mode") == "table"]
    arguments = [a for a in arguments if a.get("mode") != "table"]
    if arguments:
        entry["arguments"] = arguments
    if columns:
        entry["returns_table"] = columns
    elif not function.procedure:
        entry["returns"] = result
        if setof:
            entry["setof"] = True
    entry |= {"language": function.language, "body": function.body}
    attributes = dict(function.attributes)
    for name, default in _FUNCTION_DEFAULTS.items():
        if attributes[name] != default and (not function.procedure or name == "security_definer"):
            entry[name] = attributes[name]
    if not function.procedure:
        if attributes["cost"] != 100:  # a function in C or internal is never written (model.native_language)
            entry["cost"] = attributes["cost"]
        if setof and attributes["rows"] != 1000:
            entry["rows"] = attributes["rows"]
    settings = attributes["set"]
    if isinstance(settings, tuple) and settings:
        entry["set"] = dict(item.split("=", 1) for item in settings)
    if grants:
        entry["grants"] = sorted(grants, key=lambda g: g["to"])
    return _owned(entry, function.owner, function.comment)


def _trigger(trigger: TriggerState) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": trigger.name, "table": trigger.table, "schema": trigger.schema,
                             "timing": trigger.timing, "events": list(trigger.events)}
    if trigger.update_of:
        entry["update_of"] = list(trigger.update_of)
    entry["for_each"] = trigger.for_each
    if trigger.when is not None:
        entry["when"] = trigger.when
    entry["function"] = trigger.function[1]
    if trigger.function[0] != trigger.schema:
        entry["function_schema"] = trigger.function[0]
    if trigger.arguments:
        entry["arguments"] = list(trigger.arguments)
    if trigger.constraint:
        entry["constraint"] = True
    if trigger.deferrable:
        entry["deferrable"] = "initially deferred" if trigger.initially_deferred else True
    if not trigger.enabled:
        entry["enabled"] = False
    if trigger.comment is not None:
        entry["comment"] = trigger.comment
    return entry


# --- tables ---------------------------------------------------------------------------------


def _table(table: TableState, grants: list[dict[str, Any]]) -> dict[str, Any]:
    pk = next((c for c in table.constraints if c.kind == PRIMARY_KEY), None)
    flagged = _pk_as_flags(table, pk)
    pk_columns = set(pk.columns) if pk and flagged else set()
    column_unique = {c.columns[0] for c in table.constraints if _is_column_unique(table, c)}
    result: dict[str, Any] = {"name": table.name, "schema": table.schema}
    result["columns"] = [_column(c, c.name in pk_columns, c.name in column_unique) for c in table.columns]
    if pk and not flagged:
        result["primary_key"] = {"columns": list(pk.columns), "name": pk.name, **_constraint_extras(pk)}
    foreign_keys = [_foreign_key(c) for c in table.constraints if c.kind == FOREIGN_KEY]
    uniques: list[dict[str, Any]] = [{"columns": list(c.columns), "name": c.name, **_constraint_extras(c)}
                                     for c in table.constraints if c.kind == UNIQUE and not _is_column_unique(table, c)]
    checks = [_check(c) for c in table.constraints if c.kind == CHECK]
    exclusions = [_exclusion(c, {col.name for col in table.columns}) for c in table.constraints
                  if c.kind == EXCLUSION]
    indexes = [_index(i) for i in sorted(table.indexes, key=lambda i: i.name)]
    for key, items in (("foreign_keys", sorted(foreign_keys, key=lambda f: f["name"])),
                       ("unique", sorted(uniques, key=lambda u: u["name"])),
                       ("checks", sorted(checks, key=lambda c: c["name"])),
                       ("exclude", sorted(exclusions, key=lambda c: c["name"])), ("indexes", indexes)):
        if items:
            result[key] = items
    if table.row_security and any(table.row_security):
        result["row_level_security"] = {"enabled": table.row_security[0], "forced": table.row_security[1]}
    if table.policies:
        result["policies"] = [_policy(p) for p in table.policies]
    if table.partition_by:
        result["partition_by"] = _partition_by(table.partition_by)
    if table.partitions:
        result["partitions"] = [_partition(table, p) for p in table.partitions]
    if table.unlogged:
        result["unlogged"] = True
    if table.parameters:
        result["with"] = dict(p.split("=", 1) for p in table.parameters)
    if table.comment is not None:
        result["comment"] = table.comment
    if table.owner is not None:
        result["owner"] = table.owner
    if grants:
        result["grants"] = sorted(grants, key=lambda g: (g["to"], g.get("with_grant_option", False)))
    return result


def _partition_by(definition: str) -> dict[str, Any]:
    """pg_get_partkeydef's `RANGE (a, lower(b))` as {method, columns}."""
    method, _, keys = definition.partition(" ")
    return {"method": method.lower(), "columns": _top_level(keys.strip()[1:-1])}


def _partition(parent: TableState, partition: PartitionState) -> dict[str, Any]:
    """pg_get_expr(relpartbound) taken apart: `FOR VALUES FROM (...) TO (...)`, `IN (...)`,
    `WITH (modulus m, remainder r)` or `DEFAULT`."""
    result: dict[str, Any] = {"name": partition.name}
    if partition.schema != parent.schema:
        result["schema"] = partition.schema
    bound = partition.bound
    if bound == "DEFAULT":
        result["default"] = True
    elif bound.startswith("FOR VALUES IN ("):
        start = len("FOR VALUES IN ")
        result["in"] = _top_level(bound[start + 1:_closing(bound, start)])
    elif bound.startswith("FOR VALUES WITH ("):
        numbers = dict(part.split() for part in _top_level(bound[len("FOR VALUES WITH ("):-1]))
        result.update(modulus=int(numbers["modulus"]), remainder=int(numbers["remainder"]))
    else:
        start = len("FOR VALUES FROM ")
        end = _closing(bound, start)
        result["from"] = _top_level(bound[start + 1:end])
        to = bound.index("(", end)
        result["to"] = _top_level(bound[to + 1:_closing(bound, to)])
    if partition.parameters:
        result["with"] = dict(p.split("=", 1) for p in partition.parameters)
    if partition.indexes:
        result["indexes"] = [_index(index) for index in partition.indexes]
    if partition.comment is not None:
        result["comment"] = partition.comment
    return result


def _policy(policy: PolicyState) -> dict[str, Any]:
    result: dict[str, Any] = {"name": policy.name}
    if not policy.permissive:
        result["as"] = "restrictive"
    if policy.command != "all":
        result["for"] = policy.command
    if policy.roles != ("PUBLIC",):
        result["to"] = list(policy.roles)
    if policy.using is not None:
        result["using"] = policy.using
    if policy.with_check is not None:
        result["with_check"] = policy.with_check
    if policy.comment is not None:
        result["comment"] = policy.comment
    return result


def _pk_as_flags(table: TableState, pk: ConstraintState | None) -> bool:
    """The `primary_key: true` column shorthand says all of it: PostgreSQL's name, the key in
    table-column order, nothing else set."""
    if pk is None:
        return True
    in_table_order = [c.name for c in table.columns if c.name in pk.columns]
    return (pk.name == make_object_name(table.name, None, "pkey") and list(pk.columns) == in_table_order
            and not _constraint_extras(pk))


def _constraint_extras(constraint: ConstraintState) -> dict[str, Any]:
    """The options of a constraint beyond its columns or expression, as the playbook writes them (a
    check has only NOT VALID and a comment)."""
    extras: dict[str, Any] = {}
    if constraint.nulls_not_distinct:
        extras["nulls_not_distinct"] = True
    if constraint.include:
        extras["include"] = list(constraint.include)
    if constraint.parameters:
        extras["with"] = dict(p.split("=", 1) for p in constraint.parameters)
    if constraint.deferrable:
        extras["deferrable"] = "initially deferred" if constraint.initially_deferred else True
    if not constraint.validated:
        extras["not_valid"] = True
    if constraint.comment is not None:
        extras["comment"] = constraint.comment
    return extras


def _is_column_unique(table: TableState, constraint: ConstraintState) -> bool:
    """A one-column unique constraint under the name PostgreSQL would give it: `unique: true`."""
    if constraint.kind != UNIQUE or len(constraint.columns) != 1 or _constraint_extras(constraint):
        return False
    return constraint.name == make_object_name(table.name, column_addition(constraint.columns), "key")


def _column(column: ColumnState, primary_key: bool, unique: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"name": column.name}
    # serial: the default is nextval() of the sequence the column owns; the reconciler reads such a
    # column back as `serial` without a default, so writing it so plans empty.
    result["type"] = _SERIAL_TYPES.get(column.type, column.type) if column.serial else column.type
    if column.not_null and not (primary_key or column.serial or column.identity):
        result["nullable"] = False
    if column.default is not None:
        result["default"] = column.default
    if primary_key:
        result["primary_key"] = True
    if unique:
        result["unique"] = True
    if column.identity:
        result["identity"] = column.identity
        options = _identity_options(column)
        if options:
            result["identity_options"] = options
    if column.generated is not None:
        result["generated"] = column.generated
    if column.collation is not None:
        result["collation"] = unquote(column.collation)  # regcollation text quotes "C"; the playbook does not
    if column.storage != column.type_storage:
        result["storage"] = column.storage
    if column.compression is not None:
        result["compression"] = column.compression
    if column.statistics is not None:
        result["statistics"] = column.statistics
    if column.comment is not None:
        result["comment"] = column.comment
    return result


_TYPE_RANGE = {"smallint": (-(2**15), 2**15 - 1), "integer": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}


def _identity_options(column: ColumnState) -> dict[str, Any]:
    """The identity sequence's options that are not what PostgreSQL picks when none is given."""
    if column.identity_options is None:
        return {}
    values = dict(zip(IDENTITY_OPTIONS, column.identity_options, strict=True))
    increment, minimum, maximum = values["increment"], values["minvalue"], values["maxvalue"]
    low, high = _TYPE_RANGE.get(column.type, _TYPE_RANGE["bigint"])
    minimum_default, maximum_default = (1, high) if increment > 0 else (low, -1)
    defaults = {"increment": 1, "minvalue": minimum_default, "maxvalue": maximum_default,
                "start": minimum if increment > 0 else maximum, "cache": 1, "cycle": False}
    return {name: value for name, value in values.items() if value != defaults[name]}


def _check(constraint: ConstraintState) -> dict[str, Any]:
    check: dict[str, Any] = {"name": constraint.name}
    text = constraint.definition or ""
    if text.endswith(" NO INHERIT"):
        check["no_inherit"] = True
        text = text.removesuffix(" NO INHERIT")
    check["expression"] = _check_expression(text)
    check.update(_constraint_extras(constraint))
    return check


def _closing(text: str, start: int) -> int:
    """The index of the parenthesis that closes the one at `start`, skipping quoted text."""
    depth, quote = 0, ""
    for i in range(start, len(text)):
        char = text[i]
        if quote:
            quote = "" if char == quote else quote  # a doubled quote reopens at once: same result
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ErpprovError(f"cannot read the definition {text!r}")


def _top_level(text: str) -> list[str]:
    """`text` split at the commas outside parentheses and quotes."""
    parts, depth, quote, current = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        current += char
    return [*parts, current.strip()]


def _exclusion(constraint: ConstraintState, columns: set[str]) -> dict[str, Any]:
    """pg_get_constraintdef's `EXCLUDE USING m (key WITH op, ...) [INCLUDE (...)] [WHERE (...)]`
    taken apart into the playbook's keys (each key in index-entry syntax, which the loader reads)."""
    text = constraint.definition or ""
    match = re.match(r"EXCLUDE USING (\w+) \(", text)
    if not match:
        raise ErpprovError(f"cannot read the exclusion constraint {constraint.name}: {text!r}")
    end = _closing(text, match.end() - 1)
    elements = []
    for element in _top_level(text[match.end():end]):
        key, operator = element.rsplit(" WITH ", 1)
        field = "column" if index_entry(key, columns).is_column else "expression"
        elements.append({field: key, "with": operator})
    result: dict[str, Any] = {"name": constraint.name, "using": match.group(1), "elements": elements}
    rest = text[end + 1:].strip()
    if rest.startswith("INCLUDE ("):
        close = _closing(rest, len("INCLUDE "))
        result["include"] = [unquote(n) for n in _top_level(rest[len("INCLUDE ("):close])]
        rest = rest[close + 1:].strip()
    if rest.startswith("WITH ("):
        close = _closing(rest, len("WITH "))
        pairs = (p.split("=", 1) for p in _top_level(rest[len("WITH ("):close]))
        result["with"] = {name: value.strip("'") for name, value in pairs}
        rest = rest[close + 1:].strip()
    if rest.startswith("WHERE ("):
        close = _closing(rest, len("WHERE "))
        result["where"] = rest[len("WHERE ("):close]
    if constraint.deferrable:
        result["deferrable"] = "initially deferred" if constraint.initially_deferred else True
    if constraint.comment is not None:
        result["comment"] = constraint.comment
    return result


def _check_expression(definition: str) -> str:
    """pg_get_constraintdef prints `CHECK (expr)`: the playbook holds expr."""
    if definition.startswith("CHECK (") and definition.endswith(")"):
        return definition[len("CHECK ("):-1]
    return definition


def _foreign_key(constraint: ConstraintState) -> dict[str, Any]:
    fk: dict[str, Any] = {
        "name": constraint.name,
        "columns": list(constraint.columns),
        "references": {"table": constraint.ref_table, "schema": constraint.ref_schema,
                       "columns": list(constraint.ref_columns)},
    }
    if constraint.on_delete != "no action":
        fk["on_delete"] = constraint.on_delete
    if constraint.delete_columns:
        fk["on_delete_columns"] = list(constraint.delete_columns)
    if constraint.on_update != "no action":
        fk["on_update"] = constraint.on_update
    if constraint.match != "simple":
        fk["match"] = constraint.match
    return fk | _constraint_extras(constraint)


def _index(index: IndexState) -> dict[str, Any]:
    result: dict[str, Any] = {"name": index.name, "columns": [_index_key(k) for k in index.keys]}
    if index.unique:
        result["unique"] = True
    if index.method != "btree":
        result["method"] = index.method
    if index.predicate is not None:
        result["where"] = index.predicate
    if index.include:
        result["include"] = list(index.include)
    if index.nulls_not_distinct:
        result["nulls_not_distinct"] = True
    if index.parameters:
        result["with"] = dict(p.split("=", 1) for p in index.parameters)
    if index.comment is not None:
        result["comment"] = index.comment
    return result


def _index_key(key: IndexKey) -> str:
    """A column name or an expression, then the ordering when it is not the default. Unlike the
    SQL, an entry names its column bare: the loader matches it against the table's columns."""
    body = key.column if key.column is not None else (key.expression or "")
    if key.collation:
        body = f"{body} COLLATE {key.collation}"
    if key.opclass:
        body = f"{body} {key.opclass}"
    order = index_ordering(key.descending, key.nulls_first)
    return f"{body} {order}" if order else body
