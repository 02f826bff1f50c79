"""Indexes of a table that exists on both sides."""

from __future__ import annotations

from psycopg import sql

from erpprov.core.actions import Hazard, Op, Phase, Statement
from erpprov.core.tables import IndexState, TableState
from erpprov.diff.tables.context import ColumnFates, Context
from erpprov.diff.tables.emit import Order, hazards_on
from erpprov.diff.tables.match import match
from erpprov.postgres import table_ddl as ddl

_UNIQUE_FAILS = "a unique index fails to build over duplicate values"


def diff_indexes(ctx: Context, want: TableState, have: TableState, fates: ColumnFates) -> None:
    s, t = want.schema, want.name
    pairs, missing, extra = match(want.indexes, have.indexes, fates.usable)
    for h in extra:
        if fates.ours(h):
            # one a foreign key can reference goes with the keys that go away, and for the same
            # reasons (see `diff_keys_and_checks`)
            phase = Phase.TABLE if fates.early(h) else Phase.CONSTRAINT if key_like(h) else Phase.DROP_INDEX
            ctx.out.add(ctx.a_index(s, h.name), Op.DELETE, phase, [ddl.drop_index(s, h.name)],
                        before=index_view(h), order=Order.EARLY_DROP)
    for w, h in pairs:
        if w.shape() == h.shape():
            settle(ctx, s, w, h)
            continue
        if fates.early(h):
            ctx.out.add(ctx.a_index(s, h.name), Op.DELETE, Phase.TABLE, [ddl.drop_index(s, h.name)],
                        before=index_view(h), order=Order.EARLY_DROP)
            missing.append(w)
        else:
            ctx.out.add(ctx.a_index(s, w.name), Op.REPLACE, Phase.INDEX,
                        [ddl.drop_index(s, h.name), *creating(s, t, w)],
                        before=index_view(h), after=index_view(w), hazards=_building_hazards(w, have),
                        note=_UNIQUE_FAILS if w.unique and have.has_rows else None)
    for w in missing:
        name = ctx.free_name(s, w.name, [i.name for i in have.indexes])
        ctx.out.add(ctx.a_index(s, name), Op.CREATE, Phase.INDEX, creating(s, t, w, name), after=index_view(w),
                    hazards=_building_hazards(w, have), note=_UNIQUE_FAILS if w.unique and have.has_rows else None)


def creating(s: str, t: str, index: IndexState, name: str | None = None) -> list[Statement]:
    """CREATE INDEX, and its comment."""
    statements = [ddl.render(ddl.create_index(s, t, index, name=name))]
    if index.comment is not None:
        statements.append(ddl.comment("INDEX", ddl.ident(s, name or index.name), index.comment))
    return statements


def settle(ctx: Context, s: str, want: IndexState, have: IndexState) -> None:
    """Storage parameters and the comment change in place."""
    if want.parameters != have.parameters:
        clauses = ddl.new_parameters(want.parameters, have.parameters)
        ctx.out.add(ctx.a_index(s, have.name), Op.UPDATE, Phase.INDEX,
                    [ddl.render(sql.SQL("ALTER INDEX {} {}").format(ddl.ident(s, have.name), clause))
                     for clause in clauses],
                    before={"with": list(have.parameters)}, after={"with": list(want.parameters)},
                    note="new storage parameters apply to pages written from now on (REINDEX rewrites all)")
    if want.comment != have.comment:
        ctx.out.add(ctx.a_index(s, have.name), Op.UPDATE, Phase.COMMENT,
                    [ddl.comment("INDEX", ddl.ident(s, have.name), want.comment)],
                    before={"comment": have.comment}, after={"comment": want.comment})


def _building_hazards(index: IndexState, have: TableState) -> tuple[Hazard, ...]:
    return hazards_on(have, Hazard.VALIDATES_DATA) if index.unique else ()


def key_like(index: IndexState) -> bool:
    """A unique index a foreign key can reference: plain columns, no predicate."""
    return index.unique and index.predicate is None and all(k.expression is None for k in index.keys)


def index_view(i: IndexState) -> dict[str, object]:
    view: dict[str, object] = {"unique": i.unique, "method": i.method,
                               "keys": [ddl.index_key(k).as_string(None) for k in i.keys]}
    if i.include:
        view["include"] = list(i.include)
    if i.predicate:
        view["where"] = i.predicate
    if i.nulls_not_distinct:
        view["nulls_not_distinct"] = True
    if i.parameters:
        view["with"] = list(i.parameters)
    if i.comment is not None:
        view["comment"] = i.comment
    return view
