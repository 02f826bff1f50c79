"""SQL builders for cluster and database objects. Identifiers always go through psycopg.sql."""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import sql

from erpprov.core.actions import Statement
from erpprov.core.cluster import PUBLIC, ObjectRef
from erpprov.postgres.naming import quote, unquote


def text(query: sql.Composable) -> str:
    # Composed without a connection: a plan is text, built by a diff that has none.
    return query.as_string(None)


def render(query: sql.Composable) -> Statement:
    """A plan's statement: the query's text."""
    return Statement(text(query))


def ident(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


def literal(value: object) -> sql.Composable:
    return sql.Literal(value)


def grantee(name: str) -> sql.Composable:
    return sql.SQL("PUBLIC") if name == PUBLIC else sql.Identifier(name)


def privilege_list(privileges: Iterable[str]) -> sql.Composable:
    # Privilege names come from a fixed, validated vocabulary (model.PRIVILEGES), never from free text.
    return sql.SQL(", ").join(sql.SQL(p) for p in sorted(privileges))


def object_clause(ref: ObjectRef, database: str | None = None) -> sql.Composable:
    """`ON DATABASE x`, `ON SCHEMA s`, `ON TABLE s.t`, `ON SEQUENCE s.q`, `ON FUNCTION s.f(args)`."""
    if ref.kind == "database":
        return sql.SQL("DATABASE {}").format(ident(ref.name))
    if ref.kind == "schema":
        return sql.SQL("SCHEMA {}").format(ident(ref.name))
    if ref.kind == "function":
        # The signature is the server's own text from pg_get_function_identity_arguments.
        name, _, args = ref.name.partition("(")
        return sql.SQL("FUNCTION {}.{}({}").format(ident(ref.schema or "public"), ident(name), sql.SQL(args))
    return sql.SQL("{} {}").format(sql.SQL(ref.kind.upper()), ident(ref.schema or "public", ref.name))


# Settings whose value is a list (GUC_LIST_INPUT): PostgreSQL stores them element by element,
# quoting elements that are not plain identifiers.
LIST_SETTINGS = {"search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries",
                 "shared_preload_libraries"}


def _elements(value: str) -> list[str]:
    return [unquote(p.strip()) for p in value.split(",")]


def setting_value(name: str, value: str) -> sql.Composable:
    if name.lower() in LIST_SETTINGS:
        return sql.SQL(", ").join(literal(p) for p in _elements(value))
    return literal(value)


def canonical_setting(name: str, value: str) -> str:
    """The text pg_db_role_setting holds for ``name = value`` (see LIST_SETTINGS)."""
    if name.lower() not in LIST_SETTINGS:
        return value
    return ", ".join(quote(p) for p in _elements(value))
