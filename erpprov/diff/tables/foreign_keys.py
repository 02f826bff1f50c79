"""Foreign keys: diffed once every table is known, created after every table and key exists
(which also resolves cycles), and dropped before what they reference changes."""

from __future__ import annotations

from erpprov.core.actions import Phase
from erpprov.core.tables import FOREIGN_KEY, PRIMARY_KEY, UNIQUE, ConstraintState
from erpprov.diff.tables.constraints import (
    add_constraint,
    drop_constraint,
    replace_constraint,
    settle,
)
from erpprov.diff.tables.context import Context, TablePair
from erpprov.diff.tables.emit import Order, Slot
from erpprov.diff.tables.indexes import key_like
from erpprov.diff.tables.match import match

# (schema, table, columns) of a live primary key, unique constraint or unique index
BrokenKeys = set[tuple[str, str, tuple[str | None, ...]]]


def broken_keys(ctx: Context, pairs: list[TablePair]) -> BrokenKeys:
    """Live primary keys and unique constraints that will be replaced or dropped: the foreign
    keys that reference them must be dropped before (and recreated after, if wanted)."""
    broken: BrokenKeys = set()
    for want, have in pairs:
        if have is None or want.key in ctx.same:
            continue
        if want.partition_by != have.partition_by:  # rebuilt (`repartition`): every key of the old table goes
            broken |= {(have.schema, have.name, c.columns) for c in have.constraints if c.kind in (PRIMARY_KEY, UNIQUE)}
            broken |= {(have.schema, have.name, tuple(k.column for k in i.keys)) for i in have.indexes if key_like(i)}
            continue
        wanted = [c for c in want.constraints if c.kind in (PRIMARY_KEY, UNIQUE)]
        live = [c for c in have.constraints if c.kind in (PRIMARY_KEY, UNIQUE)]
        matched, _, extra = match(wanted, live)
        for h in extra + [h for w, h in matched if w.shape() != h.shape()]:
            broken.add((have.schema, have.name, h.columns))
        matched_i, _, extra_i = match(want.indexes, have.indexes)
        for i in extra_i + [h for w, h in matched_i if w.shape() != h.shape()]:
            if key_like(i):
                broken.add((have.schema, have.name, tuple(k.column for k in i.keys)))
    # columns rebuilt or retyped do not break keys (PostgreSQL rebuilds dependent constraints)
    return broken


def diff_foreign_keys(ctx: Context, pairs: list[TablePair], broken: BrokenKeys) -> None:
    for want, have in pairs:
        s, t = want.schema, want.name
        wanted = [c for c in want.constraints if c.kind == FOREIGN_KEY]
        if have is None:
            for con in wanted:
                add_constraint(ctx, s, t, con, None, Phase.FOREIGN_KEY)
            continue
        # an unchanged table's foreign keys still move when what they reference changes
        if want.key in ctx.same and not broken and not ctx.retyped:
            continue
        rebuilt = ctx.rebuilt.get(want.key, set())
        kept = ctx.kept(want, have)
        live = [c for c in have.constraints if c.kind == FOREIGN_KEY and not (set(c.columns) & rebuilt)]
        matched, missing, extra = match(wanted, live)
        for w, h in matched:
            slot = drop_slot(ctx, s, t, h, broken)
            if slot.phase != Phase.DROP_CONSTRAINT:  # it must go early: dropped, added back later
                drop_constraint(ctx, s, t, h, slot)
                add_constraint(ctx, s, t, w, have, Phase.FOREIGN_KEY)
            elif w.shape() != h.shape():
                replace_constraint(ctx, s, t, w, h, have, Phase.FOREIGN_KEY)
            else:
                settle(ctx, s, t, w, h, have)
        for w in missing:
            add_constraint(ctx, s, t, w, have, Phase.FOREIGN_KEY)
        for h in extra:
            if set(h.columns) & kept:
                continue
            drop_constraint(ctx, s, t, h, drop_slot(ctx, s, t, h, broken))


def drop_slot(ctx: Context, s: str, t: str, fk: ConstraintState, broken: BrokenKeys) -> Slot:
    """When a foreign key that goes away, or is dropped to be added again, must be dropped:
    before any column type change at either end (both ends change type without the key
    checking them), before the key it references is replaced, else with the other drops
    (first)."""
    if any((s, t, c) in ctx.retyped for c in fk.columns) or any(
            (fk.ref_schema, fk.ref_table, c) in ctx.retyped for c in fk.ref_columns):
        return Slot(Phase.TABLE, Order.FK_DROP)
    if (fk.ref_schema, fk.ref_table, fk.ref_columns) in broken:
        return Slot(Phase.CONSTRAINT, Order.FK_DROP)
    return Slot(Phase.DROP_CONSTRAINT, Order.FK_DROP)
