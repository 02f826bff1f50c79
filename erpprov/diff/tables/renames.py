"""Declared renames (`renamed_from`) of tables and columns, and the pairing of desired tables
with live ones that follows from them. Renames are declared, never guessed."""

from __future__ import annotations

import re
from dataclasses import replace

from psycopg import sql

from erpprov.core.actions import Op, Phase
from erpprov.core.tables import TablesState, TableState
from erpprov.diff.schema_objects import declared_renames
from erpprov.diff.tables.context import Context, TableKey, TablePair
from erpprov.diff.tables.emit import Order
from erpprov.postgres import table_ddl as ddl
from erpprov.postgres.naming import quote


def pair_tables(ctx: Context) -> list[TablePair]:
    """Pair desired tables with live ones, emitting the declared renames and applying them to a
    copy of the live state (also to foreign keys elsewhere that point at what was renamed), so
    that the rest of the diff compares like with like."""
    renames: dict[TableKey, str] = {}
    for key, want in ctx.desired.tables.items():
        if not want.renamed_from:
            continue
        old = (want.schema, want.renamed_from)
        if old in ctx.desired.tables or not declared_renames("table", [(key, old)], ctx.live.tables):
            continue
        renames[old] = want.name
        ctx.out.add(ctx.a_table(want.schema, want.name), Op.UPDATE, Phase.TABLE,
                    [ddl.alter_table(want.schema, want.renamed_from,
                                     sql.SQL("RENAME TO {}").format(ddl.ident(want.name)))],
                    before={"name": want.renamed_from}, after={"name": want.name}, order=Order.RENAME,
                    note=f"renamed from {want.renamed_from}; data, keys and indexes are kept")
    tables = {}
    for key, table in ctx.live.tables.items():
        if key in renames:
            table = replace(table, name=renames[key])
        tables[(table.schema, table.name)] = table
    column_renames: dict[TableKey, dict[str, str]] = {}
    for key, want in ctx.desired.tables.items():
        have = tables.get(key)
        if have is None:
            continue
        names = {c.name for c in have.columns}
        wanted = {c.name for c in want.columns}
        mapping = {c.renamed_from: c.name for c in want.columns
                   if c.renamed_from and c.name not in names and c.renamed_from in names
                   and c.renamed_from not in wanted}
        if mapping:
            column_renames[key] = mapping
            for old_name, new in mapping.items():
                ctx.out.add(ctx.a_column(want.schema, want.name, new), Op.UPDATE, Phase.TABLE,
                            [ddl.alter_table(want.schema, want.name, sql.SQL("RENAME COLUMN {} TO {}").format(
                                ddl.ident(old_name), ddl.ident(new)))],
                            before={"name": old_name}, after={"name": new}, order=Order.RENAME,
                            note=f"renamed from {old_name}; the data is kept")
    if renames or column_renames:
        tables = {k: _renamed(t, renames, column_renames) for k, t in tables.items()}
    ctx.live = TablesState(tables)
    return [(want, tables.get(key)) for key, want in ctx.desired.tables.items()]


def _renamed(table: TableState, renames: dict[TableKey, str],
             column_renames: dict[TableKey, dict[str, str]]) -> TableState:
    own = column_renames.get(table.key, {})

    def col(name: str) -> str:
        return own.get(name, name)

    def text(value: str | None) -> str | None:
        for old, new in own.items():
            value = _rename_in_text(value, old, new)
        return value

    constraints = []
    for c in table.constraints:
        ref_table = renames.get((c.ref_schema or "", c.ref_table), c.ref_table) if c.ref_table else None
        ref_cols = column_renames.get((c.ref_schema or "", ref_table or ""), {})
        constraints.append(replace(c, columns=tuple(map(col, c.columns)), definition=text(c.definition),
                                   ref_table=ref_table, ref_columns=tuple(ref_cols.get(r, r) for r in c.ref_columns)))
    indexes = [replace(i, keys=tuple(replace(k, column=col(k.column) if k.column else None,
                                              expression=text(k.expression)) for k in i.keys),
                       include=tuple(map(col, i.include)), predicate=text(i.predicate),
                       columns=frozenset(map(col, i.columns))) for i in table.indexes]
    columns = tuple(replace(c, name=col(c.name)) for c in table.columns)
    return replace(table, columns=columns, constraints=tuple(constraints), indexes=tuple(indexes))


def _rename_in_text(text: str | None, old: str, new: str) -> str | None:
    """A live check or index expression printed before a column rename, as PostgreSQL will print
    it after (best effort: if it misses, the object is replaced, which is still correct)."""
    if text is None:
        return None
    if quote(old) != old:
        pattern = re.escape(quote(old))
    else:  # printed bare: only where it stands as a word of its own
        pattern = r'(?<![\w"$])' + re.escape(old) + r'(?![\w"$])'
    return re.sub(pattern, lambda _: quote(new), text)
