"""SQL builders. Identifiers always go through sql.Identifier; types, defaults and expressions are
SQL by nature, so they go in as sql.SQL: either printed by PostgreSQL, or as written in the file and
then proven by `erpprov.core.fragments` when it was loaded. An expression is always spliced through
`expression()`, in the parentheses it was proven in."""

from __future__ import annotations

from psycopg import sql

from erpprov.core.actions import Statement
from erpprov.core.fragments import index_ordering
from erpprov.core.tables import (
    CHECK,
    EXCLUSION,
    FOREIGN_KEY,
    PRIMARY_KEY,
    UNIQUE,
    ColumnState,
    ConstraintState,
    IndexKey,
    IndexState,
    PolicyState,
    TableState,
)
from erpprov.postgres.ddl import ident, render


def idents(names: tuple[str, ...] | list[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def expression(text: str) -> sql.Composed:
    return sql.SQL("({})").format(sql.SQL(text))


def column_definition(col: ColumnState) -> sql.Composed:
    """`name type [COLLATE c] [DEFAULT e | GENERATED ...] [NOT NULL]`. A serial column is written
    the way the user spelled it (serial/bigserial), which makes PostgreSQL create and own its
    sequence; every other type is written in PostgreSQL's own format_type spelling."""
    parts: list[sql.Composable] = [sql.Identifier(col.name), sql.SQL(col.spelling if col.serial and col.spelling
                                                                       else col.type)]
    if col.compression:  # a word the model or the catalog reader chose
        parts.append(sql.SQL("COMPRESSION {}").format(sql.SQL(col.compression)))
    if col.collation:
        parts.append(sql.SQL("COLLATE {}").format(sql.SQL(col.collation)))  # regcollation text: quoted
    if col.default is not None:
        parts.append(sql.SQL("DEFAULT {}").format(expression(col.default_source or col.default)))
    if col.identity:
        parts.append(identity_clause(col.identity, col.identity_options))
    if col.generated is not None:
        parts.append(sql.SQL("GENERATED ALWAYS AS {} STORED").format(expression(col.generated_source or col.generated)))
    if col.not_null and not col.serial and not col.identity:
        parts.append(sql.SQL("NOT NULL"))
    return sql.SQL(" ").join(parts)


def identity_clause(identity: str, options: tuple[int, int, int, int, int, bool] | None) -> sql.Composed:
    clause = sql.SQL("GENERATED {} AS IDENTITY").format(sql.SQL(identity.upper()))
    if options is None:
        return clause
    return sql.SQL("{} ({})").format(clause, sql.SQL(" ").join(sequence_options(options)))


def sequence_options(options: tuple[int, int, int, int, int, bool]) -> list[sql.Composable]:
    """Every option, also those at their default: what the catalog holds is what is sent."""
    start, increment, minimum, maximum, cache, cycle = options
    return [sql.SQL("{} {}").format(sql.SQL(word), sql.Literal(value)) for word, value in (
        ("START WITH", start), ("INCREMENT BY", increment), ("MINVALUE", minimum), ("MAXVALUE", maximum),
        ("CACHE", cache))] + [sql.SQL("CYCLE" if cycle else "NO CYCLE")]


_DEFERRABLE = {(False, False): "", (True, False): " DEFERRABLE", (True, True): " DEFERRABLE INITIALLY DEFERRED"}


def constraint_body(con: ConstraintState) -> sql.Composable:
    """What follows `CONSTRAINT name` in CREATE TABLE or ALTER TABLE ... ADD."""
    deferrable = sql.SQL(_DEFERRABLE[(con.deferrable, con.initially_deferred)])
    if con.kind in (PRIMARY_KEY, UNIQUE):
        body = sql.SQL("PRIMARY KEY ({})" if con.kind == PRIMARY_KEY else "UNIQUE {}({})").format(
            *([] if con.kind == PRIMARY_KEY else [sql.SQL("NULLS NOT DISTINCT " if con.nulls_not_distinct else "")]),
            idents(con.columns))
        if con.include:
            body = sql.SQL("{} INCLUDE ({})").format(body, idents(con.include))
        if con.parameters:
            body = sql.SQL("{} WITH ({})").format(body, parameters(con.parameters))
        return sql.SQL("{}{}").format(body, deferrable)
    if con.kind == EXCLUSION:  # as written (the printed definition holds the deferrability)
        return sql.SQL("{}{}").format(sql.SQL(con.source), deferrable) if con.source else sql.SQL(con.definition or "")
    not_valid = sql.SQL("" if con.validated else " NOT VALID")
    if con.kind == CHECK:
        assert con.definition is not None
        return sql.SQL("{}{}").format(sql.SQL(con.source or con.definition), not_valid)  # as written, else as read
    assert con.kind == FOREIGN_KEY and con.ref_schema and con.ref_table
    on_delete: sql.Composable = sql.SQL(con.on_delete.upper())
    if con.delete_columns:
        on_delete = sql.SQL("{} ({})").format(on_delete, idents(con.delete_columns))
    return sql.SQL("FOREIGN KEY ({}) REFERENCES {} ({}){} ON UPDATE {} ON DELETE {}{}{}").format(
        idents(con.columns), sql.Identifier(con.ref_schema, con.ref_table), idents(con.ref_columns),
        sql.SQL(" MATCH FULL" if con.match == "full" else ""),
        sql.SQL(con.on_update.upper()), on_delete, deferrable, not_valid)


def table_constraint(con: ConstraintState) -> sql.Composed:
    return sql.SQL("CONSTRAINT {} {}").format(sql.Identifier(con.name), constraint_body(con))


def add_constraint(schema: str, table: str, con: ConstraintState) -> Statement:
    return render(sql.SQL("ALTER TABLE {} ADD {}").format(ident(schema, table), table_constraint(con)))


def comment_on_constraint(schema: str, table: str, name: str, text: str | None) -> Statement:
    return comment("CONSTRAINT", sql.SQL("{} ON {}").format(ident(name), ident(schema, table)), text)


def drop_constraint(schema: str, table: str, name: str) -> Statement:
    return render(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(ident(schema, table), ident(name)))


def create_table(table: TableState, constraints: list[ConstraintState]) -> Statement:
    items = [column_definition(c) for c in table.columns] + [table_constraint(c) for c in constraints]
    query = sql.SQL("CREATE {}TABLE {} ({})").format(sql.SQL("UNLOGGED " if table.unlogged else ""),
                                                   ident(table.schema, table.name), sql.SQL(", ").join(items))
    if table.partition_by:  # printed by pg_get_partkeydef, or built from proven parts (canon)
        query = sql.SQL("{} PARTITION BY {}").format(query, sql.SQL(table.partition_by_source or table.partition_by))
    if table.parameters:
        query = sql.SQL("{} WITH ({})").format(query, parameters(table.parameters))
    return render(query)


def create_partition(schema: str, name: str, parent: tuple[str, str], bound: str,
                     options: tuple[str, ...] = ()) -> sql.Composed:
    """`bound`: printed by pg_get_expr, or built from proven values (canon's `partition_bound_source`)."""
    query = sql.SQL("CREATE TABLE {} PARTITION OF {} {}").format(ident(schema, name), ident(*parent), sql.SQL(bound))
    return sql.SQL("{} WITH ({})").format(query, parameters(options)) if options else query


def column_settings(schema: str, table: str, col: ColumnState) -> list[Statement]:
    """What a column definition cannot say (SET STORAGE in one is PostgreSQL 16's)."""
    clauses = []
    if col.storage and col.storage != col.type_storage:
        clauses.append(sql.SQL("SET STORAGE {}").format(sql.SQL(col.storage.upper())))
    if col.statistics is not None:
        clauses.append(sql.SQL("SET STATISTICS {}").format(sql.Literal(col.statistics)))
    return [alter_column(schema, table, col.name, clause) for clause in clauses]


def index_key(key: IndexKey) -> sql.Composed:
    if key.expression is None:
        assert key.column is not None  # a key is a column or an expression
        parts: list[sql.Composable] = [sql.Identifier(key.column)]
    else:
        parts = [expression(key.expression)]
    if key.collation:  # SQL text: printed by regcollation, or proven a name by `index_entry`
        parts.append(sql.SQL("COLLATE {}").format(sql.SQL(key.collation)))
    if key.opclass:  # likewise
        parts.append(sql.SQL(key.opclass))
    order = index_ordering(key.descending, key.nulls_first)
    if order:
        parts.append(sql.SQL(order))
    return sql.SQL(" ").join(parts)


def create_index(schema: str, table: str, index: IndexState, *, name: str | None = None) -> sql.Composed:
    """`name` None with `index.name` empty lets PostgreSQL choose (canon's scratch build does that)."""
    chosen = name if name is not None else index.name
    return sql.SQL("CREATE {}INDEX {}ON {} {}").format(
        sql.SQL("UNIQUE " if index.unique else ""),
        sql.SQL("{} ").format(sql.Identifier(chosen)) if chosen else sql.SQL(""),
        ident(schema, table), sql.SQL(index.source) if index.source else index_tail(index))


def index_tail(index: IndexState) -> sql.Composed:
    """`USING method (keys) [INCLUDE (...)] [WHERE ...]` from the state; canon also spells an
    index as written with it (its scratch build and `IndexState.source`)."""
    query = sql.SQL("USING {} ({})").format(sql.Identifier(index.method),
                                            sql.SQL(", ").join(index_key(k) for k in index.keys))
    if index.include:
        query = sql.SQL("{} INCLUDE ({})").format(query, idents(index.include))
    if index.nulls_not_distinct:
        query = sql.SQL("{} NULLS NOT DISTINCT").format(query)
    if index.parameters:
        query = sql.SQL("{} WITH ({})").format(query, parameters(index.parameters))
    if index.predicate:
        query = sql.SQL("{} WHERE {}").format(query, expression(index.predicate))
    return query


def parameters(items: tuple[str, ...]) -> sql.Composed:
    """`name = 'value', ...` from reloptions text; a name is PostgreSQL's (read) or proven by the
    model's pattern, a value always goes as a literal."""
    pairs = (item.split("=", 1) for item in items)
    return sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.SQL(name), sql.Literal(value)) for name, value in pairs)


def new_parameters(want: tuple[str, ...], have: tuple[str, ...]) -> list[sql.Composed]:
    """`SET (...)` and `RESET (...)` clauses that turn storage parameters `have` into `want`."""
    names = {item.split("=", 1)[0] for item in want}
    gone = [item.split("=", 1)[0] for item in have if item.split("=", 1)[0] not in names]
    clauses = [sql.SQL("SET ({})").format(parameters(want))] if want else []
    if gone:
        clauses.append(sql.SQL("RESET ({})").format(sql.SQL(", ").join(sql.SQL(name) for name in gone)))
    return clauses


def create_policy(schema: str, table: str, policy: PolicyState, *,
                  roles: tuple[str, ...] | None = None) -> sql.Composed:
    """CREATE POLICY, its expressions as written (`roles`: instead of the policy's own)."""
    query = sql.SQL("CREATE POLICY {} ON {} AS {} FOR {} TO {}").format(
        sql.Identifier(policy.name), ident(schema, table),
        sql.SQL("PERMISSIVE" if policy.permissive else "RESTRICTIVE"),
        sql.SQL(policy.command.upper()), policy_roles(roles or policy.roles))
    return query + policy_expressions(policy)


def policy_roles(roles: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(", ").join(sql.SQL("PUBLIC") if r == "PUBLIC" else sql.Identifier(r) for r in roles)


def policy_expressions(policy: PolicyState) -> sql.Composed:
    using, check = policy.using_source or policy.using, policy.with_check_source or policy.with_check
    parts = [sql.SQL(" USING {}").format(expression(using)) if using is not None else sql.SQL(""),
             sql.SQL(" WITH CHECK {}").format(expression(check)) if check is not None else sql.SQL("")]
    return sql.Composed(parts)


def drop_index(schema: str, name: str) -> Statement:
    return render(sql.SQL("DROP INDEX {}").format(ident(schema, name)))


def comment(kind: str, target: sql.Composable, text: str | None) -> Statement:
    return render(sql.SQL("COMMENT ON {} {} IS {}").format(sql.SQL(kind), target, sql.Literal(text)))


def alter_table(schema: str, table: str, clause: sql.Composable) -> Statement:
    return render(sql.SQL("ALTER TABLE {} {}").format(ident(schema, table), clause))


def alter_column(schema: str, table: str, column: str, clause: sql.Composable) -> Statement:
    return alter_table(schema, table, sql.SQL("ALTER COLUMN {} {}").format(ident(column), clause))
