"""Turn the desired model into the state vocabulary, in PostgreSQL's own spelling.

One scratch build per call, in two stages in transactions that are always rolled back. Every
string of the file in it was proven to be one type or one expression when the file was loaded
(`erpprov.core.fragments`), and each statement goes in an extended-protocol message of its own:

1. one "types" table (a few if there are more than 1000 combinations) whose columns are the
   distinct (type, default, collation, identity) combinations of all desired columns, added with
   ALTER TABLE ADD COLUMN. Reading it back gives every canonical type and default, whether
   serial/identity force NOT NULL, and — through atthasmissing, set only for non-volatile
   defaults — whether adding such a column would rewrite a table;
2. only for the desired tables with checks, generated columns or expression/partial indexes (the
   only things whose canonical text depends on the other columns): the table under its real name
   in a scratch schema standing in for its real schema, with the canonical column types from
   stage 1, as a storage-less partitioned table where possible. Unnamed checks and expression
   indexes also get PostgreSQL's names there.

Keys, unique constraints, foreign keys and plain column indexes need no build: they are compared by
shape, and their names are predicted (see `erpprov.postgres.naming`). Each stage goes to the server as
one pipeline and is read back with the live side's catalog queries: a fixed number of round trips
(2 builds + 2 pipelined reads) up to the lock budget of one transaction (a quarter of the server's
lock table: about 1,600 scratch tables on a default server). Past it, stage 2 runs in batches of
that size, each rolled back before the next, so it never needs more locks than the server has.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from typing import Any, LiteralString

import psycopg
from psycopg import sql

from erpprov.core import model
from erpprov.core.fragments import index_entry
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
    PartitionState,
    PolicyState,
    TablesState,
    TableState,
)
from erpprov.errors import ErpprovError
from erpprov.postgres import table_ddl as ddl
from erpprov.postgres.locks import LOCK_BUDGET, LOCKS_WITHOUT_ASKING, batched
from erpprov.postgres.naming import choose_name
from erpprov.state.table_catalog import inspect_tables, read_columns, read_tables, scratch_filter

COLUMNS_PER_TYPES_TABLE = 1000  # PostgreSQL allows 1600 columns per table

# spelling, default, collation, identity, identity options, storage, compression
ComboKey = tuple[str, str | None, str | None, str | None, model.IdentityOptions | None, str | None, str | None]


class _Unit:
    """One statement of the scratch build and what it is about, to name the culprit on error."""

    def __init__(self, what: str, statement: sql.Composed):
        self.what, self.statement = what, statement


def _combo_key(column: model.Column) -> ComboKey:
    if column.generated is not None:  # its type only; the expression comes from the table build
        return (column.type, None, column.collation, None, None, column.storage, column.compression)
    return (column.type, column.default, column.collation, column.identity, column.identity_options,
            column.storage, column.compression)


def _identity_options(options: model.IdentityOptions) -> list[sql.Composable]:
    """Only the options the file sets: PostgreSQL fills in the others, and says which it chose."""
    words = [sql.SQL("{} {}").format(sql.SQL(word), sql.Literal(value)) for word, value in (
        ("START WITH", options.start), ("INCREMENT BY", options.increment), ("MINVALUE", options.minvalue),
        ("MAXVALUE", options.maxvalue), ("CACHE", options.cache)) if value is not None]
    return [*words, sql.SQL("CYCLE" if options.cycle else "NO CYCLE")]


def _combo_definition(name: str, key: ComboKey) -> sql.Composed:
    spelling, default, collation, identity, options, _, compression = key
    parts: list[sql.Composable] = [sql.Identifier(name), sql.SQL(spelling)]
    if compression:  # one of the model's words
        parts.append(sql.SQL("COMPRESSION {}").format(sql.SQL(compression)))
    if collation:
        parts.append(sql.SQL("COLLATE {}").format(sql.Identifier(collation)))
    if default is not None:
        parts.append(sql.SQL("DEFAULT {}").format(ddl.expression(default)))
    if identity:
        parts.append(sql.SQL("GENERATED {} AS IDENTITY").format(sql.SQL(identity.upper())))
        if options is not None:
            parts.append(sql.SQL("({})").format(sql.SQL(" ").join(_identity_options(options))))
    return sql.SQL(" ").join(parts)


def _needs_build(index: model.Index, columns: set[str]) -> bool:
    """Expressions, predicates, collations and operator classes are spelled by the server."""
    if index.where is not None:
        return True
    entries = [index_entry(e, columns) for e in index.columns]
    return not all(e.is_column and e.collation is None and e.opclass is None for e in entries)


def _written_key(entry: str, columns: set[str]) -> IndexKey:
    """An index `columns` entry as a key: a column, or an expression as written."""
    e = index_entry(entry, columns)
    return IndexKey(column=e.body if e.is_column else None, expression=None if e.is_column else e.body,
                    descending=e.descending, nulls_first=e.nulls_first, opclass=e.opclass, collation=e.collation)


def _written_keys(index: model.Index, columns: set[str]) -> tuple[IndexKey, ...]:
    return tuple(_written_key(entry, columns) for entry in index.columns)


def exclusion_source(ex: model.Exclude, columns: set[str]) -> str:
    """`EXCLUDE USING method (key WITH op, ...) [INCLUDE (...)] [WHERE (...)]` as written: keys
    proven by `index_entry`, operators by the model's pattern, the predicate as an expression."""
    elements = sql.SQL(", ").join(sql.SQL("{} WITH {}").format(ddl.index_key(_written_key(e.entry, columns)),
                                                               sql.SQL(e.with_)) for e in ex.elements)
    query = sql.SQL("EXCLUDE USING {} ({})").format(sql.Identifier(ex.using), elements)
    if ex.include:
        query = sql.SQL("{} INCLUDE ({})").format(query, ddl.idents(ex.include))
    if ex.with_:
        query = sql.SQL("{} WITH ({})").format(query, ddl.parameters(_parameters(ex.with_)))
    if ex.where is not None:
        query = sql.SQL("{} WHERE {}").format(query, ddl.expression(ex.where))
    return query.as_string(None)


def _parameters(values: dict[str, str]) -> tuple[str, ...]:
    """As pg_class.reloptions holds them."""
    if not values:  # most objects set none: thousands of calls per plan
        return ()
    return tuple(sorted(f"{name}={value}" for name, value in values.items()))


def as_written(index: model.Index, columns: set[str]) -> IndexState:
    """The index as the file writes it, for `ddl` to spell (name "" lets PostgreSQL choose one)."""
    return IndexState(name=index.name or "", unique=index.unique, method=index.method,
                      keys=_written_keys(index, columns), include=tuple(index.include), predicate=index.where,
                      nulls_not_distinct=index.nulls_not_distinct, parameters=_parameters(index.with_),
                      comment=index.comment)


_DEFERRABLE_WORDS: dict[bool | str, str] = {False: "", True: " DEFERRABLE",
                                            "initially deferred": " DEFERRABLE INITIALLY DEFERRED"}


def _scratch_table(table: sql.Identifier, t: model.Table, typed: dict[int, ColumnState],
                   partition_key: str | None) -> sql.Composed:
    """The columns in their canonical types (read back from the types table: a serial becomes its
    integer type here, so no sequence is made), the generated columns and the checks.

    With `partition_key` it is a partitioned table, partitioned by that extra column: such a
    table has no storage, no TOAST table and no files, which makes it about ten times cheaper to
    create than a plain one. Unique indexes need a plain table (on a partitioned one they must
    contain the partition key)."""
    items: list[sql.Composable] = []
    for c in t.columns:
        col = typed[id(c)]
        item = sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(col.type))
        if col.collation:
            item = sql.SQL("{} COLLATE {}").format(item, sql.SQL(col.collation))  # regcollation text
        if c.generated is not None:
            item = sql.SQL("{} GENERATED ALWAYS AS {} STORED").format(item, ddl.expression(c.generated))
        items.append(item)
    if partition_key:
        items.append(sql.SQL("{} integer").format(sql.Identifier(partition_key)))
    for check in t.checks:
        body = sql.SQL("CHECK {}{}").format(ddl.expression(check.expression),
                                            sql.SQL(" NO INHERIT" if check.no_inherit else ""))
        items.append(sql.SQL("CONSTRAINT {} {}").format(sql.Identifier(check.name), body) if check.name else body)
    names = {c.name for c in t.columns}
    for ex in t.exclude:
        body = sql.SQL("{}{}").format(sql.SQL(exclusion_source(ex, names)), sql.SQL(_DEFERRABLE_WORDS[ex.deferrable]))
        items.append(sql.SQL("CONSTRAINT {} {}").format(sql.Identifier(ex.name), body) if ex.name else body)
    query = sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(items))
    if t.partition_by is not None:
        query = sql.SQL("{} PARTITION BY {}").format(query, sql.SQL(partition_key_source(t.partition_by, names)))
    elif partition_key:
        query = sql.SQL("{} PARTITION BY LIST ({})").format(query, sql.Identifier(partition_key))
    return query


def partition_key_source(by: model.PartitionBy, columns: set[str]) -> str:
    """`METHOD (key, ...)`: columns as identifiers, expressions in parentheses, COLLATE and operator
    class as proven names."""
    keys = []
    for entry in by.columns:
        e = index_entry(entry, columns)
        key = sql.Identifier(e.body) if e.is_column else ddl.expression(e.body)
        extras = [sql.SQL(f"COLLATE {e.collation}")] if e.collation else []
        extras += [sql.SQL(e.opclass)] if e.opclass else []
        keys.append(sql.SQL(" ").join([key, *extras]))
    return sql.SQL("{} ({})").format(sql.SQL(by.method.upper()), sql.SQL(", ").join(keys)).as_string(None)


def partition_bound_source(p: model.Partition) -> str:
    """`FOR VALUES ...` or `DEFAULT`, each value MINVALUE/MAXVALUE or a proven expression."""
    def values(items: list[str]) -> sql.Composable:
        return sql.SQL(", ").join(sql.SQL(v) if v in ("MINVALUE", "MAXVALUE") else ddl.expression(v) for v in items)

    if p.default:
        return "DEFAULT"
    if p.in_ is not None:
        query = sql.SQL("FOR VALUES IN ({})").format(values(p.in_))
    elif p.modulus is not None:
        query = sql.SQL("FOR VALUES WITH (MODULUS {}, REMAINDER {})").format(sql.Literal(p.modulus),
                                                                           sql.Literal(p.remainder))
    else:
        query = sql.SQL("FOR VALUES FROM ({}) TO ({})").format(values(p.from_ or []), values(p.to or []))
    return query.as_string(None)


def _execute(conn: psycopg.Connection, statements: Iterable[sql.Composed], then: LiteralString | None = None) -> Any:
    """Each statement in an extended-protocol message of its own, which the server refuses to hold
    more than one statement (a second wall behind `erpprov.core.fragments`); pipelined, so the whole
    build is still one round trip. ``then``, a query of erpprov's own, ends the pipeline: its one value
    is returned."""
    with conn.pipeline():
        for statement in statements:
            conn.execute(statement, prepare=False)
        last = conn.execute(then) if then else None
    row = last.fetchone() if last else None
    return row[0] if row else None


def _culprit(conn: psycopg.Connection, units: list[_Unit], error: psycopg.Error) -> ErpprovError:
    """The batch failed: replay it one statement at a time (rolled back too) to say which
    declaration PostgreSQL rejected."""
    with conn.transaction(force_rollback=True):
        for unit in units:
            try:
                with conn.transaction():
                    _execute(conn, [unit.statement])
            except psycopg.Error as exc:
                return ErpprovError(f"{unit.what}: PostgreSQL rejects it: {exc.diag.message_primary or exc}",
                                    hint="the type, default or expression must be valid PostgreSQL SQL")
    return ErpprovError(f"PostgreSQL rejected the table definitions: {error}")


def _declared(prelude: Sequence[sql.Composed]) -> list[_Unit]:
    return [_Unit(f"declared type ({statement.as_string(None)})", statement) for statement in prelude]


def refuse_bad_prelude(conn: psycopg.Connection, prelude: Sequence[sql.Composed]) -> None:
    """The extensions and types the plan creates, which every scratch build of the database starts
    from, built once (rolled back, one round trip): one the server refuses stops the plan here,
    named, whichever builds would have met it (a play of types alone has no table build)."""
    if not prelude:
        return
    try:
        with conn.transaction(force_rollback=True):
            _execute(conn, prelude)
    except psycopg.Error as exc:
        raise _culprit(conn, _declared(prelude), exc) from None


def canonicalize(conn: psycopg.Connection, tables: list[model.Table], live: TablesState | None = None,
                 prelude: Sequence[sql.Composed] = ()) -> TablesState:
    """The desired tables in the state vocabulary. `live` (optional; read when needed and not
    given) supplies the primary key of foreign-key targets that exist only in the live database.
    `prelude` runs first in the same rolled-back build: the types the file adds, which columns use."""
    if not tables:
        return TablesState({})
    tag = uuid.uuid4().hex[:10]
    types_schema = f"erpprov_scratch_{tag}_types"
    real_schemas = sorted({t.schema_ for t in tables} | {p.schema_ for t in tables for p in t.partitions if p.schema_})
    stand_in = {schema: f"erpprov_scratch_{tag}_{i}" for i, schema in enumerate(real_schemas)}
    declared = _declared(prelude)
    units = [*declared, _Unit("scratch schema", sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(types_schema)))]

    combos: dict[ComboKey, str] = {}
    keys: dict[int, ComboKey] = {}  # id(model column) -> its combination, computed once
    for t in tables:
        for c in t.columns:
            key = keys[id(c)] = _combo_key(c)
            if key not in combos:
                combos[key] = f"c{len(combos)}"
                if len(combos) % COLUMNS_PER_TYPES_TABLE == 1:
                    units.append(_Unit("scratch table", sql.SQL("CREATE TABLE {} ()").format(
                        sql.Identifier(types_schema, f"t{len(combos) // COLUMNS_PER_TYPES_TABLE}"))))
                table_name = f"t{(len(combos) - 1) // COLUMNS_PER_TYPES_TABLE}"
                what = f"column {t.schema_}.{t.name}.{c.name} ({c.type})"
                units.append(_Unit(what, sql.SQL("ALTER TABLE {} ADD COLUMN {}").format(
                    sql.Identifier(types_schema, table_name), _combo_definition(combos[key], key))))
                if c.storage:  # read back as the type's own storage or not
                    units.append(_Unit(what, sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET STORAGE {}").format(
                        sql.Identifier(types_schema, table_name), sql.Identifier(combos[key]), sql.SQL(c.storage))))
    second_stage = [_built_indexes(t) for t in tables]  # parses every index entry: once per plan
    try:
        with conn.transaction(force_rollback=True):
            # the lock budget of the second stage (and of the reprint check, which only tables built
            # there can need) travels with this build: no round trip of its own
            asked = LOCK_BUDGET if any(b is not None for b in second_stage) else None
            budget = _execute(conn, (u.statement for u in units), then=asked) or LOCKS_WITHOUT_ASKING
            typed = {c.name: c for c in read_columns(conn, scratch_filter([types_schema]))}
    except psycopg.Error as exc:
        raise _culprit(conn, units, exc) from None
    typed_by_column = {column_id: typed[combos[key]] for column_id, key in keys.items()}
    built, needs_build, builds = _table_builds(tables, second_stage, typed_by_column, stand_in, tag)
    # each batch is a transaction of its own: the declared types and extensions are made again in it
    scratch = _build_in_batches(conn, builds, budget, declared + [_Unit("scratch schemas", sql.SQL(
        "CREATE SCHEMA {}").format(sql.Identifier(s))) for s in stand_in.values()], list(stand_in.values()))
    if live is None and _needs_live(tables):
        live = inspect_tables(conn)
    desired = _assemble(tables, typed_by_column, needs_build, _built_map(scratch, stand_in, built),
                        live or TablesState({}))
    return _settle_reprints(conn, desired, live, budget) if live is not None else desired


def extension_prelude(db: model.Database, live: Collection[str]) -> list[sql.Composed]:
    """The extensions the plan creates, for the scratch build's `prelude`: their types and operator
    classes (citext, btree_gist) are then there for the tables that use them."""
    return [sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(e.name))
            for e in db.extensions if e.state == "present" and e.name not in live]


def _settle_reprints(conn: psycopg.Connection, desired: TablesState, live: TablesState, budget: int) -> TablesState:
    """PostgreSQL does not always print an expression it re-reads the way it printed it first:
    `status IN ('a', 'b')` is stored as ARRAY[('a'::varchar)::text, ...], and after a dump and
    restore as (ARRAY['a'::varchar, ...])::text[]. Both mean the same; only their text differs.
    For each check or index predicate whose text differs from its live namesake, build the desired
    text once more on a copy of the live table (in a rolled-back transaction) and compare what the
    server prints then: equal means equivalent, and the live text is kept."""
    checks: list[tuple[tuple[str, str], str, str]] = []  # (table, name, desired definition)
    predicates: list[tuple[tuple[str, str], str, str]] = []
    live_checks: dict[tuple[str, str], dict[str, ConstraintState]] = {}  # per table, by name
    live_indexes: dict[tuple[str, str], dict[str, IndexState]] = {}
    for key, table in desired.tables.items():
        current = live.tables.get(key)
        if current is None:
            continue
        table_checks = live_checks[key] = {c.name: c for c in current.constraints if c.kind == CHECK}
        checks += [(key, c.name, c.definition) for c in table.constraints
                   if c.kind == CHECK and c.name in table_checks and c.definition
                   and table_checks[c.name].definition != c.definition]
        table_indexes = live_indexes[key] = {i.name: i for i in current.indexes}
        predicates += [(key, i.name, i.predicate) for i in table.indexes
                       if i.predicate and i.name in table_indexes and table_indexes[i.name].predicate
                       and table_indexes[i.name].predicate != i.predicate and current.columns]
    if not checks and not predicates:
        return desired
    schema = f"erpprov_scratch_{uuid.uuid4().hex[:10]}_reprint"
    copies = {key: f"t{i}" for i, key in enumerate(sorted({k for k, _, _ in checks + predicates}))}
    statements: dict[tuple[str, str], list[sql.Composed]] = {key: [sql.SQL("CREATE TABLE {} (LIKE {})").format(
        sql.Identifier(schema, copy), sql.Identifier(*key))] for key, copy in copies.items()}
    # A column the plan retypes is what the desired text will be read against once applied (ALTER
    # COLUMN TYPE reprints a live check in casts of the old type): the copy takes the new type first.
    for key, copy in copies.items():
        statements[key] += [sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING NULL").format(
            sql.Identifier(schema, copy), sql.Identifier(column.name), sql.SQL(column.type))
            for column in desired.tables[key].columns
            if (old := live.tables[key].column(column.name)) is not None and old.type != column.type]
    for key, name, definition in checks:
        statements[key].append(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            sql.Identifier(schema, copies[key]), sql.Identifier(name), sql.SQL(definition)))
    for key, name, predicate in predicates:
        statements[key].append(sql.SQL("CREATE INDEX {} ON {} ({}) WHERE {}").format(
            sql.Identifier(name), sql.Identifier(schema, copies[key]),
            sql.Identifier(live.tables[key].columns[0].name), ddl.expression(predicate)))
    indexes = Counter(key for key, _, _ in predicates)
    # measured: the live table 1 lock, its plain copy 4, an index 2
    builds = [_Build([_Unit(f"table {key[0]}.{key[1]}", statement) for statement in table_statements],
                     5 + 2 * indexes[key]) for key, table_statements in statements.items()]
    try:
        reprinted = _build_in_batches(conn, builds, budget, [_Unit("scratch schema", sql.SQL("CREATE SCHEMA {}").format(
            sql.Identifier(schema)))], [schema], name_culprit=False)
    except psycopg.Error:
        return desired  # cannot tell: keep the plain comparison (the diff then shows the change)
    tables = dict(desired.tables)
    for key, copy in copies.items():
        again = reprinted.tables[(schema, copy)]
        table_checks, table_indexes = live_checks[key], live_indexes[key]
        same_checks = {c.name for c in again.constraints if c.kind == CHECK
                       and c.name in table_checks and table_checks[c.name].definition == c.definition}
        same_predicates = {i.name for i in again.indexes
                           if i.name in table_indexes and table_indexes[i.name].predicate == i.predicate}
        table = tables[key]
        tables[key] = replace(table, constraints=tuple(
            replace(c, definition=table_checks[c.name].definition) if c.kind == CHECK and c.name in same_checks else c
            for c in table.constraints), indexes=tuple(
            replace(i, predicate=table_indexes[i.name].predicate) if i.name in same_predicates else i
            for i in table.indexes))
    return TablesState(tables)


def _built_indexes(t: model.Table) -> list[model.Index] | None:
    """The indexes of ``t`` that the second stage builds, if ``t`` is built there at all (None if not)."""
    names = {c.name for c in t.columns}
    built = [ix for ix in t.indexes if _needs_build(ix, names)]
    needed = (t.checks or t.exclude or t.policies or built or t.partition_by is not None
              or any(c.generated is not None for c in t.columns))
    return built if needed else None


class _Build:
    """The statements that build one scratch table, and how many locks they take."""

    def __init__(self, units: list[_Unit], locks: int):
        self.units, self.locks = units, locks


def _table_builds(tables: list[model.Table], second_stage: list[list[model.Index] | None],
                  typed: dict[int, ColumnState], stand_in: dict[str, str],
                  tag: str) -> tuple[list[model.Table], set[int], list[_Build]]:
    """Second stage: the tables whose checks, generated columns or expression/partial indexes
    need their columns (`second_stage`: `_built_indexes` of each table). Returns them, the ids of
    the model indexes built, and their builds."""
    built: list[model.Table] = []
    needs_build: set[int] = set()
    builds: list[_Build] = []
    for t, built_indexes in zip(tables, second_stage, strict=True):
        if built_indexes is not None:
            names = {c.name for c in t.columns}
            needs_build.update(id(ix) for ix in built_indexes)
            # a partitioned table takes no unique index, NO INHERIT check or exclusion constraint
            # (a table partitioned in the file is built with its own key)
            plain = any(ix.unique for ix in built_indexes) or any(c.no_inherit for c in t.checks) or bool(t.exclude)
            key = None if plain or t.partition_by else f"erpprov_scratch_key_{tag}"
            units = [_Unit(f"table {t.schema_}.{t.name}", _scratch_table(
                sql.Identifier(stand_in[t.schema_], t.name), t, typed, key))]
            units += [_Unit(f"index {ix.name or ix.columns} on {t.schema_}.{t.name}",
                            ddl.create_index(stand_in[t.schema_], t.name, as_written(ix, names)))
                      for ix in built_indexes]
            units += [_Unit(f"partition {p.name} of {t.schema_}.{t.name}", ddl.create_partition(
                stand_in[p.schema_ or t.schema_], p.name, (stand_in[t.schema_], t.name), partition_bound_source(p)))
                for p in t.partitions]
            units += [_Unit(f"index {ix.name} on {p.schema_ or t.schema_}.{p.name}", ddl.create_index(
                stand_in[p.schema_ or t.schema_], p.name, as_written(ix, names)))
                for p in t.partitions for ix in p.indexes]
            # to PUBLIC: the roles may be created by this very plan; they are compared as written
            units += [_Unit(f"policy {p.name} on {t.schema_}.{t.name}",
                            ddl.create_policy(stand_in[t.schema_], t.name, _written_policy(p), roles=("PUBLIC",)))
                      for p in t.policies]
            # measured: a partitioned table takes 1 lock, a plain one 4 (its TOAST table and index), an
            # index 2; each partition is a plain table that gets every index of its parent
            partitioned = key is not None or t.partition_by is not None
            indexes = 2 * len(built_indexes)
            indexes += 2 * sum(len(p.indexes) for p in t.partitions)
            builds.append(_Build(units, (1 if partitioned else 4) + indexes + len(t.partitions) * (4 + indexes)))
            built.append(t)
    return built, needs_build, builds


def _build_in_batches(conn: psycopg.Connection, builds: list[_Build], budget: int, prelude: list[_Unit],
                      schemas: list[str], *, name_culprit: bool = True) -> TablesState:
    """Run ``builds`` after ``prelude`` and read back the tables of ``schemas``, each batch in a
    transaction of its own that is rolled back. A failure is replayed to name its culprit, or with
    ``name_culprit=False`` raised as it is. Every lock a transaction takes is held to its end,
    and thousands of scratch tables in one would overflow a default server's lock table ("out of
    shared memory"): a batch stays within the server's ``budget`` (LOCK_BUDGET). Builds are independent of each
    other (no foreign keys), so which batch a table lands in changes nothing it reads back."""
    if not builds:
        return TablesState({})
    tables: dict[tuple[str, str], TableState] = {}
    for batch in batched(builds, lambda b: b.locks, max(1, budget - len(prelude))):
        pending = prelude + [u for b in batch for u in b.units]
        try:
            with conn.transaction(force_rollback=True):
                _execute(conn, (u.statement for u in pending))
                tables.update(read_tables(conn, scratch_filter(schemas)).tables)
        except psycopg.Error as exc:
            if not name_culprit:
                raise
            raise _culprit(conn, pending, exc) from None
    return TablesState(tables)


def _written_policy(p: model.Policy) -> PolicyState:
    return PolicyState(name=p.name, command=p.for_, roles=tuple(p.to), permissive=p.as_ == "permissive",
                       using=p.using, with_check=p.with_check, comment=p.comment, using_source=p.using,
                       with_check_source=p.with_check)


def _policies(t: model.Table, scratch: TableState | None) -> tuple[PolicyState, ...]:
    """The declared policies with their expressions as the server printed them on the scratch table."""
    if not t.policies:
        return ()
    built = {p.name: p for p in scratch.policies} if scratch else {}
    return tuple(sorted((replace(_written_policy(p), using=built[p.name].using, with_check=built[p.name].with_check)
                         for p in t.policies), key=lambda p: p.name))


def _partitions(t: model.Table, scratch: TableState | None) -> tuple[PartitionState, ...]:
    """The declared partitions with their bounds as the server printed them in the scratch build."""
    if not t.partitions:
        return ()
    built = {p.name: p for p in scratch.partitions} if scratch else {}
    names = {c.name for c in t.columns}
    return tuple(sorted((PartitionState(schema=p.schema_ or t.schema_, name=p.name, bound=built[p.name].bound,
                                        parameters=_parameters(p.with_), comment=p.comment,
                                        source=partition_bound_source(p),
                                        indexes=_partition_indexes(p, built[p.name], names))
                         for p in t.partitions), key=lambda p: (p.schema, p.name)))


def _partition_indexes(p: model.Partition, built: PartitionState, names: set[str]) -> tuple[IndexState, ...]:
    """A partition's own indexes as the scratch build printed them, spelled as written."""
    read = {i.name: i for i in built.indexes}
    return tuple(sorted((replace(read[ix.name or ""], comment=ix.comment,
                                 source=ddl.index_tail(as_written(ix, names)).as_string(None))
                         for ix in p.indexes), key=lambda i: i.name))


def _built_map(scratch: TablesState, stand_in: dict[str, str],
               built: list[model.Table]) -> dict[tuple[str, str], TableState]:
    return {(t.schema_, t.name): scratch.tables[(stand_in[t.schema_], t.name)] for t in built}


def _needs_live(tables: list[model.Table]) -> bool:
    declared = {(t.schema_, t.name) for t in tables}
    return any(not fk.references.columns and ((fk.references.schema_ or t.schema_), fk.references.table) not in declared
               for t in tables for fk in t.foreign_keys)


def _primary_keys(tables: list[model.Table], live: TablesState) -> dict[tuple[str, str], tuple[str, ...]]:
    keys = {key: next((c.columns for c in table.constraints if c.kind == PRIMARY_KEY), ())
            for key, table in live.tables.items()}
    keys.update({(t.schema_, t.name): _primary_key_columns(t) for t in tables})
    return keys


def _primary_key_columns(t: model.Table) -> tuple[str, ...]:
    if t.primary_key is not None:
        return tuple(t.primary_key.columns)
    return tuple(c.name for c in t.columns if c.primary_key)



def _assemble(tables: list[model.Table], typed: dict[int, ColumnState], needs_build: set[int],
              built: dict[tuple[str, str], TableState], live: TablesState) -> TablesState:
    """`typed`: id(model column) -> its column read back from the types table."""
    primary_keys = _primary_keys(tables, live)
    # Names PostgreSQL would weigh against when choosing: everything declared or built by name.
    taken: dict[str, set[str]] = {}
    for t in tables:
        used = taken.setdefault(t.schema_, set())
        used.add(t.name)
        named: list[model.PrimaryKey | model.ForeignKey | model.Unique | model.Check | model.Exclude | model.Index] = [
            *([t.primary_key] if t.primary_key else []), *t.foreign_keys, *t.unique, *t.checks, *t.exclude,
            *t.indexes]
        used.update(x.name for x in named if x.name)
        scratch = built.get((t.schema_, t.name))
        if scratch:
            used.update(c.name for c in scratch.constraints)
            used.update(i.name for i in scratch.indexes)

    result: dict[tuple[str, str], TableState] = {}
    for t in tables:
        used = taken[t.schema_]
        scratch = built.get((t.schema_, t.name))
        pk = primary_keys[(t.schema_, t.name)]
        columns = tuple(_column(t, c, typed[id(c)], scratch, used, c.name in pk) for c in t.columns)
        constraints: list[ConstraintState] = []
        if pk:
            explicit = t.primary_key or model.PrimaryKey(columns=list(pk))
            constraints.append(ConstraintState(
                name=explicit.name or choose_name(t.name, None, "pkey", used), kind=PRIMARY_KEY, columns=pk,
                include=tuple(explicit.include), parameters=_parameters(explicit.with_),
                comment=explicit.comment, declared_name=explicit.name is not None,
                deferrable=explicit.deferrable is not False,
                initially_deferred=explicit.deferrable == "initially deferred"))
        uniques = [model.Unique(columns=[c.name]) for c in t.columns if c.unique] + list(t.unique)
        for u in uniques:
            constraints.append(ConstraintState(
                name=u.name or choose_name(t.name, u.columns, "key", used), kind=UNIQUE, columns=tuple(u.columns),
                nulls_not_distinct=u.nulls_not_distinct, include=tuple(u.include), parameters=_parameters(u.with_),
                comment=u.comment, declared_name=u.name is not None,
                deferrable=u.deferrable is not False,
                initially_deferred=u.deferrable == "initially deferred"))
        names = {c.name for c in t.columns}
        if scratch:  # checks and exclusions, in declaration order (read back in creation order)
            checks = [c for c in scratch.constraints if c.kind == CHECK]
            for declared, check in zip(t.checks, checks, strict=True):
                constraints.append(ConstraintState(
                    name=check.name, kind=CHECK, columns=check.columns, definition=check.definition,
                    validated=not declared.not_valid, comment=declared.comment,
                    declared_name=declared.name is not None,
                    source=f"CHECK ({declared.expression}){' NO INHERIT' if declared.no_inherit else ''}"))
            exclusions = [c for c in scratch.constraints if c.kind == EXCLUSION]
            for ex, read in zip(t.exclude, exclusions, strict=True):
                constraints.append(ConstraintState(
                    name=read.name, kind=EXCLUSION, columns=read.columns, definition=read.definition,
                    deferrable=read.deferrable, initially_deferred=read.initially_deferred, comment=ex.comment,
                    declared_name=ex.name is not None, source=exclusion_source(ex, names)))
        for fk in t.foreign_keys:
            constraints.append(_foreign_key(t, fk, primary_keys, used))
        indexes: list[IndexState] = []
        scratch_indexes = iter(scratch.indexes if scratch else ())
        for ix in t.indexes:
            if id(ix) in needs_build:
                got = next(scratch_indexes)
                indexes.append(IndexState(name=got.name, unique=got.unique, method=got.method, keys=got.keys,
                                          include=got.include, predicate=got.predicate,
                                          nulls_not_distinct=got.nulls_not_distinct, parameters=got.parameters,
                                          comment=ix.comment, declared_name=ix.name is not None,
                                          source=ddl.index_tail(as_written(ix, names)).as_string(None)))
            else:
                keys = _written_keys(ix, names)  # plain columns only (else it is built)
                name = ix.name or choose_name(t.name, [k.column for k in keys if k.column] + list(ix.include),
                                                "idx", used)
                indexes.append(IndexState(name=name, unique=ix.unique, method=ix.method, keys=keys,
                                          include=tuple(ix.include), nulls_not_distinct=ix.nulls_not_distinct,
                                          parameters=_parameters(ix.with_), comment=ix.comment,
                                          declared_name=ix.name is not None))
        result[(t.schema_, t.name)] = TableState(
            schema=t.schema_, name=t.name, columns=columns,
            constraints=tuple(sorted(constraints, key=lambda c: c.name)),
            indexes=tuple(sorted(indexes, key=lambda i: i.name)),
            comment=t.comment or None, owner=t.owner, unlogged=t.unlogged, parameters=_parameters(t.with_),
            row_security=(t.row_level_security.enabled, t.row_level_security.forced), policies=_policies(t, scratch),
            partition_by=scratch.partition_by if scratch and t.partition_by else None,
            partitions=_partitions(t, scratch),
            partition_by_source=partition_key_source(t.partition_by, names) if t.partition_by else None,
            renamed_from=t.renamed_from)
    return TablesState(result)


def _column(t: model.Table, c: model.Column, typed: ColumnState, scratch: TableState | None,
            used: set[str], in_primary_key: bool) -> ColumnState:
    generated = None
    if c.generated is not None:
        assert scratch is not None
        generated = scratch.column(c.name).generated  # type: ignore[union-attr]
    sequence = None
    if typed.serial or typed.identity:  # the sequence PostgreSQL will create; keeps later names off it
        sequence = (t.schema_, choose_name(t.name, [c.name], "seq", used))
    return ColumnState(
        name=c.name, type=typed.type,
        # primary keys, serial and identity columns are NOT NULL whatever the file says
        not_null=not c.nullable or in_primary_key or typed.not_null,
        default=typed.default, identity=typed.identity, identity_options=typed.identity_options,
        generated=generated, collation=typed.collation, storage=typed.storage, type_storage=typed.type_storage,
        compression=typed.compression,
        statistics=c.statistics,
        comment=c.comment or None, serial=typed.serial, spelling=c.type, sequence=sequence,
        default_source=c.default, generated_source=c.generated,
        rewrites_on_add=typed.rewrites_on_add or generated is not None, renamed_from=c.renamed_from)


def _foreign_key(t: model.Table, fk: model.ForeignKey, primary_keys: dict[tuple[str, str], tuple[str, ...]],
                 used: set[str]) -> ConstraintState:
    ref_schema = fk.references.schema_ or t.schema_
    ref_columns = tuple(fk.references.columns) or primary_keys.get((ref_schema, fk.references.table), ())
    if not ref_columns:
        raise ErpprovError(
            f"table {t.schema_}.{t.name}: the foreign key on ({', '.join(fk.columns)}) references "
            f"{ref_schema}.{fk.references.table}, which has no primary key here or in the database",
            hint="name the referenced columns: references: {table: ..., columns: [...]}")
    return ConstraintState(
        name=fk.name or choose_name(t.name, fk.columns, "fkey", used), kind=FOREIGN_KEY,
        columns=tuple(fk.columns), ref_schema=ref_schema, ref_table=fk.references.table, ref_columns=ref_columns,
        on_update=fk.on_update, on_delete=fk.on_delete, delete_columns=tuple(fk.on_delete_columns or ()),
        match=fk.match, validated=not fk.not_valid,
        comment=fk.comment, declared_name=fk.name is not None, deferrable=fk.deferrable is not False,
        initially_deferred=fk.deferrable == "initially deferred")
