"""SQL builders for types (enums, composite types, domains) and standalone sequences. Identifiers
go through psycopg.sql; enum values and numbers are literals."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from erpprov.core import model
from erpprov.core.domain_calls import waiting_checks, waiting_default
from erpprov.core.schema_objects import EnumState, SequenceState


def _name(schema: str, name: str) -> sql.Identifier:
    return sql.Identifier(schema, name)


def create_enum(enum: EnumState) -> sql.Composed:
    return sql.SQL("CREATE TYPE {} AS ENUM ({})").format(
        _name(enum.schema, enum.name), sql.SQL(", ").join(sql.Literal(v) for v in enum.values))


def add_enum_value(schema: str, name: str, value: str, neighbour: str | None, before: bool) -> sql.Composed:
    """ALTER TYPE ... ADD VALUE, placed BEFORE or AFTER ``neighbour`` (None: at the end)."""
    query = sql.SQL("ALTER TYPE {} ADD VALUE {}").format(_name(schema, name), sql.Literal(value))
    if neighbour is None:
        return query
    return sql.SQL("{} {} {}").format(query, sql.SQL("BEFORE" if before else "AFTER"), sql.Literal(neighbour))


def sequence_options(seq: SequenceState) -> sql.Composed:
    """Every option, so that CREATE and ALTER leave the same sequence whatever it was before. START
    WITH only sets what a RESTART would go back to: the current value is left alone."""
    return sql.SQL("AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {} {}").format(
        sql.SQL(seq.type), sql.Literal(seq.increment), sql.Literal(seq.min_value), sql.Literal(seq.max_value),
        sql.Literal(seq.start), sql.Literal(seq.cache), sql.SQL("CYCLE" if seq.cycle else "NO CYCLE"))


def create_sequence(seq: SequenceState) -> sql.Composed:
    return sql.SQL("CREATE SEQUENCE {} {}").format(_name(seq.schema, seq.name), sequence_options(seq))


def owned_by(seq: SequenceState) -> sql.Composed:
    target = sql.SQL("NONE") if seq.owned_by is None else sql.Identifier(*seq.owned_by)
    return sql.SQL("ALTER SEQUENCE {} OWNED BY {}").format(_name(seq.schema, seq.name), target)


def alter(kind: str, schema: str, name: str, clause: sql.Composable) -> sql.Composed:
    """ALTER TYPE/SEQUENCE s.n <clause> (OWNER TO, RENAME TO, options)."""
    return sql.SQL("ALTER {} {} {}").format(sql.SQL(kind), _name(schema, name), clause)


def comment(kind: str, schema: str, name: str, text: str | None) -> sql.Composed:
    return sql.SQL("COMMENT ON {} {} IS {}").format(sql.SQL(kind), _name(schema, name), sql.Literal(text))


def create_composite(declared: model.Type, schema: str | None = None) -> sql.Composed:
    """CREATE TYPE ... AS (...); ``schema`` stands in for its own (the scratch build)."""
    return sql.SQL("CREATE TYPE {} AS ({})").format(
        _name(schema or declared.schema_, declared.name),
        sql.SQL(", ").join(attribute(a) for a in declared.attributes or []))


def attribute(declared: model.Attribute) -> sql.Composed:
    text = sql.SQL("{} {}").format(sql.Identifier(declared.name), sql.SQL(declared.type))
    if declared.collation:
        text = sql.SQL("{} COLLATE {}").format(text, sql.Identifier(declared.collation))
    return text


def domain_check(check: model.Check) -> sql.Composed:
    body = sql.SQL("CHECK ({})").format(sql.SQL(check.expression))
    return sql.SQL("CONSTRAINT {} {}").format(sql.Identifier(check.name), body) if check.name else body


def create_domain(declared: model.Type, schema: str | None = None,
                  functions: Sequence[model.Function] = ()) -> sql.Composed:
    """CREATE DOMAIN; ``schema`` stands in for its own (the scratch build). Its default and checks
    that call one of ``functions`` (its database's) are left to `domain_calls`, run after them."""
    parts: list[sql.Composable] = [sql.SQL("CREATE DOMAIN {} AS {}").format(
        _name(schema or declared.schema_, declared.name), sql.SQL(declared.base_type or ""))]
    if declared.collation:
        parts.append(sql.SQL("COLLATE {}").format(sql.Identifier(declared.collation)))
    if declared.default is not None and not waiting_default(declared, functions):
        parts.append(sql.SQL("DEFAULT ({})").format(sql.SQL(declared.default)))
    if declared.not_null:
        parts.append(sql.SQL("NOT NULL"))
    later = waiting_checks(declared, functions)
    parts += [domain_check(c) for c in declared.checks if c not in later]
    return sql.SQL(" ").join(parts)


def domain_calls(declared: model.Type, functions: Sequence[model.Function], schema: str | None = None
                 ) -> list[sql.Composed]:
    """What `create_domain` left out, once ``functions`` exist: the default and the checks (in
    their order, so unnamed ones get the same names in every build) that call one of them."""
    name = _name(schema or declared.schema_, declared.name)
    statements = [sql.SQL("ALTER DOMAIN {} SET DEFAULT ({})").format(name, sql.SQL(declared.default or ""))
                  ] if waiting_default(declared, functions) else []
    return statements + [sql.SQL("ALTER DOMAIN {} ADD {}").format(name, domain_check(c))
                         for c in waiting_checks(declared, functions)]
