"""Every role a play names (an owner, a grantee, a role it is a member of, a policy's role) must
exist on the server or be declared present in the play. Otherwise apply would stop at the first
statement naming it, after what ran before had committed (a database created, a role altered):
apply refuses the play before changing anything, naming each role and where the file names it.
A plan only warns: an earlier play of the same host may create the role, and its plan runs before
that play is applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from erpprov.core import model
from erpprov.core.cluster import LiveCluster
from erpprov.errors import ErpprovError

# Role specifications that name no role; predefined roles (pg_*) exist on every server.
_NOT_ROLES = frozenset({"public", "current_user", "session_user", "current_role"})


def unknown_roles(play: model.Play, cluster: LiveCluster, *, applying: bool) -> str | None:
    """None when every role the play names is live or declared present. Otherwise, inside apply
    (an earlier play of the host has run by then), an error before anything changes; in a plan,
    the warning to show."""
    present = {r.name for r in play.roles if r.state == "present"}
    dropped = {r.name for r in play.roles if r.state == "absent"}
    unknown: dict[str, list[str]] = {}
    for role, where in role_references(play):
        if role.lower() in _NOT_ROLES or role.startswith("pg_") or role in present:
            continue
        if role in dropped or role not in cluster.roles:
            unknown.setdefault(role, []).append(where)
    if not unknown:
        return None
    problem = "the play names roles that do not exist: " + "; ".join(
        f"{role} ({'declared absent' if role in dropped else 'no such role'}), named by "
        f"{'; '.join(places[:3])}{f' and {len(places) - 3} more' if len(places) > 3 else ''}"
        for role, places in unknown.items())
    if applying:
        raise ErpprovError(problem + "; nothing was changed",
                           hint="declare each under `roles:` (or create it on the server), or fix the name")
    return problem + " (apply refuses this before changing anything, unless an earlier play of the host creates them)"


def role_references(play: model.Play) -> Iterator[tuple[str, str]]:
    """(role, where) for every role the play names, in the order written."""
    for role in play.roles:
        for membership in role.member_of:
            yield membership.role, f"role {role.name} (member_of)"
    for db in play.databases:
        where = f"database {db.name}"
        yield from _of(db, where)
        yield from _defaults(db.default_privileges, where)
        for schema in db.schemas:
            yield from _of(schema, f"{where}, schema {schema.name}")
            yield from _defaults(schema.default_privileges, f"{where}, schema {schema.name}")
        kinds: Iterable[tuple[str, list[model.Table] | list[model.Type] | list[model.Sequence] | list[model.View]
                              | list[model.MaterializedView] | list[model.Function] | list[model.Procedure]]] = (
            ("table", db.tables), ("type", db.types), ("sequence", db.sequences), ("view", db.views),
            ("materialized view", db.materialized_views), ("function", db.functions), ("procedure", db.procedures))
        for kind, objects in kinds:
            for obj in objects:
                place = f"{where}, {kind} {obj.schema_}.{obj.name}"
                yield from _of(obj, place)
                for policy in getattr(obj, "policies", ()):
                    for role in policy.to:
                        yield role, f"{place}, policy {policy.name}"


def _of(obj: model.Database | model.Schema | model.Table | model.Type | model.Sequence | model.View
        | model.MaterializedView | model.Function | model.Procedure, where: str) -> Iterator[tuple[str, str]]:
    if obj.owner:
        yield obj.owner, f"{where} (owner)"
    for grant in obj.grants:
        yield grant.to, f"{where} (grant)"


def _defaults(privileges: list[model.DefaultPrivilege], where: str) -> Iterator[tuple[str, str]]:
    for default in privileges:
        yield default.to, f"{where} (default privileges)"
        if default.for_role:
            yield default.for_role, f"{where} (default privileges for_role)"
