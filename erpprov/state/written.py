"""The desired tables as the files write them, with no server to canonicalize them: for pictures
(`erpprov diagram`, the plan's diagram), where `varchar(50)` reads as well as PostgreSQL's
`character varying(50)` and needing a server would only be in the way. Never diffed: the diff
compares what `canon.py` reads back from the server."""

from __future__ import annotations

from erpprov.core import model
from erpprov.core.tables import FOREIGN_KEY, PRIMARY_KEY, UNIQUE, ColumnState, ConstraintState, TablesState, TableState


def written_tables(database: model.Database) -> TablesState:
    primary_keys = {(t.schema_, t.name): tuple(c.name for c in t.columns if c.primary_key) for t in database.tables}
    tables = {}
    for table in database.tables:
        columns = tuple(ColumnState(name=c.name, type=c.type, not_null=not c.nullable or c.primary_key,
                                    default=c.default, identity=c.identity, generated=c.generated,
                                    comment=c.comment) for c in table.columns)
        constraints: list[ConstraintState] = []
        key = primary_keys[(table.schema_, table.name)]
        if key:
            constraints.append(ConstraintState(name=f"{table.name}_pkey", kind=PRIMARY_KEY, columns=key))
        constraints += [ConstraintState(name=f"{table.name}_{c.name}_key", kind=UNIQUE, columns=(c.name,))
                        for c in table.columns if c.unique]
        constraints += [ConstraintState(name=u.name or f"{table.name}_{'_'.join(u.columns)}_key", kind=UNIQUE,
                                        columns=tuple(u.columns)) for u in table.unique]
        for fk in table.foreign_keys:
            schema = fk.references.schema_ or table.schema_
            ref_columns = tuple(fk.references.columns) or primary_keys.get((schema, fk.references.table), ())
            constraints.append(ConstraintState(
                name=fk.name or f"{table.name}_{'_'.join(fk.columns)}_fkey", kind=FOREIGN_KEY,
                columns=tuple(fk.columns), ref_schema=schema, ref_table=fk.references.table,
                ref_columns=ref_columns, on_delete=fk.on_delete, on_update=fk.on_update))
        tables[(table.schema_, table.name)] = TableState(schema=table.schema_, name=table.name, columns=columns,
                                                         constraints=tuple(constraints), comment=table.comment)
    return TablesState(tables=tables)
