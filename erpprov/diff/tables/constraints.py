"""Primary keys, unique constraints and checks of a table that exists on both sides, and the
actions every kind of constraint (foreign keys too) is added, dropped or replaced with."""

from __future__ import annotations

from dataclasses import replace

from psycopg import sql

from erpprov.core.actions import Hazard, Op, Phase, Statement
from erpprov.core.tables import (
    CHECK,
    EXCLUSION,
    FOREIGN_KEY,
    KIND_WORDS,
    PRIMARY_KEY,
    UNIQUE,
    ConstraintState,
    TableState,
)
from erpprov.diff.tables.context import ColumnFates, Context
from erpprov.diff.tables.emit import Order, Slot, hazards_on
from erpprov.diff.tables.match import match
from erpprov.postgres import table_ddl as ddl

_ADDING_FAILS = {PRIMARY_KEY: "fails if existing rows hold duplicate or NULL values",
                 UNIQUE: "fails if existing rows hold duplicate values",
                 CHECK: "fails if an existing row violates it",
                 EXCLUSION: "fails if existing rows conflict",
                 FOREIGN_KEY: "fails if an existing row references a key that does not exist"}


def diff_keys_and_checks(ctx: Context, want: TableState, have: TableState, fates: ColumnFates) -> None:
    """Foreign keys are left for later, once every table is known."""
    s, t = want.schema, want.name
    pairs, missing, extra = match([c for c in want.constraints if c.kind != FOREIGN_KEY],
                                  [c for c in have.constraints if c.kind != FOREIGN_KEY], fates.usable)
    # Keys that go away go first, before keys are added (a table has one primary key; names
    # free up) and before foreign keys are created (PostgreSQL would tie a new foreign key to
    # whichever matching unique index exists, and then the doomed one could not be dropped).
    for h in extra:
        if fates.ours(h):
            phase = Phase.TABLE if fates.early(h) else Phase.CONSTRAINT if h.kind != CHECK else Phase.DROP_CONSTRAINT
            drop_constraint(ctx, s, t, h, Slot(phase, Order.EARLY_DROP))
    for w, h in pairs:
        if w.shape() != h.shape():
            if fates.early(h):
                drop_constraint(ctx, s, t, h, Slot(Phase.TABLE, Order.EARLY_DROP))
                add_constraint(ctx, s, t, w, have, Phase.CONSTRAINT)
            else:
                replace_constraint(ctx, s, t, w, h, have)
        else:
            settle(ctx, s, t, w, h, have)
    for w in missing:
        add_constraint(ctx, s, t, w, have, Phase.CONSTRAINT)


def settle(ctx: Context, s: str, t: str, want: ConstraintState, have_con: ConstraintState, table: TableState) -> None:
    """A constraint of the same shape on both sides: validated if the file asks for a valid one,
    and its comment set."""
    if want.validated and not have_con.validated:
        validate(ctx, s, t, have_con, table)
    if want.parameters != have_con.parameters:  # of the index that backs a key
        ctx.out.add(ctx.a_constraint(s, t, have_con.name), Op.UPDATE, Phase.INDEX,
                    [ddl.render(sql.SQL("ALTER INDEX {} {}").format(ddl.ident(s, have_con.name), clause))
                     for clause in ddl.new_parameters(want.parameters, have_con.parameters)],
                    before={"with": list(have_con.parameters)}, after={"with": list(want.parameters)})
    if want.comment != have_con.comment:
        ctx.out.add(ctx.a_constraint(s, t, have_con.name), Op.UPDATE, Phase.COMMENT,
                    [ddl.comment_on_constraint(s, t, have_con.name, want.comment)],
                    before={"comment": have_con.comment}, after={"comment": want.comment})


def add_constraint(ctx: Context, s: str, t: str, con: ConstraintState, have: TableState | None,
                   phase: Phase) -> None:
    """`have` None: on a table created by this plan, which holds no rows to check."""
    if have is not None and not con.declared_name:
        con = replace(con, name=ctx.free_name(s, con.name, [c.name for c in have.constraints]))
    ctx.out.add(ctx.a_constraint(s, t, con.name), Op.CREATE, phase, creating(s, t, con),
                after=constraint_view(con), hazards=hazards_on(have, *_adding_hazards(con)),
                note=f"{KIND_WORDS[con.kind]}: {_ADDING_FAILS[con.kind]}"
                if have is not None and have.has_rows else None)


def drop_constraint(ctx: Context, s: str, t: str, con: ConstraintState, slot: Slot) -> None:
    ctx.out.add(ctx.a_constraint(s, t, con.name), Op.DELETE, slot.phase, [ddl.drop_constraint(s, t, con.name)],
                before=constraint_view(con), order=slot.order)


def replace_constraint(ctx: Context, s: str, t: str, want: ConstraintState, have_con: ConstraintState,
                       table: TableState, phase: Phase = Phase.CONSTRAINT) -> None:
    why = "; ".join(f"{name}: {before} -> {after}" for name, before, after in _differences(have_con, want))
    checks = "; adding it checks every existing row" if table.has_rows and want.validated else ""
    ctx.out.add(ctx.a_constraint(s, t, want.name), Op.REPLACE, phase,
                [ddl.drop_constraint(s, t, have_con.name), *creating(s, t, want)],
                before=constraint_view(have_con), after=constraint_view(want),
                hazards=hazards_on(table, *_adding_hazards(want)),
                note=f"dropped and added again ({why}){checks}")


def creating(s: str, t: str, con: ConstraintState) -> list[Statement]:
    """ADD, and its comment."""
    statements = [ddl.add_constraint(s, t, con)]
    if con.comment is not None:
        statements.append(ddl.comment_on_constraint(s, t, con.name, con.comment))
    return statements


_SHAPE = ("kind", "columns", "definition", "ref_schema", "ref_table", "ref_columns", "on_update", "on_delete",
          "delete_columns", "deferrable", "initially_deferred", "match", "nulls_not_distinct", "include")


def _differences(have: ConstraintState, want: ConstraintState) -> list[tuple[str, object, object]]:
    """What a replace changes: the parts of the shape that differ (PostgreSQL alters none of them
    in place but a foreign key's deferrability, which a replace keeps simple)."""
    return [(name, a, b) for name, a, b in zip(_SHAPE, have.shape(), want.shape(), strict=True) if a != b]


def validate(ctx: Context, s: str, t: str, con: ConstraintState, table: TableState) -> None:
    ctx.out.add(ctx.a_constraint(s, t, con.name), Op.UPDATE, Phase.CONSTRAINT,
                [ddl.alter_table(s, t, sql.SQL("VALIDATE CONSTRAINT {}").format(ddl.ident(con.name)))],
                before={"validated": False}, after={"validated": True},
                hazards=hazards_on(table, Hazard.VALIDATES_DATA), note="fails if an existing row violates it")


def _adding_hazards(con: ConstraintState) -> tuple[Hazard, ...]:
    """What adding `con` risks (before `hazards_on` keeps only what counts on the table)."""
    if con.kind == FOREIGN_KEY:
        return (Hazard.VALIDATES_DATA,)
    return (Hazard.VALIDATES_DATA, Hazard.LOCKS_TABLE)


def constraint_view(c: ConstraintState) -> dict[str, object]:
    view: dict[str, object] = {"kind": KIND_WORDS[c.kind], "columns": list(c.columns)}
    if c.kind in (CHECK, EXCLUSION):
        view["definition"] = c.definition
    if c.kind == FOREIGN_KEY:
        view.update(references=f"{c.ref_schema}.{c.ref_table}({', '.join(c.ref_columns)})",
                    on_update=c.on_update, on_delete=c.on_delete)
        if c.match != "simple":
            view["match"] = c.match
    if c.deferrable:
        view.update(deferrable=True, initially_deferred=c.initially_deferred)
    if c.nulls_not_distinct:
        view["nulls_not_distinct"] = True
    if c.include:
        view["include"] = list(c.include)
    if c.parameters:
        view["with"] = list(c.parameters)
    if not c.validated:
        view["not_valid"] = True
    if c.comment is not None:
        view["comment"] = c.comment
    return view
