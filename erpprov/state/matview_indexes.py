"""The indexes of materialized views that declare `indexes:`, in the vocabulary of a table's
(`IndexState`), so they are compared by shape as a table's are: the live ones read with the table
catalog's own queries, the desired ones built on a stand-in of the view in the scratch build of
`view_canon` and read back the same way, else (not built) as the file writes them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

import psycopg
from psycopg import sql

from erpprov.core import model
from erpprov.core.schema_objects import ViewState
from erpprov.core.tables import IndexState
from erpprov.postgres import table_ddl
from erpprov.postgres.naming import choose_name
from erpprov.state.canon import as_written
from erpprov.state.table_catalog import read_tables

Key = tuple[str, str]
_BARE = re.compile(r"[a-z_][a-z0-9_$]*")  # an entry that is a column name, written as an expression
_LIVE = sql.SQL("c.relkind = 'm' AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'")


def in_schemas(schemas: list[str]) -> sql.Composable:
    """The materialized views of ``schemas`` (the scratch build's, names of our own as literals)."""
    return sql.SQL("c.relkind = 'm' AND n.nspname IN ({})").format(sql.SQL(", ").join(map(sql.Literal, schemas)))


def read_indexes(conn: psycopg.Connection, where: sql.Composable = _LIVE) -> dict[Key, tuple[IndexState, ...]]:
    """Each materialized view's indexes (one pipelined round trip, whatever their number)."""
    return {key: table.indexes for key, table in read_tables(conn, where).tables.items()}


def with_live_indexes(conn: psycopg.Connection, views: Mapping[Key, ViewState]) -> dict[Key, ViewState]:
    """``views`` with the ``index_states`` of their indexes (read only when one has any)."""
    read = read_indexes(conn) if any(v.indexes for v in views.values()) else {}
    return {key: replace(view, index_states=read.get(key, ())) if view.materialized else view
            for key, view in views.items()}


def written(index: model.Index, columns: set[str]) -> IndexState:
    """A declared index as the file writes it; ``source`` is what CREATE INDEX spells."""
    state = as_written(index, columns)
    return replace(state, declared_name=index.name is not None,
                   source=table_ddl.index_tail(state).as_string(None))


def desired_indexes(declared: list[model.View | model.MaterializedView], canonical: Mapping[Key, ViewState]
                    ) -> dict[Key, tuple[IndexState, ...]]:
    """The indexes each materialized view that declares `indexes:` wants: as the scratch build
    printed them, else as written (the view could not be built yet: the next plan compares them)."""
    wanted = {}
    for view in declared:
        if isinstance(view, model.MaterializedView) and view.indexes is not None:
            key = (view.schema_, view.name)
            built = canonical.get(key)
            wanted[key] = built.index_states if built is not None else _named(view, view.indexes)
    return wanted


def _named(view: model.MaterializedView, indexes: list[model.Index]) -> tuple[IndexState, ...]:
    """As written, an unnamed one under a name of the kind PostgreSQL chooses (so its comment can
    be set when it is created): unnamed, it is matched by shape, so the next plan accepts whatever
    name it has."""
    taken: set[str] = set()
    states = []
    for ix in indexes:
        state = written(ix, set(view.columns))
        if not state.name:
            keys = [k.column or (k.expression if k.expression and _BARE.fullmatch(k.expression) else "expr")
                    for k in state.keys]
            state = replace(state, name=choose_name(view.name, keys, "idx", taken))
        states.append(state)
    return tuple(states)
