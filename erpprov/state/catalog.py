"""Read the live state from the system catalogs, in bulk.

A fixed number of queries per cluster and per database, whatever the number of roles, objects or
grants (docs/design.md, decision 2). ACLs are read with aclexplode over coalesce(acl, acldefault(...)), so a
NULL ACL reads as the built-in defaults it stands for and never shows as drift.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import nullcontext
from typing import Any

import psycopg

from erpprov.core.cluster import (
    DatabaseState,
    DefaultAclKey,
    ExtensionState,
    LiveCluster,
    LiveDatabase,
    Member,
    ObjectRef,
    RoleState,
    SchemaState,
)
from erpprov.errors import ErpprovError
from erpprov.postgres.script_ddl import NOT_JOURNAL, NOT_JOURNAL_SCHEMA

USER_SCHEMA = "{n}.nspname !~ '^pg_' AND {n}.nspname <> 'information_schema'"

# pg_default_acl.defaclobjtype -> the ALTER DEFAULT PRIVILEGES ... ON word (DefaultAclKey.on)
_DEFACLOBJTYPE_ON = {"r": "tables", "S": "sequences", "f": "functions", "T": "types", "n": "schemas"}


def _rows(conn: psycopg.Connection, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    return conn.execute(query, params).fetchall()


def read_cluster(conn: psycopg.Connection) -> LiveCluster:
    version, user, superuser = _rows(conn, """
        SELECT current_setting('server_version_num')::int, current_user,
               (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
    """)[0]
    live = LiveCluster(server_version=version, current_user=user, is_superuser=bool(superuser))
    members: dict[str, list[Member]] = defaultdict(list)
    # PostgreSQL 16 added per-membership INHERIT and SET options; before, they do not exist.
    inherit_col, set_col = ("am.inherit_option", "am.set_option") if version >= 160000 else ("NULL", "NULL")
    for member, role, admin, inherit, set_ in _rows(conn, f"""
        SELECT m.rolname, g.rolname, bool_or(am.admin_option), bool_or({inherit_col}::bool),
               bool_or({set_col}::bool)
        FROM pg_auth_members am JOIN pg_roles m ON m.oid = am.member JOIN pg_roles g ON g.oid = am.roleid
        GROUP BY 1, 2
    """):
        members[member].append(Member(role, bool(admin), inherit, set_))
    for row in _rows(conn, """
        SELECT r.rolname, r.rolcanlogin, r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolinherit,
               r.rolreplication, r.rolbypassrls, r.rolconnlimit, r.rolvaliduntil::text,
               coalesce((SELECT s.setconfig FROM pg_db_role_setting s
                         WHERE s.setrole = r.oid AND s.setdatabase = 0), '{}'),
               shobj_description(r.oid, 'pg_authid')
        FROM pg_roles r WHERE r.rolname !~ '^pg_'
    """):
        name, login, su, cdb, crole, inh, repl, bypass, limit, until, config, comment = row
        settings = tuple(sorted(tuple(item.split("=", 1)) for item in config))
        live.roles[name] = RoleState(
            name=name, login=login, superuser=su, createdb=cdb, createrole=crole, inherit=inh,
            replication=repl, bypassrls=bypass, connection_limit=limit,
            valid_until=until, settings=settings, comment=comment,
            members=tuple(sorted(members.get(name, []), key=lambda m: m.role)),
        )
    if superuser:  # only superusers may read pg_authid; elsewhere passwords cannot be compared
        live.passwords = dict(_rows(conn, "SELECT rolname, rolpassword FROM pg_authid WHERE rolname !~ '^pg_'"))
    for name, owner, enc, collate, ctype, limit, comment in _rows(conn, """
        SELECT d.datname, pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate,
               d.datctype, d.datconnlimit, shobj_description(d.oid, 'pg_database')
        FROM pg_database d WHERE NOT d.datistemplate
    """):
        live.databases[name] = DatabaseState(name, owner, enc, collate, ctype, limit, comment)
    acl: dict[tuple[str, str], set[tuple[str, bool]]] = defaultdict(set)
    for db, grantee, privilege, grantable in _rows(conn, """
        SELECT d.datname, coalesce(r.rolname, 'PUBLIC'), a.privilege_type, a.is_grantable
        FROM pg_database d
        CROSS JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
        LEFT JOIN pg_roles r ON r.oid = a.grantee
        WHERE NOT d.datistemplate
    """):
        acl[(db, grantee)].add((privilege, grantable))
    live.database_acl = {key: frozenset(value) for key, value in acl.items()}
    return live


def unavailable_extensions(conn: psycopg.Connection, names: list[str]) -> list[str]:
    """Those of ``names`` the server has no package for (pg_available_extensions): asked only for
    the extensions a plan would create."""
    if not names:
        return []
    available = {n for (n,) in _rows(conn, "SELECT name FROM pg_available_extensions WHERE name = ANY(%s)", (names,))}
    return [n for n in names if n not in available]


def read_database(conn: psycopg.Connection, name: str) -> LiveDatabase:
    live = LiveDatabase(name=name)
    for schema, owner, comment in _rows(conn, f"""
        SELECT n.nspname, pg_get_userbyid(n.nspowner), obj_description(n.oid, 'pg_namespace')
        FROM pg_namespace n WHERE {USER_SCHEMA.format(n='n')} AND {NOT_JOURNAL_SCHEMA.format(n='n')}
    """):
        live.schemas[schema] = SchemaState(schema, owner, comment)
    for ext, version, schema in _rows(conn, """
        SELECT e.extname, e.extversion, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    """):
        live.extensions[ext] = ExtensionState(ext, version, schema)
    acl: dict[tuple[ObjectRef, str], set[tuple[str, bool]]] = defaultdict(set)
    objects: dict[str, set[tuple[str, str]]] = defaultdict(set)
    ref: ObjectRef | None = None
    held: str | None = None  # the grantee whose privileges `privileges` collects
    privileges: set[tuple[str, bool]] = set()
    # One row per ACL entry (at least one per object), each with the object's owner and, for a
    # function, its signature: argument types only, as to_regprocedure reads it (oidvectortypes
    # prints each type as format_type(t, NULL) does).
    for kind, schema, obj, owner, signature, grantee, privilege, grantable in _rows(conn, f"""
        WITH objs AS (
            SELECT 'schema' AS kind, NULL::text AS schema, n.nspname::text AS name,
                   pg_get_userbyid(n.nspowner) AS owner, NULL::text AS signature,
                   coalesce(n.nspacl, acldefault('n', n.nspowner)) AS acl
            FROM pg_namespace n WHERE {USER_SCHEMA.format(n='n')} AND {NOT_JOURNAL_SCHEMA.format(n='n')}
          UNION ALL
            SELECT CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END, n.nspname, c.relname,
                   pg_get_userbyid(c.relowner), NULL,
                   coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's'::"char" ELSE 'r'::"char" END,
                                                 c.relowner))
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {USER_SCHEMA.format(n='n')}
              AND {NOT_JOURNAL.format(n='n', c='c')}
          UNION ALL
            SELECT 'function', n.nspname, format('%s(%s)', p.proname, pg_get_function_identity_arguments(p.oid)),
                   pg_get_userbyid(p.proowner),
                   format('%s(%s)', quote_ident(p.proname), oidvectortypes(p.proargtypes)),
                   coalesce(p.proacl, acldefault('f', p.proowner))
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            -- every routine (aggregates and window functions too: GRANT ... ON FUNCTION takes them), so a
            -- grant naming one converges and a pruned role loses what it holds on one
            WHERE {USER_SCHEMA.format(n='n')}
          UNION ALL  -- enum, composite, domain, range, multirange and base types, not an extension's nor
                     -- arrays (which have no grants of their own): those erpprov manages, and those it
                     -- lists as unmanaged, whose grants it must see as well
            SELECT 'type', n.nspname, t.typname, pg_get_userbyid(t.typowner), NULL,
                   coalesce(t.typacl, acldefault('T', t.typowner))
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            LEFT JOIN pg_class c ON c.oid = t.typrelid
            WHERE (t.typtype IN ('e', 'd', 'r', 'm', 'b') OR (t.typtype = 'c' AND c.relkind = 'c'))
              AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid) AND {USER_SCHEMA.format(n='n')}
              AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_type'::regclass AND e.objid = t.oid
                              AND e.deptype = 'e')
        )
        SELECT o.kind, o.schema, o.name, o.owner, o.signature,
               coalesce(r.rolname, 'PUBLIC'), a.privilege_type, a.is_grantable
        FROM objs o LEFT JOIN LATERAL aclexplode(o.acl) a ON true LEFT JOIN pg_roles r ON r.oid = a.grantee
    """):
        # The rows of one object, and of one ACL item within it, come together (14,000 rows at
        # 1000 tables): each key is built and looked up once per run of rows, not once per row.
        if ref is None or obj != ref.name or schema != ref.schema or kind != ref.kind:
            ref = ObjectRef(kind, schema, obj)
            if kind != "schema":
                objects[kind].add((schema, obj))
            live.owners[ref] = owner
            if signature is not None:
                live.signatures[ref] = signature
            held = None
        if privilege is not None:
            if grantee != held:
                privileges, held = acl[(ref, grantee)], grantee
            privileges.add((privilege, grantable))
    live.acl = {key: frozenset(value) for key, value in acl.items()}
    live.objects = dict(objects)
    default_acl: dict[DefaultAclKey, set[tuple[str, bool]]] = {}
    for role, schema, objtype, grantee, privilege, grantable in _rows(conn, """
        SELECT pg_get_userbyid(d.defaclrole), n.nspname, d.defaclobjtype::text,
               coalesce(r.rolname, 'PUBLIC'), a.privilege_type, a.is_grantable
        FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
        LEFT JOIN LATERAL aclexplode(d.defaclacl) a ON true LEFT JOIN pg_roles r ON r.oid = a.grantee
    """):
        on = _DEFACLOBJTYPE_ON[objtype]
        # An entry exists even when it grants nothing (e.g. after revoking PUBLIC's EXECUTE): record
        # the row itself under an empty grantee so the diff knows the implicit defaults no longer apply.
        default_acl.setdefault(DefaultAclKey(role, schema, on, ""), set())
        if privilege is not None:
            default_acl.setdefault(DefaultAclKey(role, schema, on, grantee), set()).add((privilege, grantable))
    live.default_acl = {key: frozenset(value) for key, value in default_acl.items()}
    return live


def canonical_timestamps(conn: psycopg.Connection, values: list[str]) -> dict[str, str]:
    """The server's own text for each timestamp, as rolvaliduntil::text reads back (one query)."""
    if not values:
        return {}
    try:
        with conn.transaction():
            rows = _rows(conn, "SELECT v, v::timestamptz::text FROM unnest(%s::text[]) AS v", (values,))
    except psycopg.errors.DataError:
        for value in values:  # only on failure: find which one PostgreSQL rejects
            try:
                with conn.transaction():
                    _rows(conn, "SELECT %s::timestamptz", (value,))
            except psycopg.errors.DataError as exc:
                raise ErpprovError(f"valid_until {value!r} is not a timestamp: {exc.diag.message_primary}",
                                   hint="write e.g. '2030-12-31 00:00:00+00' or 'infinity'") from None
        raise
    return {value: text for value, text in rows}


_RESOLVED = """
    SELECT s, CASE WHEN p.oid IS NOT NULL
                   THEN format('%%s(%%s)', p.proname, pg_get_function_identity_arguments(p.oid)) END,
           n.nspname
    FROM unnest(%s::text[]) AS s
    LEFT JOIN pg_proc p ON p.oid = to_regprocedure(s) LEFT JOIN pg_namespace n ON n.oid = p.pronamespace
"""


_UNRESOLVABLE = (psycopg.errors.UndefinedObject, psycopg.errors.DataError, psycopg.errors.SyntaxError)


def canonical_functions(conn: psycopg.Connection, signatures: list[str]) -> dict[str, tuple[str, str] | None]:
    """Resolve 'schema.f(int)' spellings to (schema, 'f(integer)') as the ACL query names them;
    None for a spelling no function answers (the signature travels as a value, never as SQL)."""
    if not signatures:
        return {}
    # A failed statement aborts an enclosing transaction (function_canon.declared_signatures): a
    # savepoint there; an autocommit session needs none.
    inside = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def resolved(some: list[str]) -> list[tuple[Any, ...]]:
        with conn.transaction() if inside else nullcontext():
            return _rows(conn, _RESOLVED, (some,))

    try:
        rows = resolved(signatures)
    except _UNRESOLVABLE:
        # Before PostgreSQL 16 to_regprocedure raises for an argument type that does not exist
        # instead of answering NULL: then each alone, that one unresolved.
        rows = []
        for signature in signatures:
            try:
                rows += resolved([signature])
            except _UNRESOLVABLE:
                rows.append((signature, None, None))
    return {s: ((schema, sig) if sig else None) for s, sig, schema in rows}
