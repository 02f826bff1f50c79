"""The desired views as PostgreSQL prints them: each built as a plain view in a stand-in schema of
a rolled-back transaction, the stand-ins first on that transaction's search_path, then read with
the live side's query. References to live tables print as they do in a live view (the stand-ins
hold nothing else), and a view that uses another declared view finds it in the stand-in.

A view whose query cannot be built yet (it uses a table or column the same apply creates) has no
canonical form: the diff then writes it as the file does, and the next plan compares it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

import psycopg
from psycopg import sql

from erpprov.core import model
from erpprov.core.schema_objects import ViewState
from erpprov.core.tables import IndexState
from erpprov.errors import ErpprovError
from erpprov.postgres import table_ddl, view_ddl
from erpprov.state import matview_indexes
from erpprov.state.schema_catalog import VIEW_USES, VIEWS, view_states
from erpprov.state.scratch_build import build, prelude_as_possible

Key = tuple[str, str]


def canonical_views(conn: psycopg.Connection, declared: list[view_ddl.AnyView], prelude: Sequence[sql.Composed] = ()
                    ) -> tuple[dict[Key, ViewState], dict[Key, set[Key]]]:
    """Each declared view that the server can build, by its real (schema, name), and the relations
    each one reads (those of a stand-in under their real names). ``prelude`` runs first: the
    types, sequences and functions the apply creates, which queries and index expressions use."""
    if not declared:
        return {}, {}
    tag = uuid.uuid4().hex[:10]
    stand_in = {s: f"erpprov_scratch_{tag}_v{i}" for i, s in enumerate(sorted({v.schema_ for v in declared}))}
    real = {value: key for key, value in stand_in.items()}
    setup = [sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(s)) for s in stand_in.values()]
    setup.append(sql.SQL("SELECT set_config('search_path', {} || ', ' || current_setting('search_path'), true)")
                 .format(sql.Literal(", ".join(stand_in.values()))))
    # in reading order: a view built before the declared one it reads would bind the live one
    builds = {(v.schema_, v.name): view_ddl.create(v, schema=stand_in[v.schema_], plain=True)
              for v in view_ddl.in_reading_order(declared)}
    with conn.transaction(force_rollback=True):
        prelude_as_possible(conn, prelude)  # without it, views over what it creates wait for apply
        build(conn, setup, list(builds.values()))
        scratch = [list(stand_in.values())]
        rows = conn.execute(VIEWS.format(filter="n.nspname = ANY(%s)"), scratch).fetchall()
        edges = conn.execute(VIEW_USES.format(filter="vn.nspname = ANY(%s)"), scratch).fetchall()
        views = {(real[v.schema], v.name): replace(v, schema=real[v.schema]) for v in view_states(rows).values()}
        views |= _with_indexes(conn, declared, views, stand_in, tag)
    uses: dict[Key, set[Key]] = {}
    for schema, name, used_schema, used in edges:
        used_key: Key = (str(real.get(used_schema, used_schema)), used)
        uses.setdefault((real[schema], name), set()).add(used_key)
    return views, uses


def _with_indexes(conn: psycopg.Connection, declared: list[view_ddl.AnyView], views: dict[Key, ViewState],
                  stand_in: dict[str, str], tag: str) -> dict[Key, ViewState]:
    """The built materialized views that declare `indexes:`, with them as the server prints them:
    each view's columns are known now, so each entry is a column or a proven expression; the
    indexes go on a materialized stand-in of the built view (WITH NO DATA: nothing runs), under
    its real name, so the names PostgreSQL chooses are those it will choose on the real one."""
    indexed = [v for v in declared if isinstance(v, model.MaterializedView) and v.indexes
               and (v.schema_, v.name) in views]
    if not indexed:
        return {}
    holder = {s: f"erpprov_scratch_{tag}_m{i}" for i, s in enumerate(sorted({v.schema_ for v in indexed}))}
    setup = [sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(s)) for s in holder.values()]
    written: dict[Key, list[IndexState]] = {}
    builds = []
    for view in indexed:
        key = (view.schema_, view.name)
        names = {name for name, _ in views[key].columns}
        written[key] = [matview_indexes.written(ix, names) for ix in view.indexes or []]
        builds.append(sql.SQL("CREATE MATERIALIZED VIEW {} AS SELECT * FROM {} WITH NO DATA").format(
            sql.Identifier(holder[view.schema_], view.name), sql.Identifier(stand_in[view.schema_], view.name)))
        builds += [table_ddl.create_index(holder[view.schema_], view.name, ix) for ix in written[key]]
    build(conn, setup, builds)
    read = matview_indexes.read_indexes(conn, matview_indexes.in_schemas(list(holder.values())))
    result = {}
    for view in indexed:
        key = (view.schema_, view.name)
        got = read.get((holder[view.schema_], view.name), ())
        if len(got) != len(written[key]):
            raise ErpprovError(f"materialized view {view.schema_}.{view.name}: PostgreSQL rejects "
                               f"{len(written[key]) - len(got)} of its indexes",
                               hint="each index entry must be one of its columns or an expression over them")
        # read back in creation order: the file's
        result[key] = replace(views[key], index_states=tuple(
            replace(g, comment=w.comment, declared_name=w.declared_name, source=w.source)
            for g, w in zip(got, written[key], strict=True)))
    return result
