"""The diff of enum types (pure).

A value the file adds goes where the file puts it (ADD VALUE BEFORE/AFTER), in an action that
runs outside the database's transaction: PostgreSQL lets no transaction use an enum value it
added itself, and the same apply may well set a default or a check to it. A value removed or
moved means recreating the type, which PostgreSQL refuses while anything uses it: a hazard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from psycopg import sql

from erpprov.core import model
from erpprov.core.actions import Action, Hazard, Op, Phase
from erpprov.core.address import Address
from erpprov.core.domain_calls import waiting_checks, waiting_default, waits
from erpprov.core.schema_objects import CompositeState, DomainState, EnumState
from erpprov.diff.result import Result
from erpprov.diff.schema_objects import owner_and_comment, renamed
from erpprov.postgres import schema_ddl as ddl
from erpprov.postgres.ddl import render

Key = tuple[str, str]


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
    return EnumState(declared.schema_, declared.name, tuple(declared.enum or ()), declared.owner, declared.comment,
                     declared.renamed_from)


def diff_types(declared: list[model.Type], live: dict[tuple[str, str], EnumState], database: str) -> Result:
    """The enum types of ``declared`` (composite types and domains: `diff_composites`, `diff_domains`)."""
    result = Result()
    for want in map(_state, [t for t in declared if t.enum is not None]):
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


def _recreate(address: Address, database: str, drop: sql.Composable, create: sql.Composable,
              declared: model.Type, before: dict[str, object], after: dict[str, object], why: str,
              order: int) -> Action:
    extra, _, _ = owner_and_comment("TYPE" if declared.attributes else "DOMAIN", declared.schema_, declared.name,
                                    declared.owner, declared.comment, None, None)
    return Action(address, Op.REPLACE, Phase.TYPE, database=database,
                  sql=tuple(render(s) for s in [drop, create, *extra]), before=before, after=after,
                  hazards=(Hazard.BREAKS_CALLERS,), order=order,
                  note=f"{why}: dropped and created again, which PostgreSQL refuses while a column or function uses it")


# Action.order within Phase.TYPE: enums, then domains (over enums), then composite types (over
# both, and over the composite types declared before them).
_DOMAINS, _COMPOSITES = 2, 3


def created_again(declared: Sequence[model.Type], index: int, database: str,
                  functions: Sequence[model.Function]) -> list[Action]:
    """The domain or composite type ``declared[index]`` created from the file after a drop that took
    it along (`diff.type_users`): at its usual place among the types, so after what it uses."""
    t = declared[index]
    key, address = (t.schema_, t.name), Address("type", database, t.schema_, t.name)
    extra, _, stated = owner_and_comment("TYPE" if t.attributes else "DOMAIN", *key, t.owner, t.comment, None, None)
    if t.attributes:
        return [Action(address, Op.CREATE, Phase.TYPE, database=database,
                       sql=tuple(render(s) for s in [ddl.create_composite(t), *extra]),
                       after={"attributes": [a.name + " " + a.type for a in t.attributes]} | stated,
                       order=_COMPOSITES + index, note="dropped with a type it uses, and created again")]
    return [Action(address, Op.CREATE, Phase.TYPE, database=database,
                   sql=tuple(render(s) for s in [ddl.create_domain(t, functions=functions), *extra]),
                   after={"base_type": t.base_type} | stated, order=_DOMAINS,
                   note="dropped with a type it uses, and created again"),
            *_calls_later(address, database, t, functions)]


def diff_composites(declared: list[model.Type], canonical: Mapping[Key, CompositeState],
                    live: Mapping[Key, CompositeState], database: str) -> Result:
    """Attributes added (at the end), dropped or retyped in place; any other order recreates the type."""
    result = Result()
    for index, t in enumerate(declared):
        if t.attributes is None:
            continue
        key, address = (t.schema_, t.name), Address("type", database, t.schema_, t.name)
        want, have = canonical.get(key), live.get(key)
        name = sql.Identifier(*key)
        shown: dict[str, object] = {"attributes": [" ".join(filter(None, a)) for a in want.attributes] if want
                 else [a.name + " " + a.type for a in t.attributes]}
        if have is None:
            extra, _, stated = owner_and_comment("TYPE", *key, t.owner, t.comment, None, None)
            result.actions.append(Action(address, Op.CREATE, Phase.TYPE, database=database,
                                         sql=tuple(render(s) for s in [ddl.create_composite(t), *extra]),
                                         after=shown | stated, order=_COMPOSITES + index))
            continue
        statements: list[sql.Composable] = []
        before: dict[str, object] = {"attributes": [" ".join(filter(None, a)) for a in have.attributes]}
        if want is not None and want.attributes != have.attributes:
            wanted = {a[0]: a for a in want.attributes}
            kept = [a[0] for a in have.attributes if a[0] in wanted]
            if kept != [a[0] for a in want.attributes][:len(kept)]:  # ADD ATTRIBUTE only appends
                result.actions.append(_recreate(address, database, sql.SQL("DROP TYPE {}").format(name),
                                                ddl.create_composite(t), t, before, shown, "its attributes move",
                                                _COMPOSITES + index))
                continue
            by_name = {a.name: a for a in t.attributes}
            statements += [sql.SQL("ALTER TYPE {} DROP ATTRIBUTE {}").format(name, sql.Identifier(a[0]))
                           for a in have.attributes if a[0] not in wanted]
            statements += [sql.SQL("ALTER TYPE {} ALTER ATTRIBUTE {} TYPE {}").format(
                name, sql.Identifier(a[0]), sql.SQL(by_name[a[0]].type))
                for a in have.attributes if a[0] in wanted and wanted[a[0]] != a]
            statements += [sql.SQL("ALTER TYPE {} ADD ATTRIBUTE {}").format(name, ddl.attribute(by_name[a[0]]))
                           for a in want.attributes if a[0] not in {h[0] for h in have.attributes}]
        extra, was, now = owner_and_comment("TYPE", *key, t.owner, t.comment, have.owner, have.comment)
        if statements or extra:
            result.actions.append(Action(address, Op.UPDATE, Phase.TYPE, database=database,
                                         sql=tuple(render(s) for s in statements + extra),
                                         before=(before if statements else {}) | was,
                                         after=(shown if statements else {}) | now, order=_COMPOSITES + index))
    return result


def _domain_shape(state: DomainState) -> dict[str, object]:
    return {"base_type": state.base, "default": state.default, "not_null": state.not_null,
            "checks": [f"{n} {d}" for n, d in state.checks], "collation": state.collation}


def _calls_later(address: Address, database: str, declared: model.Type,
                 functions: Sequence[model.Function]) -> list[Action]:
    """The default and checks of a domain being created that call the file's functions: added
    after those (Phase.DOMAIN_CALLS), since the functions may take or return the domain."""
    statements = ddl.domain_calls(declared, functions)
    if not statements:
        return []
    after: dict[str, object] = {"default": declared.default} if waiting_default(declared, functions) else {}
    if checks := waiting_checks(declared, functions):
        after["checks"] = [c.expression for c in checks]
    return [Action(address, Op.UPDATE, Phase.DOMAIN_CALLS, database=database, sql=tuple(map(render, statements)),
                   before={}, after=after, note="calls functions of this apply: added once they exist")]


def diff_domains(declared: list[model.Type], canonical: Mapping[Key, DomainState], live: Mapping[Key, DomainState],
                 database: str, functions: Sequence[model.Function]) -> Result:
    """Default, NOT NULL and checks altered in place; another base type or collation recreates it.
    What calls one of ``functions`` (the file's) waits for them: in its own action when the domain
    is created, and the whole change when it is altered."""
    result = Result()
    for t in declared:
        if t.base_type is None:
            continue
        key, address = (t.schema_, t.name), Address("type", database, t.schema_, t.name)
        want, have = canonical.get(key), live.get(key)
        name = sql.Identifier(*key)
        after: dict[str, object] = _domain_shape(want) if want else {"base_type": t.base_type}
        if have is None:
            extra, _, stated = owner_and_comment("DOMAIN", *key, t.owner, t.comment, None, None)
            result.actions.append(Action(address, Op.CREATE, Phase.TYPE, database=database,
                                         sql=tuple(render(s) for s in [ddl.create_domain(t, functions=functions),
                                                                       *extra]),
                                         after=after | stated, order=_DOMAINS))
            result.actions += _calls_later(address, database, t, functions)
            continue
        before = _domain_shape(have)
        if want is not None and (want.base, want.collation) != (have.base, have.collation):
            result.actions.append(_recreate(address, database, sql.SQL("DROP DOMAIN {}").format(name),
                                            ddl.create_domain(t, functions=functions), t, before, after,
                                            "another base type or collation", _DOMAINS))
            result.actions += _calls_later(address, database, t, functions)
            continue
        statements: list[sql.Composable] = []
        hazards: tuple[Hazard, ...] = ()
        if want is not None:
            if want.default != have.default:
                statements.append(sql.SQL("ALTER DOMAIN {} DROP DEFAULT").format(name) if t.default is None else
                                  sql.SQL("ALTER DOMAIN {} SET DEFAULT ({})").format(name, sql.SQL(t.default)))
            if want.not_null != have.not_null:
                statements.append(sql.SQL("ALTER DOMAIN {} {} NOT NULL").format(
                    name, sql.SQL("SET" if want.not_null else "DROP")))
                hazards += (Hazard.VALIDATES_DATA,) if want.not_null else ()
            wanted, held = dict(want.checks), dict(have.checks)
            statements += [sql.SQL("ALTER DOMAIN {} DROP CONSTRAINT {}").format(name, sql.Identifier(n))
                           for n, d in have.checks if wanted.get(n) != d]
            added = [n for n, d in want.checks if held.get(n) != d]
            statements += [sql.SQL("ALTER DOMAIN {} ADD CONSTRAINT {} {}").format(
                name, sql.Identifier(n), sql.SQL(d)) for n, d in want.checks if n in added]
            hazards += (Hazard.VALIDATES_DATA,) if added and Hazard.VALIDATES_DATA not in hazards else ()
        extra, was, now = owner_and_comment("DOMAIN", *key, t.owner, t.comment, have.owner, have.comment)
        if statements or extra:
            changed = {k for k in after if after[k] != before[k]}
            result.actions.append(Action(
                address, Op.UPDATE, Phase.DOMAIN_CALLS if waits(t, functions) else Phase.TYPE, database=database,
                sql=tuple(render(s) for s in statements + extra),
                before={k: v for k, v in before.items() if k in changed} | was,
                after={k: v for k, v in after.items() if k in changed} | now, hazards=hazards, order=_DOMAINS))
    return result
