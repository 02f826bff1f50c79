"""The diff of functions and procedures (pure), compared as the pg_get_function_* functions print
both sides. A new body or attribute is CREATE OR REPLACE, which keeps the owner, grants and
dependents. New arguments, defaults or result type are a new function to PostgreSQL: the old one
is dropped and the new one created (hazard `breaks_callers`: callers, triggers and views that use
it break; `diff.views` and `diff.function_users` take them along), its owner, comment and grants
given back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from psycopg import sql

from erpprov.core import model
from erpprov.core.actions import Action, Hazard, Op, Phase
from erpprov.core.address import Address
from erpprov.core.cluster import ObjectRef, Privileges
from erpprov.core.schema_objects import FunctionState
from erpprov.diff.privileges import grant_statements
from erpprov.diff.result import Result, comment_changes
from erpprov.diff.schema_objects import declared_renames
from erpprov.postgres import function_ddl
from erpprov.postgres.ddl import render

# As pg_dump does: a body is checked when it runs, not when it is created, so a function may use
# tables and views this apply creates after it (functions come first: defaults and checks call them).
_UNCHECKED = sql.SQL("SET LOCAL check_function_bodies = off")


def _shape(state: FunctionState) -> dict[str, object]:
    return {"arguments": state.arguments, "result": state.result, "language": state.language, "body": state.body,
            **{name: list(value) if isinstance(value, tuple) else value for name, value in state.attributes}}


def _owner_and_comment(clause: sql.Composable, owner: str | None, comment: str | None, have_owner: str | None,
                       have_comment: str | None) -> list[sql.Composable]:
    statements: list[sql.Composable] = []
    if owner is not None and owner != have_owner:
        statements.append(sql.SQL("ALTER {} OWNER TO {}").format(clause, sql.Identifier(owner)))
    if comment_changes(comment, have_comment):
        statements.append(sql.SQL("COMMENT ON {} IS {}").format(clause, sql.Literal(comment or None)))
    return statements


def diff_functions(declared: list[function_ddl.AnyFunction], canonical: Mapping[int, FunctionState],
                   live: Mapping[tuple[str, str], FunctionState],
                   acl: Mapping[tuple[str, str], Mapping[str, Privileges]], database: str) -> Result:
    """``canonical``: by position in ``declared``; ``acl``: each live function's grantees."""
    result = Result()
    for index, function in enumerate(declared):
        procedure = isinstance(function, model.Procedure)
        kind = "procedure" if procedure else "function"
        want = canonical.get(index)
        if want is None:  # its types do not exist yet: as written, compared from the next plan on
            result.actions.append(Action(
                Address(kind, database, function.schema_, function.name + "(…)"), Op.CREATE, Phase.FUNCTION,
                database=database, sql=(render(_UNCHECKED), render(function_ddl.create(function, or_replace=True))),
                after={"body": function.body}, note="its types are created by this apply: compared once they exist"))
            continue
        address = Address(kind, database, want.schema, want.signature)
        clause = function_ddl.clause(kind.upper(), want.schema, want.name, want.identity)
        have, statements = _renamed(function, want, live)
        renamed = bool(statements)
        if have is None:
            statements = [_UNCHECKED, function_ddl.create(function), *_owner_and_comment(
                clause, function.owner, function.comment, None, None)]
            result.actions.append(Action(address, Op.CREATE, Phase.FUNCTION, database=database,
                                         sql=tuple(render(s) for s in statements), after=_shape(want)))
            continue
        before, after = _shape(have), _shape(want)
        changed = {k for k in after if before[k] != after[k]}
        op, note = Op.UPDATE, None
        hazards: tuple[Hazard, ...] = ()
        if have.procedure != want.procedure or {"arguments", "result"} & changed:
            op, hazards = Op.REPLACE, (Hazard.BREAKS_CALLERS,)
            note = "new arguments or result: dropped and created again, its owner, comment and grants given back"
            statements += [_UNCHECKED, sql.SQL("DROP {}").format(clause), function_ddl.create(function)]
            statements += _given_back(clause, ObjectRef("function", want.schema, want.signature), have,
                                      acl.get((want.schema, have.signature if not renamed else
                                               f"{function.renamed_from}({want.identity})"), {}))
        elif changed:
            statements += [_UNCHECKED, function_ddl.create(function, or_replace=True)]
        statements += _owner_and_comment(clause, function.owner, function.comment, have.owner, have.comment)
        if statements:
            before |= {"owner": have.owner, "comment": have.comment}
            after |= {"owner": function.owner, "comment": function.comment}
            shown = changed | {k for k in ("owner", "comment") if after[k] is not None and after[k] != before[k]}
            if renamed:
                before["name"], after["name"], shown = function.renamed_from, want.name, shown | {"name"}
            elif have.signature != want.signature:  # its arguments renamed: the live one goes by its old signature
                before["signature"], after["signature"] = have.signature, want.signature
                shown |= {"signature"}
            result.actions.append(Action(
                address, op, Phase.FUNCTION, database=database, sql=tuple(render(s) for s in statements),
                before={k: v for k, v in before.items() if k in shown},
                after={k: v for k, v in after.items() if k in shown}, hazards=hazards, note=note))
    return result


def _renamed(function: function_ddl.AnyFunction, want: FunctionState, live: Mapping[tuple[str, str], FunctionState]
             ) -> tuple[FunctionState | None, list[sql.Composable]]:
    """The live function the desired one is: its namesake, or the one it is `renamed_from` (same
    arguments), renamed first so the rest compares like with like."""
    old = f"{function.renamed_from}({want.identity})"
    declared = [((want.schema, want.signature), (want.schema, old))] if function.renamed_from else []
    if not declared_renames(want.kind, declared, live):
        return live.get((want.schema, want.signature)) or same_types(want, live), []
    clause = function_ddl.clause(want.kind.upper(), want.schema, function.renamed_from or "", want.identity)
    return (replace(live[(want.schema, old)], name=want.name),
            [sql.SQL("ALTER {} RENAME TO {}").format(clause, sql.Identifier(want.name))])


def same_types(want: FunctionState, live: Mapping[tuple[str, str], FunctionState]) -> FunctionState | None:
    """The live function PostgreSQL takes ``want`` for: same schema, name and argument types, its
    arguments named otherwise (a CREATE beside it would fail: it exists)."""
    return next((f for f in live.values() if (f.schema, f.name, f.types, f.procedure)
                 == (want.schema, want.name, want.types, want.procedure)), None)


def _given_back(clause: sql.Composable, ref: ObjectRef, have: FunctionState,
                acl: Mapping[str, Privileges]) -> list[sql.Composable]:
    """A new function's owner is whoever created it, and its ACL PostgreSQL's default: the old
    owner, comment and every grantee's privileges, put back as they were."""
    statements: list[sql.Composable] = []
    if have.owner:
        statements.append(sql.SQL("ALTER {} OWNER TO {}").format(clause, sql.Identifier(have.owner)))
    if have.comment is not None:
        statements.append(sql.SQL("COMMENT ON {} IS {}").format(clause, sql.Literal(have.comment)))
    public, default = acl.get("PUBLIC", frozenset()), frozenset({("EXECUTE", False)})  # what a new one grants
    statements += [sql.SQL(s.text) for s in grant_statements(ref, "PUBLIC", public, default)]
    for grantee, privileges in sorted(acl.items()):
        if grantee not in ("PUBLIC", have.owner):
            statements += [sql.SQL(s.text) for s in grant_statements(ref, grantee, privileges, frozenset())]
    return statements
