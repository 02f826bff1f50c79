"""The partitions of a partitioned table. A partition is a part of its parent: its columns, keys
and indexes are the parent's (PostgreSQL cascades them), so only its bound, storage parameters,
comment and its own indexes (beyond the parent's) are diffed here.

Bounds may not overlap at any moment, so within the TABLE phase partitions that go are dropped
and those whose bound changes detached first, and only then are partitions created and attached."""

from __future__ import annotations

from psycopg import sql

from erpprov.core.actions import Hazard, Op, Phase
from erpprov.core.tables import PartitionState, TableState
from erpprov.diff.tables.context import Context
from erpprov.diff.tables.emit import Order, hazards_on
from erpprov.diff.tables.indexes import creating, index_view, settle
from erpprov.postgres import table_ddl as ddl


def diff_partitions(ctx: Context, want: TableState, have: TableState | None) -> None:
    """`have` None: a table this plan creates."""
    s, t = want.schema, want.name
    live = {(p.schema, p.name): p for p in have.partitions} if have else {}
    new_shapes = {i.shape() for i in want.indexes} - {i.shape() for i in have.indexes} if have else set()
    for part in want.partitions:
        old = live.get((part.schema, part.name))
        if old is None:
            _create(ctx, want, part)
            continue
        if old.bound != part.bound:
            _rebound(ctx, want, old, part, have)
        if old.parameters != part.parameters:
            ctx.out.add(ctx.a_table(part.schema, part.name), Op.UPDATE, Phase.TABLE,
                        [ddl.alter_table(part.schema, part.name, clause)
                         for clause in ddl.new_parameters(part.parameters, old.parameters)],
                        before={"with": list(old.parameters)}, after={"with": list(part.parameters)})
        _own_indexes(ctx, part, old, new_shapes)
        if old.comment != part.comment:
            ctx.out.add(ctx.a_table(part.schema, part.name), Op.UPDATE, Phase.COMMENT,
                        [ddl.comment("TABLE", ddl.ident(part.schema, part.name), part.comment)],
                        before={"comment": old.comment}, after={"comment": part.comment})
    for key in sorted(set(live) - {(p.schema, p.name) for p in want.partitions}):
        ctx.out.add(ctx.a_table(*key), Op.DELETE, Phase.TABLE,
                    [ddl.render(sql.SQL("DROP TABLE {}").format(ddl.ident(*key)))],
                    before={"partition_of": f"{s}.{t}", "bound": live[key].bound}, hazards=(Hazard.DELETES_DATA,),
                    order=Order.EARLY_DROP, note=f"the partition {'.'.join(key)} and its rows are deleted")


def _create(ctx: Context, parent: TableState, part: PartitionState) -> None:
    """CREATE ... PARTITION OF: nothing to attach or validate; the parent's indexes cascade."""
    statements = [ddl.render(ddl.create_partition(part.schema, part.name, parent.key, part.source or part.bound,
                                                  part.parameters))]
    if part.comment is not None:
        statements.append(ddl.comment("TABLE", ddl.ident(part.schema, part.name), part.comment))
    if parent.owner:  # a partition is its creator's; the file's owner of the parent owns its parts too
        statements.append(ddl.alter_table(part.schema, part.name, sql.SQL("OWNER TO {}").format(
            ddl.ident(parent.owner))))
    ctx.out.add(ctx.a_table(part.schema, part.name), Op.CREATE, Phase.TABLE, statements,
                after={"partition_of": f"{parent.schema}.{parent.name}", "bound": part.bound}, order=Order.LATE)
    _own_indexes(ctx, part, None, set())


def _own_indexes(ctx: Context, part: PartitionState, old: PartitionState | None, new_shapes: set[tuple]) -> None:
    """Named in the file (no matching by shape); one whose shape changes is built again.

    A parent's new index takes a partition's index of its shape as its own part (ATTACH), and the
    partition loses it: so the partition's indexes that go, or change, are dropped before the
    parent's new indexes are built, and its new ones built after (as is one the parent's new
    index would take)."""
    s = part.schema
    live = {i.name: i for i in old.indexes} if old else {}
    for index in part.indexes:
        have = live.get(index.name)
        if have is not None and have.shape() == index.shape() and index.shape() not in new_shapes:
            settle(ctx, s, index, have)
            continue
        if have is not None:
            ctx.out.add(ctx.a_index(s, index.name), Op.DELETE, Phase.INDEX, [ddl.drop_index(s, index.name)],
                        before=index_view(have), order=Order.EARLY_DROP, note="dropped to be built again")
        hazards = (Hazard.VALIDATES_DATA,) if index.unique and old is not None and old.has_rows else ()
        ctx.out.add(ctx.a_index(s, index.name), Op.CREATE, Phase.INDEX, creating(s, part.name, index),
                    after=index_view(index), hazards=hazards, order=Order.LATE)
    for name in sorted(set(live) - {i.name for i in part.indexes}):
        ctx.out.add(ctx.a_index(s, name), Op.DELETE, Phase.INDEX, [ddl.drop_index(s, name)],
                    before=index_view(live[name]), order=Order.EARLY_DROP)


def _rebound(ctx: Context, parent: TableState, old: PartitionState, new: PartitionState,
             have: TableState | None) -> None:
    """Detached (early) and attached again with the new bound (late): its rows stay, and are
    checked against it."""
    parent_name = ddl.ident(parent.schema, parent.name)
    part_name = ddl.ident(new.schema, new.name)
    address = ctx.a_table(new.schema, new.name)
    ctx.out.add(address, Op.UPDATE, Phase.TABLE,
                [ddl.render(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(parent_name, part_name))],
                before={"bound": old.bound}, after={"bound": None}, order=Order.EARLY_DROP,
                note="detached, to be attached again with its new bound")
    ctx.out.add(address, Op.UPDATE, Phase.TABLE,
                [ddl.render(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(parent_name, part_name,
                                                                                   sql.SQL(new.source or new.bound)))],
                before={"bound": None}, after={"bound": new.bound}, order=Order.LATE,
                hazards=hazards_on(have, Hazard.VALIDATES_DATA, Hazard.LOCKS_TABLE),
                note="attached with the new bound: fails if a row does not fit it")
