"""What a function dropped and created again takes along besides views (pure): PostgreSQL refuses
DROP FUNCTION while a trigger, a column or domain default, a check constraint, a row-level security
policy or an index expression calls it. The function's action drops them first and puts the others
back from the files right after the new function exists; triggers come back in the trigger phase (the
caller leaves them out of the live triggers, so the trigger diff creates them). All of it runs in the database's one
transaction. A caller the files do not declare could not be brought back: the plan is refused."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace

from psycopg import sql

from erpprov.core.actions import Action, Op, Phase, Statement
from erpprov.core.tables import TablesState, TableState
from erpprov.diff.tables import constraints, indexes, policies
from erpprov.errors import ErpprovError
from erpprov.postgres import table_ddl
from erpprov.postgres.ddl import ident, render

Key = tuple[str, str]
User = tuple[str, str, str, str]  # (kind, schema, table, name)
TriggerKey = tuple[str, str, str]


def take_callers_along(actions: list[Action], users: Mapping[Key, set[User]], triggers: Collection[TriggerKey],
                       tables: TablesState, domains: Mapping[Key, str | None]) -> tuple[list[Action], set[TriggerKey]]:
    """``actions``: the function diff's; ``triggers``: the declared ones; ``tables``: the desired
    tables; ``domains``: the declared domains' defaults. The actions with their callers dropped and
    put back, and the triggers to create again."""
    taken: set[TriggerKey] = set()
    out: list[Action] = []
    for action in actions:
        key = live_key(action)
        callers = sorted(users.get(key, ())) if action.op is Op.REPLACE and action.phase is Phase.FUNCTION else []
        if not callers:
            out.append(action)
            continue
        _refuse_unmanaged(key, callers, triggers, tables, domains)
        before: list[Statement] = []
        after: list[Statement] = []
        for kind, schema, table, name in callers:
            if kind == "trigger":
                before.append(render(sql.SQL("DROP TRIGGER {} ON {}").format(ident(name), ident(schema, table))))
                taken.add((schema, table, name))
            elif kind == "domain":  # its default (the only part of a domain the function diff takes along)
                domain = ident(schema, table)
                before.append(render(sql.SQL("ALTER DOMAIN {} DROP DEFAULT").format(domain)))
                default = domains[(schema, table)]
                after += [render(sql.SQL("ALTER DOMAIN {} SET DEFAULT ({})").format(domain, sql.SQL(default)))
                          ] if default is not None else []
            else:
                drop, create = _around(kind, schema, table, name, tables.tables[(schema, table)])
                before.append(drop)
                after += create
        names = ", ".join(f"{kind} {schema}.{table}.{name}" for kind, schema, table, name in callers)
        note = f"{action.note}; its callers {names} are dropped first and created again from the files"
        out.append(replace(action, sql=(*before, *action.sql, *after), note=note))
    return out, taken


def live_key(action: Action) -> Key:
    """The (schema, signature) of the live function a function action works on: the one it is
    renamed from, or its old signature when its arguments are renamed (its callers know it by
    that until the action runs)."""
    schema, signature = action.address.parts[1], action.address.parts[2]
    before = action.before or {}
    if isinstance(before.get("signature"), str):  # its arguments renamed
        return (schema, before["signature"])
    old = before.get("name")
    return (schema, f"{old}{signature[signature.index('('):]}") if isinstance(old, str) else (schema, signature)


def retriggered(actions: list[Action], taken: Collection[TriggerKey]) -> list[Action]:
    """The trigger diff's actions, those that create a taken trigger again saying why it is new."""
    return [replace(a, note="dropped with the function it calls (new arguments or result), created again from the file")
            if a.address.kind == "trigger" and tuple(a.address.parts[1:]) in taken else a for a in actions]


def _around(kind: str, schema: str, table: str, name: str, declared: TableState) -> tuple[Statement, list[Statement]]:
    """The statement that drops a caller on a declared table, and those that create it again as the
    files say (nothing, for a default the files no longer set)."""
    if kind == "default":
        column = declared.column(name)
        text = column.default_source or column.default if column is not None else None
        return (table_ddl.alter_column(schema, table, name, sql.SQL("DROP DEFAULT")),
                [table_ddl.alter_column(schema, table, name, sql.SQL("SET DEFAULT {}").format(
                    table_ddl.expression(text)))] if text else [])
    if kind == "constraint":
        return (table_ddl.drop_constraint(schema, table, name),
                [s for c in declared.constraints if c.name == name for s in constraints.creating(schema, table, c)])
    if kind == "policy":
        return policies.drop(schema, table, name), [s for p in declared.policies if p.name == name
                                                    for s in policies.creating(schema, table, p)]
    return table_ddl.drop_index(schema, name), [s for i in declared.indexes if i.name == name
                                                for s in indexes.creating(schema, table, i)]


def _declares(kind: str, schema: str, table: str, name: str, triggers: Collection[TriggerKey],
              declared: TableState | None, domains: Collection[Key]) -> bool:
    if kind == "trigger":
        return (schema, table, name) in triggers
    if kind == "domain":
        return (schema, table) in domains
    if declared is None:
        return False
    if kind == "default":
        return declared.column(name) is not None
    owned = {"constraint": [c.name for c in declared.constraints], "policy": [p.name for p in declared.policies],
             "index": [i.name for i in declared.indexes]}
    # generated columns and domain checks are not taken along: PostgreSQL cannot put them back in place
    return name in owned.get(kind, ())


def _refuse_unmanaged(function: Key, callers: list[User], triggers: Collection[TriggerKey],
                      tables: TablesState, domains: Collection[Key]) -> None:
    """A caller the files cannot bring back would be lost with the old function."""
    lost = [f"{kind} {name} on {schema}.{table}" for kind, schema, table, name in callers
            if not _declares(kind, schema, table, name, triggers, tables.tables.get((schema, table)), domains)]
    if lost:
        raise ErpprovError(
            f"the function {function[0]}.{function[1]} gets new arguments or a new result, so it is dropped and "
            f"created again, but {', '.join(lost)} call(s) it and cannot be created again from the files",
            hint="declare them in the files, or drop them (or change the function in two steps) first")
