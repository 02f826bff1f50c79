"""SQL of seed rows: the temporary table the declared rows are copied into, the one query that
compares them with the live table, and the statements that make the live table hold them.

Identifiers go through sql.Identifier; column types are format_type text printed by the server
(the canonical desired state); the row values never appear in SQL, they travel as COPY input.
"""

from __future__ import annotations

from psycopg import sql

from erpprov.core.actions import Statement
from erpprov.core.seed import SAMPLE_ROWS, DataComparison
from erpprov.postgres.ddl import ident, literal, text

SEED_TABLE = ident("pg_temp", "erpprov_seed")
# Types without an equality operator, compared in a form that has one.
_COMPARED_AS = {"json": "jsonb", "xml": "text", "point": "text", "line": "text", "lseg": "text", "box": "text",
                "path": "text", "polygon": "text", "circle": "text"}


# The comparison's hash tables (the declared keys grouped, the live keys joined) held in memory:
# at the default 4 MB, 100,000 rows spill to disk. For the rolled-back comparison only.
COMPARE_MEMORY = "SET LOCAL work_mem = '64MB'"


def ordinal(columns: tuple[str, ...]) -> str:
    """The seed table's own column numbering the rows in input order: a name no data column has."""
    name = "#"
    while name in columns:
        name += "#"
    return name


def _comparable(alias: str | None, column: str, type_: str) -> sql.Composable:
    value = sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(column)) if alias else ident(column)
    cast = _COMPARED_AS.get(type_.removesuffix("[]"))
    if cast is None:
        return value
    return sql.SQL("{}::{}{}").format(value, sql.SQL(cast), sql.SQL("[]" if type_.endswith("[]") else ""))


def _keys_equal(c: DataComparison) -> sql.Composable:
    # `=`, not IS NOT DISTINCT FROM: a hash join over any number of rows. Keys are never NULL
    # (the comparison reports declared NULL keys as an error).
    types = dict(zip(c.columns, c.types, strict=True))
    return sql.SQL(" AND ").join(sql.SQL("{} = {}").format(_comparable("l", k, types[k]), _comparable("d", k, types[k]))
                                 for k in c.key)


def _same_values(c: DataComparison) -> sql.Composable:
    others = [(n, t) for n, t in zip(c.columns, c.types, strict=True) if n not in c.key]
    if not others:
        return sql.SQL("true")
    return sql.SQL(" AND ").join(sql.SQL("{} IS NOT DISTINCT FROM {}").format(
        _comparable("l", n, t), _comparable("d", n, t)) for n, t in others)


def create_seed_table(columns: tuple[str, ...], types: tuple[str, ...]) -> Statement:
    # The row numbers come from one session's sequence, consecutive with or without a cache; the
    # cache spares a sequence update per row (a tenth of the COPY at 100,000 rows).
    definitions = [sql.SQL("{} bigint GENERATED ALWAYS AS IDENTITY (CACHE 10000)").format(ident(ordinal(columns)))]
    definitions += [sql.SQL("{} {}").format(ident(n), sql.SQL(t)) for n, t in zip(columns, types, strict=True)]
    return Statement(text(sql.SQL("CREATE TEMPORARY TABLE {} ({})").format(
        SEED_TABLE, sql.SQL(", ").join(definitions))))


def copy_seed(columns: tuple[str, ...], header: bool, payload: bytes, rows: str,
              into: sql.Identifier = SEED_TABLE) -> Statement:
    """COPY of ``payload`` into the seed table (or straight ``into`` a table that gets every row);
    ``rows`` describes it where the statement is shown (the values never are)."""
    query = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, HEADER {})").format(
        into, sql.SQL(", ").join(map(ident, columns)), sql.SQL("true" if header else "false"))
    shown = text(query)
    return Statement(shown, shown=f"{shown} -- {rows}", copy=payload)


def _live_rows(c: DataComparison, live_name: str | None, live_columns: dict[str, str]) -> sql.Composable:
    """The live table's rows in the declared columns and types (see compare_query)."""
    items: list[sql.Composable] = []
    for name, type_ in zip(c.columns, c.types, strict=True):
        if name not in live_columns:
            items.append(sql.SQL("NULL::{} AS {}").format(sql.SQL(type_), ident(name)))
        elif live_columns[name] != type_:
            items.append(sql.SQL("{}::{} AS {}").format(ident(name), sql.SQL(type_), ident(name)))
        else:
            items.append(ident(name))
    if live_name is None:
        return sql.SQL("SELECT {} WHERE false").format(sql.SQL(", ").join(items))
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(items), ident(c.schema, live_name))


def unique_keys(c: DataComparison) -> sql.Composed:
    """A unique index on the seed table's keys, built once its rows are in: a sorted build proves
    no key repeats for a fraction of grouping the keys (it fails on the first repeated one, which
    key_problems_query then names by row). NULL keys pass it: the comparison names those."""
    types = dict(zip(c.columns, c.types, strict=True))
    return sql.SQL("CREATE UNIQUE INDEX ON {} ({})").format(SEED_TABLE, sql.SQL(", ").join(
        sql.SQL("({})").format(_comparable(None, k, types[k])) for k in c.key))


def key_problems_query(c: DataComparison) -> sql.Composed:
    """One row: the first rows (by number) whose key is NULL, and that repeat an earlier row's key."""
    order = ident(ordinal(c.columns))
    types = dict(zip(c.columns, c.types, strict=True))
    null_key = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(ident(k)) for k in c.key)
    return sql.SQL("""
SELECT (SELECT array_agg({order} ORDER BY {order}) FROM (SELECT {order} FROM {seed} WHERE {null_key}
                                                      ORDER BY {order} LIMIT {n}) x),
       (SELECT array_agg(o ORDER BY o) FROM (SELECT max({order}) AS o FROM {seed} GROUP BY {key_cols}
                                             HAVING count(*) > 1 ORDER BY o LIMIT {n}) x)
""").format(seed=SEED_TABLE, order=order, null_key=null_key, key_cols=sql.SQL(", ").join(
    _comparable(None, k, types[k]) for k in c.key),
            n=literal(SAMPLE_ROWS))


def digest_query(c: DataComparison, live_name: str | None = None,
                 live_columns: dict[str, str] | None = None) -> sql.Composed:
    """One row: how many rows, and the sum of their hashes, of the seed table (``live_name`` None)
    or of the live table in the declared columns and types. Hashes follow each type's equality
    (1.5 and 1.50 hash alike), and a sum does not depend on the order the rows are read in."""
    rows = SEED_TABLE if live_name is None else sql.SQL("({})").format(_live_rows(c, live_name, live_columns or {}))
    return sql.SQL("SELECT count(*), sum(hash_record_extended(ROW({}), 0)) FROM {} AS d").format(
        sql.SQL(", ").join(_comparable("d", n, t) for n, t in zip(c.columns, c.types, strict=True)), rows)


def compare_query(c: DataComparison, live_name: str | None, live_columns: dict[str, str]) -> sql.Composed:
    """One row: counts and samples of rows to insert, update and delete, and of declared rows
    without a key (a repeated key is unique_keys' to find). ``live_name``: the live table's name in
    the schema (None: it does not exist yet); ``live_columns``: its column types, where a column it
    lacks yet (added by this plan) reads as NULL and one of another type is cast."""
    order = ident(ordinal(c.columns))
    live = _live_rows(c, live_name, live_columns)

    def as_text(alias: str) -> sql.Composable:
        return sql.SQL("ARRAY[{}]::text[]").format(sql.SQL(", ").join(
            sql.SQL("{}.{}::text").format(ident(alias), ident(n)) for n in c.columns))

    null_key = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(ident(k)) for k in c.key)
    n = literal(SAMPLE_ROWS)
    update = c.mode != "insert"
    delete = c.mode == "exact"
    # A table that is new holds no row: every declared row is an insert, counted with the declared
    # rows and sampled from the seed table, whose first rows are numbered 1, 2, ... (a fresh
    # identity in this one session), so no anti-join, copy or sort of all of them.
    inserts = sql.SQL("(SELECT n FROM s)" if live_name is None else "(SELECT count(*) FROM ins)")
    first = sql.SQL("(SELECT json_agg({d_text} ORDER BY d.{order}) FROM {source} d)").format(
        d_text=as_text("d"), order=order,
        source=sql.SQL("(SELECT * FROM {} WHERE {} <= {})").format(SEED_TABLE, order, n) if live_name is None
        else sql.SQL("(SELECT * FROM ins ORDER BY {} LIMIT {})").format(order, n))
    return sql.SQL("""
WITH l AS NOT MATERIALIZED ({live}),  -- the seed and live tables are read where used, never copied
s AS (SELECT count(*) AS n, (array_agg({order} ORDER BY {order}) FILTER (WHERE {null_key}))[1:{n}] AS nul
      FROM {seed} AS d),  -- one scan: the declared rows counted, and those without a key
ins AS MATERIALIZED (SELECT d.* FROM {seed} AS d WHERE NOT EXISTS (SELECT 1 FROM l WHERE {keys})),
upd AS (SELECT d.{order} AS o, {d_text} AS want, {l_text} AS have FROM {seed} AS d JOIN l ON {keys}
        WHERE {update} AND NOT ({same})),
del AS (SELECT {l_text} AS have FROM l WHERE {delete} AND NOT EXISTS (SELECT 1 FROM {seed} AS d WHERE {keys}))
SELECT (SELECT n FROM s),
       (SELECT nul FROM s),
       {inserts},
       {first},
       (SELECT count(*) FROM upd),
       (SELECT json_agg(json_build_array(want, have) ORDER BY o) FROM (SELECT * FROM upd ORDER BY o LIMIT {n}) x),
       (SELECT count(*) FROM del),
       (SELECT json_agg(have ORDER BY have) FROM (SELECT have FROM del ORDER BY have LIMIT {n}) x)
""").format(seed=SEED_TABLE, live=live, order=order, null_key=null_key, keys=_keys_equal(c),
            d_text=as_text("d"), l_text=as_text("l"), update=sql.SQL("true" if update else "false"),
            same=_same_values(c), delete=sql.SQL("true" if delete else "false"), n=n, inserts=inserts,
            first=first)


def delete_statements(c: DataComparison) -> list[Statement]:
    """The live rows the seed table (created and filled before) does not hold, deleted; then the
    seed table is dropped."""
    return [Statement(text(sql.SQL("DELETE FROM {} AS l WHERE NOT EXISTS (SELECT 1 FROM {} AS d WHERE {})").format(
                ident(c.schema, c.table), SEED_TABLE, _keys_equal(c)))),
            Statement(text(sql.SQL("DROP TABLE {}").format(SEED_TABLE)))]


def merge_statements(c: DataComparison) -> list[Statement]:
    """What makes the live table hold the rows in the seed table (created and filled before), its
    stale rows already deleted: updates, inserts in input order; then the seed table is dropped."""
    target = ident(c.schema, c.table)
    statements: list[sql.Composable] = []
    others = [n for n in c.columns if n not in c.key]
    if c.to_update and others:
        statements.append(sql.SQL("UPDATE {} AS l SET {} FROM {} AS d WHERE {} AND NOT ({})").format(
            target, sql.SQL(", ").join(sql.SQL("{} = d.{}").format(ident(n), ident(n)) for n in others),
            SEED_TABLE, _keys_equal(c), _same_values(c)))
    if c.to_insert:
        columns = sql.SQL(", ").join(map(ident, c.columns))
        statements.append(sql.SQL(
            "INSERT INTO {} ({}){} SELECT {} FROM {} AS d WHERE NOT EXISTS (SELECT 1 FROM {} AS l WHERE {}) "
            "ORDER BY d.{}").format(
            target, columns, sql.SQL(" OVERRIDING SYSTEM VALUE" if c.identity_always else ""),
            sql.SQL(", ").join(sql.SQL("d.{}").format(ident(n)) for n in c.columns), SEED_TABLE, target,
            _keys_equal(c), ident(ordinal(c.columns))))
    statements.append(sql.SQL("DROP TABLE {}").format(SEED_TABLE))
    return [Statement(text(s)) for s in statements]


def sequence_statements(c: DataComparison) -> list[Statement]:
    """Each seeded serial/identity column's sequence moved past the largest value in the table."""
    target = ident(c.schema, c.table)
    statements = []
    for column in c.sequences if c.to_insert or c.to_update else ():
        # The sequence moves forward only, to the largest value now in the table: the next row an
        # application inserts does not collide with a seeded one.
        sequence = sql.SQL("pg_get_serial_sequence({}, {})::regclass").format(
            literal(text(target)), literal(column))
        statements.append(sql.SQL(
            "SELECT setval({seq}, m) FROM (SELECT max({col}) AS m FROM {target}) AS x "
            "WHERE m > coalesce(pg_sequence_last_value({seq}), 0)").format(
            seq=sequence, col=ident(column), target=target))
    return [Statement(text(s)) for s in statements]
