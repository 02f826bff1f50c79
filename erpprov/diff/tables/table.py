"""Whole tables: created, updated (their columns, keys, checks and indexes), or, when the file
does not mention them, dropped or reported."""

from __future__ import annotations

from psycopg import sql

from erpprov.core.actions import Hazard, Op, Phase
from erpprov.core.tables import (
    CHECK,
    EXCLUSION,
    FOREIGN_KEY,
    PRIMARY_KEY,
    UNIQUE,
    ConstraintState,
    IndexState,
    TableState,
)
from erpprov.diff.tables.columns import diff_columns
from erpprov.diff.tables.constraints import creating, diff_keys_and_checks, drop_constraint
from erpprov.diff.tables.context import ColumnFates, Context
from erpprov.diff.tables.emit import hazards_on
from erpprov.diff.tables.foreign_keys import BrokenKeys, drop_slot
from erpprov.diff.tables.indexes import creating as creating_index
from erpprov.diff.tables.indexes import diff_indexes
from erpprov.diff.tables.partitions import diff_partitions
from erpprov.diff.tables.policies import diff_row_security
from erpprov.postgres import table_ddl as ddl


def is_same(want: TableState, have: TableState) -> bool:
    """Nothing to do on this table (its foreign keys are still looked at, for what changes
    elsewhere): the fast path of a no-op plan. Column order aside, exactly what the slow path
    would find equal."""
    return (want.columns == have.columns and want.comment == have.comment
            and (want.owner is None or want.owner == have.owner)
            and want.unlogged == have.unlogged and want.parameters == have.parameters
            and want.row_security == have.row_security and want.policies == have.policies
            and want.partition_by == have.partition_by and want.partitions == have.partitions
            and _same_set(want.constraints, have.constraints) and _same_set(want.indexes, have.indexes))


def _same_set(a: tuple[ConstraintState, ...] | tuple[IndexState, ...],
              b: tuple[ConstraintState, ...] | tuple[IndexState, ...]) -> bool:
    """Equal whatever the order (desired objects are sorted by name, live ones by creation)."""
    if len(a) != len(b):
        return False
    return a == b or sorted(a, key=lambda o: o.name) == sorted(b, key=lambda o: o.name)


def create_table(ctx: Context, want: TableState) -> None:
    """Its foreign keys come later, with all the others."""
    s, t = want.schema, want.name
    # unique constraints go in separate ALTERs: inside CREATE TABLE PostgreSQL silently drops
    # one that repeats the primary key or another, and the declared state would never converge
    # a NOT VALID check is added after: inside CREATE TABLE PostgreSQL marks it valid
    inline = [c for c in want.constraints if c.kind in (PRIMARY_KEY, CHECK, EXCLUSION) and c.validated]
    statements = [ddl.create_table(want, inline)]
    statements += [step for c in want.columns for step in ddl.column_settings(s, t, c)]
    statements += [step for c in want.constraints if c.kind == UNIQUE or (c.kind == CHECK and not c.validated)
                   for step in creating(s, t, c)]
    if want.comment is not None:
        statements.append(ddl.comment("TABLE", ddl.ident(s, t), want.comment))
    statements += [ddl.comment("COLUMN", ddl.ident(s, t, c.name), c.comment) for c in want.columns if c.comment]
    statements += [ddl.comment_on_constraint(s, t, c.name, c.comment) for c in inline if c.comment is not None]
    if want.owner:
        statements.append(ddl.alter_table(s, t, sql.SQL("OWNER TO {}").format(ddl.ident(want.owner))))
    ctx.out.add(ctx.a_table(s, t), Op.CREATE, Phase.TABLE, statements,
                after={"columns": [c.name for c in want.columns]})
    diff_row_security(ctx, want, None)
    diff_partitions(ctx, want, None)
    for index in want.indexes:
        ctx.out.add(ctx.a_index(s, index.name), Op.CREATE, Phase.INDEX, creating_index(s, t, index))


def update_table(ctx: Context, want: TableState, have: TableState) -> None:
    """Its foreign keys come later, once every table is known."""
    s, t = want.schema, want.name
    rebuilt = ctx.rebuilt[want.key] = diff_columns(ctx, want, have)
    fates = ColumnFates(rebuilt=rebuilt, kept=ctx.kept(want, have),
                        retyped={c for (ss, tt, c) in ctx.retyped if (ss, tt) == (s, t)})
    diff_keys_and_checks(ctx, want, have, fates)
    diff_indexes(ctx, want, have, fates)
    _storage(ctx, want, have)
    diff_row_security(ctx, want, have)
    diff_partitions(ctx, want, have)
    if want.comment != have.comment:
        ctx.out.add(ctx.a_table(s, t), Op.UPDATE, Phase.COMMENT,
                    [ddl.comment("TABLE", ddl.ident(s, t), want.comment)],
                    before={"comment": have.comment}, after={"comment": want.comment})
    if want.owner is not None and want.owner != have.owner:
        ctx.out.add(ctx.a_table(s, t), Op.UPDATE, Phase.COMMENT,
                    [ddl.alter_table(s, t, sql.SQL("OWNER TO {}").format(ddl.ident(want.owner)))],
                    before={"owner": have.owner}, after={"owner": want.owner})


def _storage(ctx: Context, want: TableState, have: TableState) -> None:
    """UNLOGGED and storage parameters, changed in place."""
    s, t = want.schema, want.name
    if want.unlogged != have.unlogged:
        ctx.out.add(ctx.a_table(s, t), Op.UPDATE, Phase.TABLE,
                    [ddl.alter_table(s, t, sql.SQL("SET UNLOGGED" if want.unlogged else "SET LOGGED"))],
                    before={"unlogged": have.unlogged}, after={"unlogged": want.unlogged},
                    hazards=hazards_on(have, Hazard.REWRITES_TABLE, Hazard.LOCKS_TABLE),
                    note="the table is rewritten under an exclusive lock" if have.has_rows else None)
    if want.parameters != have.parameters:
        ctx.out.add(ctx.a_table(s, t), Op.UPDATE, Phase.TABLE,
                    [ddl.alter_table(s, t, c) for c in ddl.new_parameters(want.parameters, have.parameters)],
                    before={"with": list(have.parameters)}, after={"with": list(want.parameters)})


def prune_tables(ctx: Context, broken: BrokenKeys) -> None:
    """Live tables the file does not mention: dropped in a pruned schema, else reported."""
    doomed = [t for key, t in sorted(ctx.live.tables.items()) if key not in ctx.desired.tables]
    dropping = {t.key for t in doomed if t.schema in ctx.prune}
    for table in doomed:
        if table.key not in dropping:
            ctx.unmanaged.append(ctx.a_table(table.schema, table.name))
            continue
        # their foreign keys go first: that breaks cycles between dropped tables and frees
        # keys of kept tables that change or go away
        for con in table.constraints:
            if con.kind == FOREIGN_KEY:
                drop_constraint(ctx, table.schema, table.name, con,
                                drop_slot(ctx, table.schema, table.name, con, broken))
    for table in doomed:
        if table.key in dropping:
            ctx.out.add(ctx.a_table(table.schema, table.name), Op.DELETE, Phase.DROP_TABLE,
                        [ddl.render(sql.SQL("DROP TABLE {}").format(ddl.ident(table.schema, table.name)))],
                        before={"columns": [c.name for c in table.columns]}, hazards=(Hazard.DELETES_DATA,),
                        note=f"{table.schema}.{table.name} and all its rows are deleted"
                        if table.has_rows else f"{table.schema}.{table.name} is dropped")
