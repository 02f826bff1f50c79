"""What a type dropped and created again takes along (pure): PostgreSQL refuses DROP TYPE and DROP
DOMAIN while a domain or a composite type uses the type. Those users (and their own users) are
dropped first, the deepest user first, and created again from the files once what they use exists
again, all in the type phase of the database's one transaction, the way views are dropped and
created around what they read. A user the files do not declare could not come back: when its
schema prunes, its drop simply moves ahead; otherwise the plan is refused before anything changes,
as it is when a table column uses a user (its drop would run before any table changes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from psycopg import sql

from erpprov.core import model
from erpprov.core.actions import Action, Hazard, Op, Phase
from erpprov.core.address import Address
from erpprov.diff.types import created_again
from erpprov.errors import ErpprovError
from erpprov.postgres.ddl import render

Key = tuple[str, str]
User = tuple[str, str, str, str]  # (kind, schema, name, column): `SchemaObjects.type_users`

_DROPS = -100  # ahead of every type's own change (Action.order within Phase.TYPE), users first


def take_type_users_along(actions: list[Action], users: Mapping[Key, set[User]], declared: Sequence[model.Type],
                          domains: Sequence[Key], database: str, functions: Sequence[model.Function]
                          ) -> list[Action]:
    """``actions``: the database's plan, its prunes among them; ``users``: the live types' users;
    ``domains``: the live domains (dropped with DROP DOMAIN). The plan with the types that use a
    type it drops and creates again dropped ahead of it and created again after it."""
    recreated = [_key(a) for a in actions if a.phase is Phase.TYPE and a.op is Op.REPLACE and a.kind == "type"]
    height: dict[Key, int] = {}

    def visit(key: Key, path: frozenset[Key]) -> int:  # how many levels of users stand on ``key``
        above = [(u[1], u[2]) for u in users.get(key, ()) if u[0] == "type" and (u[1], u[2]) not in path]
        levels = [visit(u, path | {u}) + 1 for u in above]
        for user, level in zip(above, levels, strict=True):
            height[user] = max(height.get(user, 0), level - 1)
        return max(levels, default=0)

    for key in recreated:
        visit(key, frozenset({key}))
    if not height:
        return actions
    index = {(t.schema_, t.name): i for i, t in enumerate(declared)}
    out = [a for a in actions if not (a.kind == "type" and _key(a) in height and a.phase < Phase.DROP_TYPE)]
    for key, level in sorted(height.items()):
        columns = sorted(f"{u[1]}.{u[2]}.{u[3]}" for u in users.get(key, ()) if u[0] == "column")
        if columns:  # its drop runs before any table changes: PostgreSQL would refuse it half-way
            raise ErpprovError(f"type {'.'.join(key)} uses a type this apply drops and creates again, so it would "
                               f"be dropped and created again too, but column {', '.join(columns)} uses it",
                               hint="change the columns to another type first (apply that), then the types")
        pruned = next((a for a in out if a.kind == "type" and _key(a) == key and a.op is Op.DELETE), None)
        if pruned is not None:
            out[out.index(pruned)] = replace(pruned, phase=Phase.TYPE, order=_DROPS + level)
            continue
        if key not in index:
            raise ErpprovError(f"type {'.'.join(key)} uses a type this apply drops and creates again, and the "
                               "files do not declare it, so it could not be created again",
                               hint="declare it in the files, or let its schema prune")
        word = "DOMAIN" if key in domains else "TYPE"
        out.append(Action(Address("type", database, *key), Op.DELETE, Phase.TYPE, database=database,
                          sql=(render(sql.SQL("DROP {} {}").format(sql.SQL(word), sql.Identifier(*key))),),
                          before={}, hazards=(Hazard.BREAKS_CALLERS,), order=_DROPS + level,
                          note="uses a type dropped and created again: dropped first, created again after it"))
        out += created_again(declared, index[key], database, functions)
    return out


def _key(action: Action) -> Key:
    return action.address.parts[1], action.address.parts[2]
