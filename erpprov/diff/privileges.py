"""The diff for privileges on databases, schemas, tables, sequences and functions, and default
privileges (pure).

A grant's list is exact for its grantee: what it holds beyond the list is revoked. ACLs are compared
as sets of (privilege, grant option); objects created in the same apply start from the ACL that
PostgreSQL gives new objects, so one apply converges."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import replace

from psycopg import sql

from erpprov.core import model
from erpprov.core.actions import Action, Hazard, Op, Phase, Statement
from erpprov.core.address import Address
from erpprov.core.cluster import (
    PUBLIC,
    DefaultAclKey,
    LiveCluster,
    LiveDatabase,
    ObjectRef,
    Privileges,
)
from erpprov.diff.result import Canon, Planned, Result
from erpprov.postgres.acl import (
    DEFAULT_PRIVILEGE_KIND,
    expand,
    implicit_acl,
    initdb_acl,
    new_object_acl,
    owner_transferred,
)
from erpprov.postgres.ddl import (
    grantee,
    ident,
    object_clause,
    privilege_list,
    render,
    text,
)

# --- roles ----------------------------------------------------------------------------------


def acl_changes(want: Privileges, have: Privileges) -> dict[str, list[str]]:
    """Split the difference into REVOKE, REVOKE GRANT OPTION FOR, GRANT and GRANT ... WITH GRANT OPTION."""
    want_names, have_names = dict(want), dict(have)
    return {
        "revoke": [p for p in have_names if p not in want_names],
        "revoke_option": [p for p, g in want_names.items() if not g and have_names.get(p)],
        "grant": [p for p, g in want_names.items() if not g and p not in have_names],
        "grant_option": [p for p, g in want_names.items() if g and not have_names.get(p)],
    }


def _acl_statements(want: Privileges, have: Privileges, prefix: sql.Composable, on: sql.Composable,
                    who: sql.Composable) -> tuple[Statement, ...]:
    changes = acl_changes(want, have)
    forms = {
        "revoke": "REVOKE {} ON {} FROM {}",
        "revoke_option": "REVOKE GRANT OPTION FOR {} ON {} FROM {}",
        "grant": "GRANT {} ON {} TO {}",
        "grant_option": "GRANT {} ON {} TO {} WITH GRANT OPTION",
    }
    return tuple(render(prefix + sql.SQL(form).format(privilege_list(changes[kind]), on, who))
                 for kind, form in forms.items() if changes[kind])


def grant_statements(ref: ObjectRef, to: str, want: Privileges, have: Privileges) -> tuple[Statement, ...]:
    """The GRANT/REVOKE statements that take ``to`` from ``have`` to ``want`` on ``ref``."""
    return _acl_statements(want, have, sql.SQL(""), object_clause(ref), grantee(to))


def _op(want: Privileges, have: Privileges) -> Op:
    return Op.CREATE if not have else (Op.DELETE if not want else Op.UPDATE)


def grant_action(ref: ObjectRef, to: str, want: Privileges, have: Privileges, *, database: str | None,
                 phase: Phase, address: Address, hazards: tuple[Hazard, ...] = ()) -> Action | None:
    """GRANT what is missing, REVOKE what is extra, and fix grant options: exact for this grantee."""
    if want == have:
        return None
    return _acl_action(address, phase, database, sql.SQL(""), object_clause(ref), to, want, have, hazards)


def _acl_action(address: Address, phase: Phase, database: str | None, prefix: sql.Composable, on: sql.Composable,
                to: str, want: Privileges, have: Privileges, hazards: tuple[Hazard, ...]) -> Action:
    """The action that takes `to` from `have` to `want` on `on` (GRANT/REVOKE, after `prefix`)."""
    return Action(address, _op(want, have), phase, database=database,
                  sql=_acl_statements(want, have, prefix, on, grantee(to)),
                  before={"privileges": _privilege_view(have)} if have else None,
                  after={"privileges": _privilege_view(want)} if want else None, hazards=hazards)


def _grant_address(database: str, ref: ObjectRef, to: str) -> Address:
    return Address("grant", database, ref.kind, *([ref.schema] if ref.schema else []), ref.name, to)


def _privilege_view(privileges: Privileges) -> list[str]:
    return sorted(p + (" WITH GRANT OPTION" if g else "") for p, g in privileges)


# --- inside one database ----------------------------------------------------------------------


def _targets(grant: model.SchemaGrant, schema: str, live: LiveDatabase, canon: Canon,
             planned: Planned) -> list[ObjectRef]:
    kind = grant.object_kind
    if kind == "schema":
        return [ObjectRef("schema", None, schema)]
    chosen = getattr(grant, kind + "s")
    existing = live.objects.get(kind, set()) | set(planned.get(kind, {}))
    if chosen == "ALL":
        return [ObjectRef(kind, s, n) for s, n in sorted(existing) if s == schema]
    refs = []
    for name in chosen:
        if kind == "function":
            resolved = canon.functions.get(_qualified_function(schema, name))
            if resolved is None:
                raise GrantTargetMissing(f"function {schema}.{name} does not exist in database {live.name}")
            refs.append(ObjectRef("function", resolved[0], resolved[1]))
        else:
            if (schema, name) not in existing:
                raise GrantTargetMissing(
                    f"{kind} {schema}.{name} neither exists in database {live.name} nor is declared")
            refs.append(ObjectRef(kind, schema, name))
    return refs


class GrantTargetMissing(ValueError):
    """A grant names an object that will not exist; the reconciler reports it as an error."""


def _qualified_function(schema: str, signature: str) -> str:
    return f"{text(ident(schema))}.{signature}"


def function_signatures(db: model.Database) -> list[str]:
    """Every function signature the grants of ``db`` name, for `catalog.canonical_functions`."""
    return [_qualified_function(s.name, f) for s in db.schemas for g in s.grants
            if isinstance(g.functions, list) for f in g.functions]


def _desired_grants(db: model.Database, live: LiveDatabase, cluster: LiveCluster, canon: Canon,
                    planned: Planned) -> dict[tuple[ObjectRef, str], Privileges]:
    want: dict[tuple[ObjectRef, str], Privileges] = {}
    version = cluster.server_version
    for schema in db.schemas:
        for grant in schema.grants:
            for ref in _targets(grant, schema.name, live, canon, planned):
                privileges = expand(grant.privileges, ref.kind, version, grant.with_grant_option)
                key = (ref, grant.to)
                want[key] = want.get(key, frozenset()) | privileges
    # Grants written on an object are more specific than "all tables in schema": they win.
    on_objects: list[tuple[str, model.Table | model.Type | model.Sequence | model.View | model.MaterializedView
                           | model.Function | model.Procedure]] = [
        *(("table", t) for t in db.tables), *(("type", t) for t in db.types),
        *(("sequence", s) for s in db.sequences),
        *(("table", v) for v in db.views), *(("table", m) for m in db.materialized_views)]  # ON TABLE takes views
    functions: list[model.Function | model.Procedure] = [*db.functions, *db.procedures]
    on_objects += [("function", f) for i, f in enumerate(functions) if i in canon.declared_functions]
    for kind, item in on_objects:
        name = item.name
        if isinstance(item, (model.Function, model.Procedure)):
            name = canon.declared_functions[functions.index(item)][1]
        for object_grant in item.grants:
            ref = ObjectRef(kind, item.schema_, name)
            want[(ref, object_grant.to)] = expand(object_grant.privileges, kind, version,
                                                  object_grant.with_grant_option)
    return want


def _diff_object_grants(database: str, grants: dict[tuple[ObjectRef, str], Privileges], live: LiveDatabase,
                        new_owners: dict[ObjectRef, str], server_version: int) -> Result:
    """``new_owners``: objects this apply creates, whose ACL starts as PostgreSQL gives it to new objects."""
    result = Result()
    for (ref, to), want in sorted(grants.items(), key=lambda item: (item[0][0].kind, item[0][0].label(), item[0][1])):
        if ref in new_owners:
            have = new_object_acl(ref, new_owners[ref], to, live, server_version)
        else:
            have = live.acl.get((ref, to), frozenset())
        action = grant_action(ref, to, want, have, database=database, phase=Phase.GRANT,
                              address=_grant_address(database, ref, to))
        if action:
            result.actions.append(action)
    return result


def _prune_privileges(database: str, pruned: set[str], grants: dict[tuple[ObjectRef, str], Privileges],
                      defaults: dict[DefaultAclKey, Privileges], live: LiveDatabase,
                      new_owners: dict[ObjectRef, str], server_version: int) -> Result:
    """For roles with `prune: true`, revoke privileges in this database that the file does not
    grant: those held now, and those objects this apply creates will start with."""
    result = Result()
    held = {key: have for key, have in live.acl.items() if key[1] in pruned}
    held |= {(ref, to): new_object_acl(ref, owner, to, live, server_version)
             for ref, owner in new_owners.items() for to in pruned}
    for (ref, to), have in sorted(held.items(), key=lambda item: (item[0][0].label(), item[0][1])):
        action = None if (ref, to) in grants else grant_action(
            ref, to, frozenset(), have, database=database, phase=Phase.GRANT,
            address=_grant_address(database, ref, to), hazards=(Hazard.REVOKES_ACCESS,))
        if action:
            result.actions.append(action)
    for key, have in sorted(live.default_acl.items(), key=lambda item: repr(item[0])):
        if key.grantee in pruned and key not in defaults and have:
            result.actions.append(_default_acl_action(database, key, frozenset(), have, (Hazard.REVOKES_ACCESS,)))
    return result


def _desired_default_privileges(db: model.Database, cluster: LiveCluster) -> dict[DefaultAclKey, Privileges]:
    items = [(d, None) for d in db.default_privileges] + [(d, s.name) for s in db.schemas
                                                          for d in s.default_privileges]
    return {DefaultAclKey(d.for_role or cluster.current_user, schema, d.on, d.to):
            expand(d.privileges, DEFAULT_PRIVILEGE_KIND[d.on], cluster.server_version, d.with_grant_option)
            for d, schema in items}


def _diff_default_privileges(database: str, defaults: dict[DefaultAclKey, Privileges],
                             live: LiveDatabase, server_version: int) -> Result:
    result = Result()
    for key, want in defaults.items():
        row_exists = DefaultAclKey(key.for_role, key.schema, key.on, "") in live.default_acl
        if key in live.default_acl:
            have = live.default_acl[key]
        elif key.schema is None and not row_exists:
            have = implicit_acl(DEFAULT_PRIVILEGE_KIND[key.on], key.for_role, key.grantee, server_version)
        else:
            have = frozenset()
        if want != have:
            result.actions.append(_default_acl_action(database, key, want, have, ()))
    return result


def _default_acl_action(database: str, key: DefaultAclKey, want: Privileges, have: Privileges,
                        hazards: tuple[Hazard, ...]) -> Action:
    prefix = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} ").format(ident(key.for_role))
    if key.schema is not None:
        prefix = prefix + sql.SQL("IN SCHEMA {} ").format(ident(key.schema))
    address = Address("default_privileges", database, key.for_role, key.schema or "*", key.on, key.grantee)
    return _acl_action(address, Phase.DEFAULT_PRIVILEGE, database, prefix, sql.SQL(key.on.upper()), key.grantee,
                       want, have, hazards)


def _owner_changes(db: model.Database, live: LiveDatabase, planned: Planned) -> dict[ObjectRef, tuple[str, str]]:
    """Existing objects whose owner this apply changes, as (old owner, new owner)."""
    wanted = {ObjectRef("schema", None, s.name): s.owner for s in db.schemas if s.owner}
    wanted |= {ObjectRef(kind, schema, name): owner for kind, objects in planned.items()
               for (schema, name), owner in objects.items() if owner}
    return {ref: (old, new) for ref, new in wanted.items() if (old := live.owners.get(ref)) not in (None, new)}


def stray_grantees(acl: dict[str, Privileges], named: Collection[str], owner: str,
                   unasked: Callable[[str], Collection[Privileges]]) -> list[str]:
    """The grantees of one object that a file does not name, whose privileges are not what the
    object holds without being asked (``unasked``: what acldefault() or default privileges give
    that grantee): granted by hand, or a default revoked by hand (REVOKE ... FROM PUBLIC). A grant's
    list is exact for its grantee and leaves the others alone, so these are listed as unmanaged:
    nothing about who may read a managed object is invisible."""
    strays = [to for to, have in acl.items() if to not in named and have not in unasked(to)]
    strays += [to for to in (owner, PUBLIC) if to not in acl and to not in named and frozenset() not in unasked(to)]
    return sorted(set(strays))


def _unmanaged_grants(db: model.Database, grants: dict[tuple[ObjectRef, str], Privileges], live: LiveDatabase,
                      planned: Planned, pruned: set[str], owners: dict[ObjectRef, tuple[str, str]],
                      server_version: int) -> list[Address]:
    """Grants on the live objects the file declares that neither it nor a pruned role accounts for."""
    acls: dict[ObjectRef, dict[str, Privileges]] = defaultdict(dict)
    for (ref, to), have in live.acl.items():
        acls[ref][to] = have
    named: dict[ObjectRef, set[str]] = defaultdict(set)
    for ref, to in grants:
        named[ref].add(to)
    schemas = {s.name for s in db.schemas}
    found = []
    for ref, owner in sorted(live.owners.items(), key=lambda item: (item[0].kind, item[0].label())):
        if not (ref.name in schemas if ref.kind == "schema" else (ref.schema, ref.name) in planned.get(ref.kind, {})):
            continue  # an object the file does not declare is listed as unmanaged itself
        owner = owners[ref][1] if ref in owners else owner

        def unasked(to: str, ref: ObjectRef = ref, owner: str = owner) -> tuple[Privileges, ...]:
            implicit = implicit_acl(ref.kind, owner, to, server_version)
            return (implicit, new_object_acl(ref, owner, to, live, server_version),
                    implicit | initdb_acl(ref.kind, ref.name, to, server_version))

        found += [_grant_address(db.name, ref, to)
                  for to in stray_grantees(acls.get(ref, {}), named[ref] | pruned, owner, unasked)]
    return found


def diff_privileges(db: model.Database, live: LiveDatabase, cluster: LiveCluster, canon: Canon,
                    planned: Planned, roles: list[model.Role]) -> Result:
    """Object privileges and default privileges in one database, and pruning for `prune: true` roles."""
    result = Result()
    # Grants run after the owners have changed, so they start from the ACL that leaves.
    changes = _owner_changes(db, live, planned)
    live = replace(live, acl=owner_transferred(live.acl, changes))
    grants = _desired_grants(db, live, cluster, canon, planned)
    defaults = _desired_default_privileges(db, cluster)
    owners = {(ObjectRef("schema", None, s.name)): s.owner or cluster.current_user
              for s in db.schemas if s.name not in live.schemas}
    owners |= {ObjectRef(kind, schema, name): owner or cluster.current_user
               for kind, objects in planned.items() for (schema, name), owner in objects.items()
               if (schema, name) not in live.objects.get(kind, set())}
    result.extend(_diff_object_grants(db.name, grants, live, owners, cluster.server_version))
    result.extend(_diff_default_privileges(db.name, defaults, live, cluster.server_version))
    pruned = {r.name for r in roles if r.prune}
    result.extend(_prune_privileges(db.name, pruned, grants, defaults, live, owners, cluster.server_version))
    result.unmanaged += _unmanaged_grants(db, grants, live, planned, pruned, changes, cluster.server_version)
    return result
