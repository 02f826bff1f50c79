"""SQL builders for views and materialized views. A view's query was proven by the loader to be one
SELECT (`core.fragments.query`); it is spliced on lines of its own, so no comment in it can reach
the clauses erpprov writes after it."""

from __future__ import annotations

from psycopg import sql

from erpprov.core import model
from erpprov.core.fragments import relations

AnyView = model.View | model.MaterializedView


def declared_reads(declared: list[AnyView]) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """The declared views each declared view's query names (an unqualified name: in the view's own
    schema or `public`): what must exist before it, known before any server has built it."""
    keys = {(v.schema_, v.name) for v in declared}
    return {(v.schema_, v.name): {(schema, name) for named_schema, name in relations(v.query)
                                  for schema in ([named_schema] if named_schema else [v.schema_, "public"])
                                  if (schema, name) in keys and (schema, name) != (v.schema_, v.name)}
            for v in declared}


def in_reading_order(declared: list[AnyView]) -> list[AnyView]:
    """``declared`` with each view after the declared views it reads (file order otherwise; a cycle,
    which the server refuses anyway, keeps file order)."""
    reads = declared_reads(declared)
    placed: list[AnyView] = []
    done: set[tuple[str, str]] = set()
    pending = list(declared)
    while pending:  # each round places at least one view, or stops
        ready = [v for v in pending if reads[(v.schema_, v.name)] <= done]
        if not ready:
            break
        placed += ready
        done |= {(v.schema_, v.name) for v in ready}
        pending = [v for v in pending if (v.schema_, v.name) not in done]
    return placed + pending


def _head(view: AnyView, schema: str, name: str) -> sql.Composable:
    target = sql.Identifier(schema, name)
    if not view.columns:
        return target
    return sql.SQL("{} ({})").format(target, sql.SQL(", ").join(sql.Identifier(c) for c in view.columns))


def options(view: model.View) -> list[sql.Composable]:
    return [sql.SQL("{} = {}").format(sql.SQL(name), sql.SQL("true" if value else "false"))
            for name, value in (("security_barrier", view.security_barrier),
                                ("security_invoker", view.security_invoker)) if value]


def create(view: AnyView, *, schema: str | None = None, or_replace: bool = False, plain: bool = False) -> sql.Composed:
    """CREATE [OR REPLACE] [MATERIALIZED] VIEW. ``schema`` stands in for the view's own (the scratch
    build); ``plain`` builds a materialized view's query as a plain view (read, never run)."""
    where = schema or view.schema_
    materialized = isinstance(view, model.MaterializedView) and not plain
    words = "CREATE OR REPLACE VIEW" if or_replace else ("CREATE MATERIALIZED VIEW" if materialized else "CREATE VIEW")
    query = sql.SQL("{} {}").format(sql.SQL(words), _head(view, where, view.name))
    if isinstance(view, model.View) and options(view):
        query = sql.SQL("{} WITH ({})").format(query, sql.SQL(", ").join(options(view)))
    query = sql.SQL("{} AS\n{}\n").format(query, sql.SQL(view.query))
    if isinstance(view, model.View) and view.check_option:
        query = sql.SQL("{}WITH {} CHECK OPTION").format(query, sql.SQL(view.check_option.upper()))
    if isinstance(view, model.MaterializedView) and materialized:
        query = sql.SQL("{}WITH {}DATA").format(query, sql.SQL("" if view.with_data else "NO "))
    return query


def drop(materialized: bool, schema: str, name: str) -> sql.Composed:
    return sql.SQL("DROP {}VIEW {}").format(sql.SQL("MATERIALIZED " if materialized else ""),
                                           sql.Identifier(schema, name))
