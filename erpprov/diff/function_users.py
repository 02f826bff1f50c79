"""What a function dropped and created again takes along besides views (pure): PostgreSQL refuses
DROP FUNCTION while a trigger, a column default or a check constraint calls it. The function's
action drops them first and, for defaults and checks, puts them back from the files right after
the new function exists; triggers come back in the trigger phase (the caller leaves them out of
the live triggers, so the trigger diff creates them). All of it runs in the database's one
transaction. A caller the files do not declare could not be brought back: the plan is refused."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace

from psycopg import sql

from erpprov.core.actions import Action, Op, Phase, Statement
from erpprov.core.tables import TablesState
from erpprov.errors import ErpprovError
from erpprov.postgres import table_ddl
from erpprov.postgres.ddl import ident, render

Key = tuple[str, str]
User = tuple[str, str, str, str]  # (kind, schema, table, name)
TriggerKey = tuple[str, str, str]


def take_callers_along(actions: list[Action], users: Mapping[Key, set[User]], triggers: Collection[TriggerKey],
                       tables: TablesState) -> tuple[list[Action], set[TriggerKey]]:
    """``actions``: the function diff's; ``triggers``: the declared ones; ``tables``: the desired
    tables. The actions with their callers dropped and put back, and the triggers to create again."""
    taken: set[TriggerKey] = set()
    out: list[Action] = []
    for action in actions:
        key = (action.address.parts[1], action.address.parts[2])
        callers = sorted(users.get(key, ())) if action.op is Op.REPLACE and action.phase is Phase.FUNCTION else []
        if not callers:
            out.append(action)
            continue
        _refuse_unmanaged(key, callers, triggers, tables)
        before: list[Statement] = []
        after: list[Statement] = []
        for kind, schema, table, name in callers:
            if kind == "trigger":
                before.append(render(sql.SQL("DROP TRIGGER {} ON {}").format(ident(name), ident(schema, table))))
                taken.add((schema, table, name))
            elif kind == "default":
                before.append(table_ddl.alter_column(schema, table, name, sql.SQL("DROP DEFAULT")))
                column = tables.tables[(schema, table)].column(name)
                if column is not None and (column.default_source or column.default):
                    after.append(table_ddl.alter_column(schema, table, name, sql.SQL("SET DEFAULT {}").format(
                        table_ddl.expression(column.default_source or column.default or ""))))
            else:  # a check constraint: _refuse_unmanaged made sure the files declare it
                before.append(table_ddl.drop_constraint(schema, table, name))
                after += [table_ddl.add_constraint(schema, table, c)
                          for c in tables.tables[(schema, table)].constraints if c.name == name]
        names = ", ".join(f"{kind} {schema}.{table}.{name}" for kind, schema, table, name in callers)
        note = f"{action.note}; its callers {names} are dropped first and created again from the files"
        out.append(replace(action, sql=(*before, *action.sql, *after), note=note))
    return out, taken


def _refuse_unmanaged(function: Key, callers: list[User], triggers: Collection[TriggerKey],
                      tables: TablesState) -> None:
    """A caller the files cannot bring back would be lost with the old function."""
    lost = []
    for kind, schema, table, name in callers:
        declared = tables.tables.get((schema, table))
        if kind == "trigger":
            ok = (schema, table, name) in triggers
        elif kind == "default":
            ok = declared is not None and declared.column(name) is not None
        elif kind == "constraint":
            ok = declared is not None and any(c.name == name for c in declared.constraints)
        else:  # policies, index expressions, generated columns and domain checks are not taken along yet
            ok = False
        if not ok:
            lost.append(f"{kind} {name} on {schema}.{table}")
    if lost:
        raise ErpprovError(
            f"the function {function[0]}.{function[1]} gets new arguments or a new result, so it is dropped and "
            f"created again, but {', '.join(lost)} call(s) it and cannot be created again from the files",
            hint="declare them in the files, or drop them (or change the function in two steps) first")
