"""A table whose partitioning changes (plain to partitioned, back, or another partition key).
PostgreSQL cannot change that in place, so the table is built again and its rows copied, all in
the apply's transaction, refused unless `rewrites_table` is allowed:

1. the old table's own foreign keys are dropped (the new table gets them with all the others),
   its indexes too, and the old table, its partitions, key constraints and owned sequences are
   renamed aside (their names are the schema's, and the new table needs them);
2. the new table is created as a new table is, with its partitions, keys, comments, owner
   and policies (its indexes and foreign keys follow in their phases);
3. once the foreign keys of other tables that reference it are dropped (the key they reference
   counts as replaced: `foreign_keys.broken_keys`), the rows are copied, each sequence takes up
   where the old one stood, and the old table is dropped;
4. the referencing foreign keys are added back, checking the copied rows; the grants of the
   old table are planned again for the new one (`as_new`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from psycopg import sql

from erpprov.core.actions import Hazard, Op, Phase, Statement
from erpprov.core.cluster import LiveDatabase, ObjectRef
from erpprov.core.tables import EXCLUSION, FOREIGN_KEY, PRIMARY_KEY, UNIQUE, TablesState, TableState
from erpprov.diff.tables.context import Context
from erpprov.diff.tables.emit import Order, hazards_on
from erpprov.diff.tables.indexes import key_like
from erpprov.diff.tables.table import create_table
from erpprov.errors import ErpprovError
from erpprov.postgres import table_ddl as ddl
from erpprov.postgres.ddl import text

STEPS = ("create the new table, copy the rows, move the foreign keys that reference it, drop the old table and "
         "take its name, in one transaction")


def repartitions(want: TableState, have: TableState | None) -> bool:
    return have is not None and want.partition_by != have.partition_by


def repartition(ctx: Context, want: TableState, have: TableState) -> None:
    s, t = want.schema, want.name
    kept = ctx.kept(want, have)
    if kept:
        raise ErpprovError(
            f"table {s}.{t} is rebuilt to change its partitioning, and the file does not mention its column(s) "
            f"{', '.join(sorted(kept))}: their rows would be lost",
            hint="declare the columns, or drop them from the table first")
    held = sorted(f"{other.schema}.{other.name}" for key, other in ctx.live.tables.items()
                  if key not in ctx.desired.tables and other.schema not in ctx.prune
                  and any(c.kind == FOREIGN_KEY and (c.ref_schema, c.ref_table) == (s, t) for c in other.constraints))
    if held:
        raise ErpprovError(
            f"table {s}.{t} is rebuilt to change its partitioning, and foreign keys of tables the file does not "
            f"manage reference it ({', '.join(held)}): they would keep the old table from being dropped",
            hint="declare those tables (their foreign keys then move to the new table), or drop the foreign keys")
    aside = _aside_name(ctx, s, t)
    hazards = (Hazard.REWRITES_TABLE, *hazards_on(have, Hazard.LOCKS_TABLE))
    dropped = sorted({c.name for c in have.columns} - {c.name for c in want.columns}
                     - {c.renamed_from for c in want.columns if c.renamed_from})
    if dropped and have.has_rows:
        hazards += (Hazard.DELETES_DATA,)
    sequences = {c.name: (c.sequence[0], _aside_name(ctx, c.sequence[0], c.sequence[1]))
                 for c in have.columns if c.sequence}
    ctx.out.add(ctx.a_table(s, t), Op.REPLACE, Phase.TABLE, _set_aside(ctx, have, aside, sequences),
                before={"partition_by": have.partition_by}, after={"partition_by": want.partition_by},
                hazards=hazards, order=Order.EARLY_DROP,
                note=f"its partitioning changes, so the table is rebuilt: {STEPS}"
                     + (f"; the column(s) {', '.join(dropped)} are dropped with their data" if dropped else ""))
    create_table(ctx, replace(want, owner=want.owner or have.owner))
    ctx.out.add(ctx.a_table(s, t), Op.UPDATE, Phase.CONSTRAINT, _copy_rows(want, have, aside, sequences),
                before={"rows_in": f"{s}.{aside}"}, after={"rows_in": f"{s}.{t}"}, order=Order.LATE,
                note=f"the rows are copied from the old table (set aside as {aside}), which is then dropped")


def rebuilt_tables(desired: TablesState, live: TablesState) -> frozenset[tuple[str, str]]:
    """The live tables a plan rebuilds. To the views that read them, the triggers on them and the
    grants, they are new tables: views go and come back, triggers and grants are made again."""
    return frozenset(key for key, want in desired.tables.items() if repartitions(want, live.tables.get(key)))


def refuse_lost_triggers(rebuilt: frozenset[tuple[str, str]], live: Iterable[tuple[str, str, str]],
                         declared: Iterable[tuple[str, str, str]]) -> None:
    """A trigger the file does not declare would go with the old table, without a word: refused."""
    lost = sorted(set(key for key in live if key[:2] in rebuilt) - set(declared))
    if lost:
        names = ", ".join(f"{name} on {schema}.{table}" for schema, table, name in lost)
        raise ErpprovError(f"a table rebuilt to change its partitioning would lose the trigger(s) {names}, "
                           "which the file does not declare", hint="declare them, or drop them first")


def rebuilt_columns(desired: TablesState, live: TablesState) -> frozenset[tuple[str, str, str]]:
    return frozenset((s, t, c.name) for s, t in rebuilt_tables(desired, live) for c in live.tables[(s, t)].columns)


def as_new(desired: TablesState, live_tables: TablesState, live: LiveDatabase) -> tuple[TablesState, LiveDatabase]:
    """The live state as the grants and owners see it: without the tables this plan rebuilds and
    their sequences, which it creates anew (with the ACL a new object starts from)."""
    rebuilt = rebuilt_tables(desired, live_tables)
    if not rebuilt:
        return live_tables, live
    gone = {ObjectRef("table", *key) for key in rebuilt}
    gone |= {ObjectRef("sequence", *c.sequence) for key in rebuilt for c in live_tables.tables[key].columns
             if c.sequence}
    objects = {kind: {o for o in refs if ObjectRef(kind, *o) not in gone} for kind, refs in live.objects.items()}
    return (TablesState({k: t for k, t in live_tables.tables.items() if k not in rebuilt}),
            replace(live, objects=objects, acl={k: v for k, v in live.acl.items() if k[0] not in gone},
                       owners={k: v for k, v in live.owners.items() if k not in gone}))


def _aside_name(ctx: Context, schema: str, name: str) -> str:
    """A name unused in the schema, live or desired (PostgreSQL's 63-byte limit in mind)."""
    taken = ctx.taken(schema)
    suffix = 0
    while (candidate := f"{name[:50]}_old{suffix or ''}") in taken:
        suffix += 1
    taken.add(candidate)
    return candidate


def _set_aside(ctx: Context, have: TableState, aside: str, sequences: dict[str, tuple[str, str]]
               ) -> list[Statement]:
    s, t = have.schema, have.name
    statements = [ddl.drop_constraint(s, t, c.name) for c in have.constraints if c.kind == FOREIGN_KEY]
    statements.append(ddl.alter_table(s, t, sql.SQL("RENAME TO {}").format(ddl.ident(aside))))
    # what a foreign key may still reference is renamed, the other indexes dropped; their parts on
    # the old partitions are renamed first, so the new partitions' parts get the names they would anew
    for part in have.partitions:
        statements += [ddl.render(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
            ddl.ident(part.schema, name), ddl.ident(_aside_name(ctx, part.schema, name)))) for name in part.parts]
        statements += [ddl.drop_index(part.schema, i.name) for i in part.indexes]
        statements.append(ddl.alter_table(part.schema, part.name, sql.SQL("RENAME TO {}").format(
            ddl.ident(_aside_name(ctx, part.schema, part.name)))))
    referable = [c.name for c in have.constraints if c.kind in (PRIMARY_KEY, UNIQUE, EXCLUSION)]
    referable += [i.name for i in have.indexes if key_like(i)]
    for index in referable:
        statements.append(ddl.render(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
            ddl.ident(s, index), ddl.ident(_aside_name(ctx, s, index)))))
    statements += [ddl.drop_index(s, i.name) for i in have.indexes if not key_like(i)]
    for column in have.columns:
        if column.sequence:
            statements.append(ddl.render(sql.SQL("ALTER SEQUENCE {} RENAME TO {}").format(
                ddl.ident(*column.sequence), ddl.ident(sequences[column.name][1]))))
    return statements


def _copy_rows(want: TableState, have: TableState, aside: str, sequences: dict[str, tuple[str, str]]
               ) -> list[Statement]:
    s, t = want.schema, want.name
    old = ddl.ident(s, aside)
    sources = {c.name: c.renamed_from if c.renamed_from and have.column(c.renamed_from) else c.name
               for c in want.columns if not c.generated}
    copied = [name for name, source in sources.items() if have.column(source) is not None]
    statements = []
    if copied:
        statements.append(ddl.render(sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {}").format(
            ddl.ident(s, t), ddl.idents(copied), ddl.idents([sources[n] for n in copied]), old)))
    for name in copied:
        column, source = want.column(name), have.column(sources[name])
        assert column is not None and source is not None
        if (column.serial or column.identity) and source.name in sequences:
            # the old sequence (set aside, dropped with the old table) says where the new one takes up
            statements.append(ddl.render(sql.SQL(
                "SELECT setval(pg_get_serial_sequence({}, {}), last_value, is_called) FROM {}").format(
                sql.Literal(text(ddl.ident(s, t))), sql.Literal(name), ddl.ident(*sequences[source.name]))))
    statements.append(ddl.render(sql.SQL("DROP TABLE {}").format(old)))
    return statements
