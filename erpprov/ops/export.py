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
- views, standalone sequences and functions themselves (erpprov does not create them); grants on
  sequences and functions are exported, grants on views are not (they could not be applied to a
  database where the view does not exist).
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
from erpprov.core.fragments import index_ordering
from erpprov.core.tables import (
    CHECK,
    FOREIGN_KEY,
    PRIMARY_KEY,
    UNIQUE,
    ColumnState,
    ConstraintState,
    IndexKey,
    IndexState,
    TablesState,
    TableState,
)
from erpprov.errors import ErpprovError
from erpprov.ops import export_data
from erpprov.postgres.acl import DEFAULT_PRIVILEGE_KIND, all_privileges, implicit_acl
from erpprov.postgres.connect import connect
from erpprov.postgres.naming import column_addition, make_object_name, unquote
from erpprov.state import catalog
from erpprov.state.table_catalog import inspect_tables

# Left out unless named: the maintenance database every cluster has (templates are never read).
EXPORTED_ONLY_WHEN_NAMED = frozenset({"postgres"})
# Extensions every new database already has (from template1): declaring them adds nothing.
BUILTIN_EXTENSIONS = frozenset({"plpgsql"})

_SERIAL_TYPES = {"integer": "serial", "bigint": "bigserial", "smallint": "smallserial"}


def export_playbook(admin: psycopg.Connection, connection: model.Connection, *,
                    databases: list[str] | None = None, hosts: str = "all",
                    name: str = "Exported from the live server", templated: bool = True, data: Iterable[str] = (),
                    data_files: dict[str, bytes] | None = None) -> list[dict[str, Any]]:
    """A playbook of one play describing the roles and ``databases`` (default: all but `postgres`)
    of the server ``admin`` is connected to; ``connection`` opens the per-database connections.
    ``templated=False``: the values as they are, for a model built without Jinja2 (`diff`).
    The tables named in ``data`` get a `data:` entry, and their rows go into ``data_files``
    (file name -> CSV bytes), which the caller writes beside the playbook."""
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
        exported.append(_database(cluster, live, live_tables, entries))
    export_data.check_found(requested, found)
    if exported:
        play["databases"] = exported
    return [_escape_templates(play) if templated else play]


_JINJA_MARKERS = ("{{", "{%", "{#")


def _escape_templates(node: Any, key: str | None = None) -> Any:
    """Every string of a playbook is a Jinja2 template: a comment or default that contains `{{`
    (or `{%`, `{#`) is wrapped in {% raw %} so that it loads as the text it is. The password
    placeholders are the one template the export means."""
    if isinstance(node, dict):
        return {k: _escape_templates(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_escape_templates(v) for v in node]
    if isinstance(node, str) and key != "password" and any(m in node for m in _JINJA_MARKERS):
        return "{% raw %}" + node + "{% endraw %}"
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


def _database(cluster: LiveCluster, live: LiveDatabase, live_tables: TablesState,
              data: dict[tuple[str, str], dict[str, object]]) -> dict[str, Any]:
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
    table_grants, schema_grants = _object_grants(acl, live_tables, live, version)
    schemas = [_schema(live, name, acl, schema_grants.get(name, []), default_acl.get(name, {}), version)
               for name in sorted(live.schemas)]
    if schemas:
        db["schemas"] = schemas
    extensions = [_extension(live, name) for name in sorted(live.extensions) if name not in BUILTIN_EXTENSIONS]
    if extensions:
        db["extensions"] = extensions
    tables = [_table(t, table_grants.get(key, [])) | ({"data": data[key]} if key in data else {})
              for key, t in sorted(live_tables.tables.items())]
    if tables:
        db["tables"] = tables
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


def _object_grants(acl: dict[ObjectRef, dict[str, Privileges]], live_tables: TablesState,
                   live: LiveDatabase, version: int
                   ) -> tuple[dict[tuple[str, str], list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """Grants on tables (written on the table), and on sequences and functions (and tables whose
    grantee holds privileges with mixed grant options) written in their schema's grants, objects
    with the same privileges grouped into one entry."""
    on_table: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    grouped: dict[tuple[str, str, str, frozenset[str], bool], list[str]] = defaultdict(list)
    for ref in sorted(acl, key=lambda r: (r.kind, r.schema or "", r.name)):
        if ref.kind == "schema" or ref.schema is None:
            continue
        if ref.kind == "table" and (ref.schema, ref.name) not in live_tables.tables:
            continue  # a view, materialized view or foreign table: erpprov does not create them
        owner = live.owners[ref]
        # the name a grant's `tables:`/`sequences:`/`functions:` list uses
        spelling = live.signatures.get(ref, ref.name)
        for grantee, privileges in _explicit_acl(acl[ref], ref.kind, owner, version).items():
            parts = _split_options(privileges)
            if ref.kind == "table" and len(parts) == 1:
                names, option = parts[0]
                on_table[(ref.schema, ref.name)].append(_grant(grantee, names, option, "table", version))
                continue
            for names, option in parts:
                grouped[(ref.schema, ref.kind, grantee, names, option)].append(spelling)
    in_schema: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (schema, kind, grantee, names, option), objects in sorted(
            grouped.items(), key=lambda item: (item[0][0], item[0][1], item[0][2], sorted(item[0][3]), item[0][4])):
        grant = _grant(grantee, names, option, kind, version)
        grant[kind + "s"] = sorted(objects)
        in_schema[schema].append(grant)
    return dict(on_table), dict(in_schema)


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


# --- tables ---------------------------------------------------------------------------------


def _table(table: TableState, grants: list[dict[str, Any]]) -> dict[str, Any]:
    pk = next((c for c in table.constraints if c.kind == PRIMARY_KEY), None)
    pk_columns = set(pk.columns) if pk else set()
    column_unique = {c.columns[0] for c in table.constraints if _is_column_unique(table, c)}
    result: dict[str, Any] = {"name": table.name, "schema": table.schema}
    result["columns"] = [_column(c, c.name in pk_columns, c.name in column_unique) for c in table.columns]
    foreign_keys = [_foreign_key(c) for c in table.constraints if c.kind == FOREIGN_KEY]
    uniques: list[dict[str, Any]] = [{"columns": list(c.columns), "name": c.name} for c in table.constraints
               if c.kind == UNIQUE and not _is_column_unique(table, c)]
    checks = [{"name": c.name, "expression": _check_expression(c)} for c in table.constraints if c.kind == CHECK]
    indexes = [_index(i) for i in sorted(table.indexes, key=lambda i: i.name)]
    for key, items in (("foreign_keys", sorted(foreign_keys, key=lambda f: f["name"])),
                       ("unique", sorted(uniques, key=lambda u: u["name"])),
                       ("checks", sorted(checks, key=lambda c: c["name"])), ("indexes", indexes)):
        if items:
            result[key] = items
    if table.comment is not None:
        result["comment"] = table.comment
    if table.owner is not None:
        result["owner"] = table.owner
    if grants:
        result["grants"] = sorted(grants, key=lambda g: (g["to"], g.get("with_grant_option", False)))
    return result


def _is_column_unique(table: TableState, constraint: ConstraintState) -> bool:
    """A one-column unique constraint under the name PostgreSQL would give it: `unique: true`."""
    if constraint.kind != UNIQUE or len(constraint.columns) != 1:
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
    if column.generated is not None:
        result["generated"] = column.generated
    if column.collation is not None:
        result["collation"] = unquote(column.collation)  # regcollation text quotes "C"; the playbook does not
    if column.comment is not None:
        result["comment"] = column.comment
    return result


def _check_expression(constraint: ConstraintState) -> str:
    """pg_get_constraintdef prints `CHECK (expr)` (plus `NOT VALID`): the playbook holds expr."""
    text = (constraint.definition or "").removesuffix(" NOT VALID")
    if text.startswith("CHECK (") and text.endswith(")"):
        return text[len("CHECK ("):-1]
    return text


def _foreign_key(constraint: ConstraintState) -> dict[str, Any]:
    fk: dict[str, Any] = {
        "name": constraint.name,
        "columns": list(constraint.columns),
        "references": {"table": constraint.ref_table, "schema": constraint.ref_schema,
                       "columns": list(constraint.ref_columns)},
    }
    if constraint.on_delete != "no action":
        fk["on_delete"] = constraint.on_delete
    if constraint.on_update != "no action":
        fk["on_update"] = constraint.on_update
    if constraint.deferrable:
        fk["deferrable"] = "initially deferred" if constraint.initially_deferred else True
    return fk


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
    return result


def _index_key(key: IndexKey) -> str:
    """A column name or an expression, then the ordering when it is not the default. Unlike the
    SQL, an entry names its column bare: the loader matches it against the table's columns."""
    body = key.column if key.column is not None else (key.expression or "")
    if key.opclass:
        body = f"{body} {key.opclass}"
    order = index_ordering(key.descending, key.nulls_first)
    return f"{body} {order}" if order else body
