"""The diff of enum types (pure).

A value the file adds goes where the file puts it (ADD VALUE BEFORE/AFTER), in an action that
runs outside the database's transaction: PostgreSQL lets no transaction use an enum value it
added itself, and the same apply may well set a default or a check to it. A value removed or
moved means recreating the type, which PostgreSQL refuses while anything uses it: a hazard.
"""

from __future__ import annotations

from psycopg import sql

from erpprov.core import model
from erpprov.core.actions import Action, Hazard, Op, Phase
from erpprov.core.address import Address
from erpprov.core.schema_objects import EnumState
from erpprov.diff.result import Result
from erpprov.diff.schema_objects import owner_and_comment, renamed
from erpprov.postgres import schema_ddl as ddl
from erpprov.postgres.ddl import render


def additions(have: tuple[str, ...], want: tuple[str, ...]) -> list[tuple[str, str | None, bool]] | None:
    """The ADD VALUEs that turn ``have`` into ``want`` as (value, neighbour, before), in the order
    to run them; None when values were removed or reordered (only recreating does that)."""
    if [v for v in want if v in have] != list(have):
        return None
    first = next((i for i, v in enumerate(want) if v in have), len(want))
    steps: list[tuple[str, str | None, bool]] = []
    for i, value in enumerate(want):
        if value in have:
            continue
        if i < first:  # ahead of every existing value: each one before the first of them, in order
            steps.append((value, want[first] if first < len(want) else None, True))
        else:
            steps.append((value, want[i - 1], False))
    return steps


def _state(declared: model.Type) -> EnumState:
    return EnumState(declared.schema_, declared.name, tuple(declared.enum), declared.owner, declared.comment,
                     declared.renamed_from)


def diff_types(declared: list[model.Type], live: dict[tuple[str, str], EnumState], database: str) -> Result:
    result = Result()
    for want in map(_state, declared):
        address = Address("type", database, want.schema, want.name)
        have, rename = renamed("TYPE", want.schema, want.name, want.renamed_from, live)
        if have is None:
            statements = [ddl.create_enum(want)]
            extra, _, after = owner_and_comment("TYPE", want.schema, want.name, want.owner, want.comment, None, None)
            result.actions.append(Action(address, Op.CREATE, Phase.TYPE, database=database,
                                         sql=tuple(render(s) for s in statements + extra),
                                         after={"enum": list(want.values), **after}))
            continue
        steps = additions(have.values, want.values)
        statements = list(rename)
        if steps is None:
            statements += [sql.SQL("DROP TYPE {}").format(sql.Identifier(want.schema, want.name)),
                           ddl.create_enum(want)]
        extra, before, after = owner_and_comment("TYPE", want.schema, want.name, want.owner, want.comment,
                                                 None if steps is None else have.owner, have.comment)
        statements += extra
        if rename:
            before["name"], after["name"] = have.name, want.name
        if steps is None:
            result.actions.append(Action(
                address, Op.REPLACE, Phase.TYPE, database=database, sql=tuple(render(s) for s in statements),
                before={"enum": list(have.values), **before}, after={"enum": list(want.values), **after},
                hazards=(Hazard.BREAKS_CALLERS,),
                note="values removed or reordered: the type is dropped and created again, which PostgreSQL "
                     "refuses while a column, default or function uses it"))
            continue
        if statements:
            result.actions.append(Action(address, Op.UPDATE, Phase.TYPE, database=database,
                                         sql=tuple(render(s) for s in statements), before=before, after=after))
        if steps:
            result.actions.append(Action(
                Address("enum_values", database, want.schema, want.name), Op.UPDATE, Phase.TYPE, database=database,
                sql=tuple(render(ddl.add_enum_value(want.schema, want.name, *step)) for step in steps),
                before={"enum": list(have.values)}, after={"enum": list(want.values)}, transactional=False,
                order=1, note="committed on its own before the rest: a transaction cannot use values it added"))
    return result
