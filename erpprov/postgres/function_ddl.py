"""SQL builders for functions and procedures. Types and defaults were proven by the loader
(`core.fragments`); names go through sql.Identifier; the body is one string literal, never spliced."""

from __future__ import annotations

from psycopg import sql

from erpprov.core import model
from erpprov.postgres.ddl import setting_value

AnyFunction = model.Function | model.Procedure


def _argument(argument: model.Argument) -> sql.Composable:
    parts: list[sql.Composable] = [sql.SQL(argument.mode.upper())]
    if argument.name:
        parts.append(sql.Identifier(argument.name))
    parts.append(sql.SQL(argument.type))
    if argument.default is not None:
        parts.append(sql.SQL("DEFAULT ({})").format(sql.SQL(argument.default)))
    return sql.SQL(" ").join(parts)


def _result(function: model.Function) -> sql.Composable:
    if function.returns_table:
        return sql.SQL("TABLE ({})").format(sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.type)) for c in function.returns_table))
    return sql.SQL("{}{}").format(sql.SQL("SETOF " if function.setof else ""), sql.SQL(function.returns or "void"))


def create(function: AnyFunction, *, schema: str | None = None, or_replace: bool = False) -> sql.Composed:
    """CREATE [OR REPLACE] FUNCTION/PROCEDURE with every attribute, so a replace leaves exactly the
    file's function. ``schema`` stands in for its own (the scratch build)."""
    procedure = isinstance(function, model.Procedure)
    words = f"CREATE {'OR REPLACE ' if or_replace else ''}{'PROCEDURE' if procedure else 'FUNCTION'}"
    parts: list[sql.Composable] = [sql.SQL("{} {}({})").format(
        sql.SQL(words), sql.Identifier(schema or function.schema_, function.name),
        sql.SQL(", ").join(_argument(a) for a in function.arguments))]
    if isinstance(function, model.Function) and (function.returns is not None or function.returns_table):
        parts.append(sql.SQL("RETURNS {}").format(_result(function)))
    parts.append(sql.SQL("LANGUAGE {}").format(sql.Identifier(function.language)))
    if isinstance(function, model.Function):
        parts += [sql.SQL(function.volatility.upper()),
                  sql.SQL("STRICT" if function.strict else "CALLED ON NULL INPUT"),
                  sql.SQL("PARALLEL {}").format(sql.SQL(function.parallel.upper())),
                  sql.SQL("LEAKPROOF" if function.leakproof else "NOT LEAKPROOF")]
        if function.cost is not None:
            parts.append(sql.SQL("COST {}").format(sql.Literal(function.cost)))
        if function.rows is not None:
            parts.append(sql.SQL("ROWS {}").format(sql.Literal(function.rows)))
    parts.append(sql.SQL("SECURITY DEFINER" if function.security_definer else "SECURITY INVOKER"))
    parts += [sql.SQL("SET {} = {}").format(sql.Identifier(name), setting_value(name, value))
              for name, value in sorted(function.set.items())]
    parts.append(sql.SQL("AS {}").format(sql.Literal(function.body)))
    return sql.SQL(" ").join(parts)


def clause(kind: str, schema: str, signature_name: str, identity: str) -> sql.Composed:
    """`FUNCTION s.f(integer, text)`: the identity is the server's own text
    (pg_get_function_identity_arguments), as grants already use it."""
    return sql.SQL("{} {}({})").format(sql.SQL(kind), sql.Identifier(schema, signature_name), sql.SQL(identity))
