"""Read tables from the catalog: six bulk queries, whatever the number of tables.

The same queries read the live database (`inspect_tables`) and the rolled-back scratch build of the
desired state (`erpprov.state.canon`), so both sides are printed by the same catalog functions
(format_type, pg_get_expr, pg_get_constraintdef, pg_get_indexdef) and compare like with like.
The six queries go out in one pipeline: one network round trip.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import replace

import psycopg
from psycopg import sql

from erpprov.core.tables import (
    FOREIGN_KEY,
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
from erpprov.postgres.locks import exclusive_lockers
from erpprov.postgres.script_ddl import NOT_JOURNAL

# Which relations count as user tables of the database. A partition is read as a part of its
# parent (`PARTITIONS`), not as a table of its own: its columns, keys and indexes are the parent's.
LIVE_FILTER = sql.SQL(
    r"""c.relkind IN ('r', 'p') AND NOT c.relispartition
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND """ + NOT_JOURNAL.format(n="n", c="c") + r"""
    AND n.nspname !~ '^pg_(toast|temp_)'
    AND c.oid NOT IN (SELECT e.objid FROM pg_depend e  -- found through the extensions: an index range
                      WHERE e.refclassid = 'pg_extension'::regclass AND e.classid = 'pg_class'::regclass
                        AND e.deptype = 'e')"""
)


def scratch_filter(schemas: list[str]) -> sql.Composable:
    """The relations of the scratch schemas (names are ours, passed as literals: no parameters, so
    the queries can keep PostgreSQL's own % and :: syntax untouched)."""
    return sql.SQL("c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname IN ({})").format(
        sql.SQL(", ").join(sql.Literal(s) for s in schemas))

_REL = """WITH rel AS (SELECT c.oid, n.nspname, c.relname, c.relowner, c.relkind, c.relpersistence, c.reloptions,
                       c.reltoastrelid, c.relrowsecurity, c.relforcerowsecurity, c.reltablespace, c.relreplident,
                       c.reloftype, c.relam, c.relhasrules
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {filter}) """

# Properties erpprov does not manage (core.tables.UNMANAGED_PROPERTIES), each found by one
# set-wide lookup (a hashed subplan), not one per table; those of columns come with the columns.
TABLES = _REL + """
SELECT r.oid, r.nspname, r.relname, pg_get_userbyid(r.relowner), ds.description, r.relpersistence = 'u',
       r.reloptions || CASE WHEN tc.reloptions IS NOT NULL THEN
                            ARRAY(SELECT 'toast.' || o FROM unnest(tc.reloptions) o) END,
       r.relrowsecurity, r.relforcerowsecurity, CASE WHEN r.relkind = 'p' THEN pg_get_partkeydef(r.oid) END,
       array_remove(ARRAY[
         CASE WHEN r.reltablespace <> 0 THEN 'tablespace' END,
         CASE WHEN r.relreplident NOT IN ('d', 'p') THEN 'replica_identity' END,
         CASE WHEN r.reloftype <> 0 THEN 'of_type' END,
         CASE WHEN r.relam <> 0 AND r.relam <> (SELECT oid FROM pg_am WHERE amname = 'heap') THEN 'access_method' END,
         CASE WHEN r.oid IN (SELECT inhrelid FROM pg_inherits) THEN 'inherits' END,
         CASE WHEN r.relhasrules THEN 'rules' END,
         CASE WHEN r.oid IN (SELECT indrelid FROM pg_index WHERE indisclustered) THEN 'cluster_on' END,
         CASE WHEN r.oid IN (SELECT indrelid FROM pg_index WHERE NOT indisvalid) THEN 'invalid_index' END,
         CASE WHEN r.oid IN (SELECT i.indrelid FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                             WHERE ic.reltablespace <> 0) THEN 'index_tablespace' END
       ], NULL)
FROM rel r
LEFT JOIN pg_class tc ON tc.oid = r.reltoastrelid
LEFT JOIN pg_description ds ON ds.objoid = r.oid AND ds.classoid = 'pg_class'::regclass AND ds.objsubid = 0"""

# Column numbers (conkey, indkey, ...) come back as numbers and are turned into names in Python
# from the columns query: per-row lookups in pg_attribute cost more than the rest of the query.
# int2vector/oidvector columns are read through their text form (space separated) to get plain
# 1-based arrays.

# serial: the default is nextval() of a sequence that this very column owns (auto dependency);
# identity columns own theirs through an internal dependency and have no default.
COLUMNS = _REL + """
SELECT a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated,
       pg_get_expr(d.adbin, CASE WHEN a.attgenerated = '' THEN 0 ELSE d.adrelid END),  -- defaults read no column
       CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
       CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text END,
       ds.description, s.nspname, s.relname, s.deptype,
       CASE WHEN s.oid IS NOT NULL THEN 'nextval(' || quote_literal(s.oid::regclass::text) || '::regclass)' END,
       a.attstorage, t.typstorage, NULLIF(a.attcompression, ''), NULLIF(COALESCE(a.attstattarget, -1), -1),
       a.attoptions IS NOT NULL, a.attacl IS NOT NULL, a.atthasmissing,
       ps.seqstart, ps.seqincrement, ps.seqmin, ps.seqmax, ps.seqcache, ps.seqcycle
FROM rel r
JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_description ds ON ds.objoid = a.attrelid AND ds.classoid = 'pg_class'::regclass
                           AND ds.objsubid = a.attnum
LEFT JOIN (SELECT DISTINCT ON (dep.refobjid, dep.refobjsubid) dep.refobjid, dep.refobjsubid, dep.deptype,
                  sc.oid, sn.nspname, sc.relname
           FROM pg_depend dep JOIN pg_class sc ON sc.oid = dep.objid AND sc.relkind = 'S'
           JOIN pg_namespace sn ON sn.oid = sc.relnamespace
           WHERE dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass
             AND dep.deptype IN ('a', 'i') AND dep.refobjsubid > 0
           ORDER BY dep.refobjid, dep.refobjsubid, sc.oid) s
       ON s.refobjid = a.attrelid AND s.refobjsubid = a.attnum
LEFT JOIN pg_sequence ps ON ps.seqrelid = s.oid AND a.attidentity <> ''"""  # sorted by attnum in Python

# Foreign keys to tables outside the inspected set (another schema we skip) get their referenced
# column names here; for the others Python maps the numbers.
CONSTRAINTS = _REL + """
SELECT con.conrelid, con.conname, con.contype,
       CASE WHEN con.contype IN ('c', 'x') THEN pg_get_constraintdef(con.oid) END,
       con.conkey, rn.nspname, rc.relname, con.confrelid, con.confkey,
       CASE WHEN con.contype = 'f' AND con.confrelid NOT IN (SELECT oid FROM rel) THEN
            ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
                  JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord) END,
       con.confupdtype, con.confdeltype, con.condeferrable, con.condeferred, con.convalidated,
       con.confmatchtype, {nulls_not_distinct}, ds.description,
       CASE WHEN ci.indnatts > ci.indnkeyatts THEN
            (string_to_array(ci.indkey::text, ' ')::int2[])[ci.indnkeyatts + 1:] END,
       cic.reloptions, {delete_set_columns}
FROM rel r
JOIN pg_constraint con ON con.conrelid = r.oid AND con.contype IN ('p', 'u', 'c', 'f', 'x')
                       AND con.conparentid = 0  -- not a clone PostgreSQL keeps for a partitioned table
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
LEFT JOIN pg_index ci ON ci.indexrelid = con.conindid AND con.contype IN ('p', 'u')
LEFT JOIN pg_class cic ON cic.oid = ci.indexrelid
LEFT JOIN (SELECT objoid, description FROM pg_description WHERE classoid = 'pg_constraint'::regclass) ds
       ON ds.objoid = con.oid
ORDER BY con.conrelid, con.oid"""

# Indexes that back a primary key, unique or exclusion constraint belong to the constraint.
# Expression texts, operator classes and the columns an expression or predicate reads are only
# looked up for the indexes that have them. An operator class and a collation come as the SQL that
# names them; a key's collation only where it is not the one the key would have anyway (its
# column's, or its expression type's).
INDEXES = _REL + """
SELECT i.indrelid, ic.relname, i.indisunique, am.amname, i.indnkeyatts,
       string_to_array(i.indkey::text, ' ')::int2[], string_to_array(i.indoption::text, ' ')::int2[],
       CASE WHEN i.indexprs IS NOT NULL THEN
            ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) k) END,
       CASE WHEN string_to_array(i.indclass::text, ' ')::oid[]
                 && (SELECT array_agg(oid) FROM pg_opclass WHERE NOT opcdefault) THEN
            ARRAY(SELECT CASE WHEN o.opcdefault THEN NULL
                              WHEN o.opcnamespace = 'pg_catalog'::regnamespace THEN quote_ident(o.opcname)
                              ELSE quote_ident(o.opcnamespace::regnamespace::text) || '.' || quote_ident(o.opcname) END
                  FROM unnest(string_to_array(i.indclass::text, ' ')::oid[]) WITH ORDINALITY k(opc, ord)
                  JOIN pg_opclass o ON o.oid = k.opc ORDER BY k.ord) END,
       CASE WHEN i.indcollation::text ~ '[1-9]' THEN
            ARRAY(SELECT CASE WHEN k.coll <> 0 AND k.coll <> COALESCE(ta.attcollation, ty.typcollation)
                              THEN k.coll::regcollation::text END
                  FROM unnest(string_to_array(i.indcollation::text, ' ')::oid[]) WITH ORDINALITY k(coll, ord)
                  LEFT JOIN pg_attribute ta ON ta.attrelid = i.indrelid AND ta.attnum = i.indkey[k.ord - 1]
                  -- an expression's collation is compared with its type's
                  LEFT JOIN pg_attribute ia ON ta.attrelid IS NULL AND ia.attrelid = i.indexrelid AND ia.attnum = k.ord
                  LEFT JOIN pg_type ty ON ty.oid = ia.atttypid
                  ORDER BY k.ord) END,
       pg_get_expr(i.indpred, i.indrelid),
       CASE WHEN i.indexprs IS NOT NULL OR i.indpred IS NOT NULL THEN
            ARRAY(SELECT DISTINCT dep.refobjsubid FROM pg_depend dep
                  WHERE dep.classid = 'pg_class'::regclass AND dep.objid = i.indexrelid
                    AND dep.refclassid = 'pg_class'::regclass AND dep.refobjid = i.indrelid
                    AND dep.refobjsubid > 0) END,
       {nulls_not_distinct}, ic.reloptions, ds.description
FROM rel r0  -- and its partitions' own indexes: those not a part of (relispartition) the parent's
JOIN LATERAL (SELECT r0.oid UNION ALL SELECT pi.inhrelid FROM pg_inherits pi WHERE pi.inhparent = r0.oid
                                                                                AND r0.relkind = 'p') r ON true
JOIN pg_index i ON i.indrelid = r.oid
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
LEFT JOIN pg_description ds ON ds.objoid = ic.oid AND ds.classoid = 'pg_class'::regclass AND ds.objsubid = 0
WHERE NOT EXISTS (SELECT FROM pg_constraint pc WHERE pc.conindid = i.indexrelid AND pc.conrelid = i.indrelid
                                                 AND pc.contype IN ('p', 'u', 'x'))
  AND NOT ic.relispartition
ORDER BY i.indrelid, i.indexrelid"""

# ON DELETE SET NULL (columns), PostgreSQL 15's
_DELETE_SET_COLUMNS = "con.confdelsetcols"

POLICIES = _REL + """
SELECT p.polrelid, p.polname, p.polcmd, p.polpermissive,
       ARRAY(SELECT CASE WHEN u.role = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(u.role) END
             FROM unnest(p.polroles) u(role)),
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid), ds.description
FROM rel r JOIN pg_policy p ON p.polrelid = r.oid
LEFT JOIN pg_description ds ON ds.objoid = p.oid AND ds.classoid = 'pg_policy'::regclass"""

# What a partition holds of its own beyond its bound, storage parameters and indexes (a constraint
# not cascaded from the parent, another owner, a partition partitioned again) is not managed: listed.
# Its column names by number (dropped ones NULL), for its own indexes.
PARTITIONS = _REL + """
SELECT i.inhparent, n.nspname, c.relname, pg_get_expr(c.relpartbound, c.oid), c.reloptions, ds.description,
       c.relkind = 'p' OR c.relowner <> r.relowner
       OR EXISTS (SELECT FROM pg_constraint pc WHERE pc.conrelid = c.oid AND pc.conislocal),
       c.oid, ARRAY(SELECT CASE WHEN NOT a.attisdropped THEN a.attname END FROM pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attnum > 0 ORDER BY a.attnum),
       ARRAY(SELECT pc.relname FROM pg_index px JOIN pg_class pc ON pc.oid = px.indexrelid AND pc.relispartition
             WHERE px.indrelid = c.oid ORDER BY 1)
FROM rel r
JOIN pg_inherits i ON i.inhparent = r.oid
JOIN pg_class c ON c.oid = i.inhrelid AND c.relispartition
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description ds ON ds.objoid = c.oid AND ds.classoid = 'pg_class'::regclass AND ds.objsubid = 0"""

_COMMANDS = {"*": "all", "r": "select", "a": "insert", "w": "update", "d": "delete"}
_STORAGE = {"p": "plain", "e": "external", "x": "extended", "m": "main"}
_COMPRESSION = {"p": "pglz", "l": "lz4"}
_FK_ACTIONS = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}
_INDOPTION_DESC, _INDOPTION_NULLS_FIRST = 1, 2  # bits of pg_index.indoption


def read_tables(conn: psycopg.Connection, where: sql.Composable) -> TablesState:
    """Run the six queries for the relations `where` selects and assemble the states."""
    # NULLS NOT DISTINCT is PostgreSQL 15's; before, every unique index treats NULLs as distinct
    modern = conn.info.server_version >= 150000
    queries = [sql.SQL(q).format(filter=where, nulls_not_distinct=sql.SQL(
        f"COALESCE({alias}.indnullsnotdistinct, false)" if modern else "false"),
        delete_set_columns=sql.SQL(_DELETE_SET_COLUMNS if modern else "NULL"))
        for q, alias in ((TABLES, ""), (COLUMNS, ""), (CONSTRAINTS, "ci"), (INDEXES, "i"), (POLICIES, ""),
                         (PARTITIONS, ""))]
    cursors = [conn.cursor() for _ in queries]
    with conn.pipeline():
        for cursor, query in zip(cursors, queries, strict=True):
            cursor.execute(query)
    tables, columns, constraints, indexes, policies, partitions = (cursor.fetchall() for cursor in cursors)
    return _assemble(tables, columns, constraints, indexes, policies, partitions)


def read_columns(conn: psycopg.Connection, where: sql.Composable) -> list[ColumnState]:
    """The columns of the relations ``where`` selects, and nothing else about them: one query where
    read_tables runs six (the scratch build's tables of column types hold only columns)."""
    cols, _, _ = _columns(conn.execute(sql.SQL(COLUMNS).format(filter=where)).fetchall())
    return [column for table in cols.values() for column in table]


def _columns(columns: list[tuple]) -> tuple[dict[int, list[ColumnState]], dict[int, dict[int, str]],
                                             dict[int, set[str]]]:
    """The COLUMNS query's rows as each table's columns, each table's column names by number, and
    the unmanaged properties its columns have."""
    cols: dict[int, list[ColumnState]] = defaultdict(list)
    names: dict[int, dict[int, str]] = defaultdict(dict)  # table oid -> attnum -> column name
    found_properties: dict[int, set[str]] = defaultdict(set)  # unmanaged, found with columns and partitions
    for (oid, num, name, type_, not_null, generated, expr, identity, collation, comment,
         seq_schema, seq_name, deptype, nextval, storage, type_storage, compression, statistics, options, acl,
         hasmissing,
         *sequence) in sorted(columns,
                                                                                 key=lambda row: (row[0], row[1])):
        names[oid][num] = name
        if options:
            found_properties[oid].add("column_options")
        if acl:
            found_properties[oid].add("column_privileges")
        # NOT NULL too: `serial` means it, and a nullable one is written as its nextval() default
        serial = deptype == "a" and expr is not None and expr == nextval and not_null
        default = None if generated or serial else expr
        cols[oid].append(ColumnState(
            name=name, type=type_, not_null=not_null, default=default, identity=identity,
            identity_options=tuple(sequence) if identity and sequence[0] is not None else None,
            generated=expr if generated == "s" else None, collation=collation, comment=comment, serial=serial,
            storage=_STORAGE.get(storage), type_storage=_STORAGE.get(type_storage),
            compression=_COMPRESSION.get(compression or ""), statistics=statistics,
            sequence=(seq_schema, seq_name) if seq_name else None,
            # read back from the scratch build: a default that is evaluated once per ADD COLUMN
            # (not volatile) is stored as the "missing value"; anything else rewrites the table
            rewrites_on_add=bool(expr or identity) and not hasmissing,
        ))
    return cols, names, found_properties


def _assemble(tables: list[tuple], columns: list[tuple], constraints: list[tuple],
              indexes: list[tuple], policies: list[tuple], partitions: list[tuple]) -> TablesState:
    cols, names, found_properties = _columns(columns)
    cons: dict[int, list[ConstraintState]] = defaultdict(list)
    for (oid, name, kind, definition, keys, ref_schema, ref_table, ref_oid, ref_keys, ref_names, upd, dele,
         deferrable, deferred, validated, match, nulls_not_distinct, comment, include, parameters,
         delete_columns) in constraints:
        own = names[oid]
        if ref_names is None and ref_keys:
            ref_names = [names[ref_oid][k] for k in ref_keys]
        if definition is not None:  # `validated` says it; the desired side is built valid
            definition = definition.removesuffix(" NOT VALID")
        # conkey 0: an exclusion element that is an expression
        cons[oid].append(ConstraintState(
            name=name, kind=kind, columns=tuple(own[k] for k in keys or () if k), definition=definition,
            ref_schema=ref_schema, ref_table=ref_table, ref_columns=tuple(ref_names or ()),
            on_update=_FK_ACTIONS.get(upd, "no action") if kind == FOREIGN_KEY else "no action",
            on_delete=_FK_ACTIONS.get(dele, "no action") if kind == FOREIGN_KEY else "no action",
            deferrable=deferrable, initially_deferred=deferred, validated=validated,
            match="full" if match == "f" else "simple", nulls_not_distinct=nulls_not_distinct, comment=comment,
            include=tuple(own[k] for k in include or ()), parameters=tuple(sorted(parameters or ())),
            delete_columns=tuple(own[k] for k in delete_columns or ()),
        ))
    for *_, part_oid, part_columns, _ in partitions:
        names[part_oid] = {num: name for num, name in enumerate(part_columns, 1) if name is not None}
    idx: dict[int, list[IndexState]] = defaultdict(list)
    for (oid, name, unique, method, nkey, attnums, options, exprs, opclasses, collations, predicate, depends,
         nulls_not_distinct, parameters, comment) in indexes:
        own = names[oid]
        keys = tuple(
            IndexKey(column=own[attnums[k]] if attnums[k] else None,
                     expression=exprs[k] if not attnums[k] else None,
                     descending=bool(options[k] & _INDOPTION_DESC),
                     nulls_first=bool(options[k] & _INDOPTION_NULLS_FIRST),
                     opclass=opclasses[k] if opclasses else None,
                     collation=collations[k] if collations else None)
            for k in range(nkey)
        )
        include = tuple(own[a] for a in attnums[nkey:])
        used = depends if depends is not None else [a for a in attnums if a]
        idx[oid].append(IndexState(name=name, unique=unique, method=method, keys=keys, include=include,
                                   predicate=predicate, nulls_not_distinct=nulls_not_distinct,
                                   parameters=tuple(sorted(parameters or ())), comment=comment,
                                   columns=frozenset(own[a] for a in used if a in own)))
    pols: dict[int, list[PolicyState]] = defaultdict(list)
    for oid, name, command, permissive, roles, using, with_check, comment in policies:
        pols[oid].append(PolicyState(name=name, command=_COMMANDS[command], roles=tuple(sorted(roles)), using=using,
                                     with_check=with_check, permissive=permissive, comment=comment))
    parts: dict[int, list[PartitionState]] = defaultdict(list)
    for oid, schema, name, bound, parameters, comment, own, part_oid, _, cascaded in partitions:
        parts[oid].append(PartitionState(schema=schema, name=name, bound=bound, parts=tuple(cascaded),
                                         parameters=tuple(sorted(parameters or ())), comment=comment,
                                         indexes=tuple(sorted(idx.get(part_oid, ()), key=lambda i: i.name))))
        if own:
            found_properties[oid].add("partition_objects")
    result: dict[tuple[str, str], TableState] = {}
    for oid, schema, name, owner, comment, unlogged, parameters, rls, forced, partition_by, unmanaged in tables:
        result[(schema, name)] = TableState(
            schema=schema, name=name, columns=tuple(cols.get(oid, ())),
            constraints=tuple(cons.get(oid, ())), indexes=tuple(idx.get(oid, ())),
            comment=comment, owner=owner, unlogged=unlogged, parameters=tuple(sorted(parameters or ())),
            row_security=(rls, forced), policies=tuple(sorted(pols.get(oid, ()), key=lambda p: p.name)),
            partition_by=partition_by, unmanaged=tuple(unmanaged) + tuple(sorted(found_properties.get(oid, ()))),
            partitions=tuple(sorted(parts.get(oid, ()), key=lambda p: (p.schema, p.name))),
        )
    return TablesState(result)


def inspect_tables(conn: psycopg.Connection) -> TablesState:
    """Every user table of the connected database: all schemas but the system ones, without
    tables that belong to extensions."""
    return read_tables(conn, LIVE_FILTER)



# Only the tables asked about: pg_relation_size opens each one, and so waits on any session that
# holds it in ACCESS EXCLUSIVE mode.
ROWS = _REL + """SELECT r.nspname, r.relname,
       CASE WHEN r.relkind = 'p' THEN EXISTS (SELECT FROM pg_partition_tree(r.oid) pt
                                              WHERE pt.isleaf AND pg_relation_size(pt.relid) > 0)
            ELSE pg_relation_size(r.oid) > 0 END
FROM rel r JOIN unnest(%s::text[], %s::text[]) AS asked(schema, name)
  ON asked.schema = r.nspname AND asked.name = r.relname"""


def with_row_signal(conn: psycopg.Connection, live: TablesState, asked: Collection[tuple[str, str]]) -> TablesState:
    """``live`` with `has_rows` read for the ``asked`` tables: whether each has data pages. Only the
    hazards and notes of table actions use it, and asking costs a relation open per table (at a
    thousand tables, a sixth of the reading), so it is read once a diff has actions, and only for
    the tables actions can touch. Until then, every table counts as one that may hold rows."""
    tables = dict(live.tables)
    wanted = sorted(key for key in asked if key in tables)
    try:
        rows = conn.execute(sql.SQL(ROWS).format(filter=LIVE_FILTER),
                            ([s for s, _ in wanted], [n for _, n in wanted])).fetchall()
    except psycopg.errors.LockNotAvailable:
        lockers = exclusive_lockers(conn, wanted)
        raise ErpprovError(
            "a table the plan changes is locked by another session: "
            + ("; ".join(lockers) if lockers else "(the lock has just been released)"),
            hint="erpprov gave up after pg_lock_timeout; wait for that session's transaction to end and run it "
                 "again, or raise pg_lock_timeout for this host") from None
    for schema, name, has_rows in rows:
        tables[(schema, name)] = replace(tables[(schema, name)], has_rows=has_rows)
    return TablesState(tables)
