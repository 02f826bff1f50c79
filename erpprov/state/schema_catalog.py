"""Read every schema object beside tables in two round trips, whatever their number (decision 2):
one query for what exists, then one pipeline for the details of the kinds found.

Objects an extension created (pg_depend deptype 'e') are the extension's, not the user's, and
objects made as part of another (deptype 'i': a range type's constructors and casts) are that
one's: they are skipped, as are the sequences the table code owns (serial and identity columns) and the row
types of tables. Objects in pg_catalog, information_schema and the temporary/toast schemas are
the server's.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg import sql

from erpprov.core import model
from erpprov.core.schema_objects import (
    CompositeState,
    DomainState,
    EnumState,
    FunctionState,
    LiveObject,
    SchemaObjects,
    SequenceState,
    TriggerState,
    ViewState,
)
from erpprov.postgres.schema_ddl import create_composite, create_domain, create_enum, domain_calls

# Catalogs whose objects read as (kind, schema, name) from two columns: kind, catalog, name column,
# namespace column (None: the kind has no schema).
_NAMED = (
    ("collation", "pg_collation", "collname", "collnamespace"),
    ("conversion", "pg_conversion", "conname", "connamespace"),
    ("text_search_configuration", "pg_ts_config", "cfgname", "cfgnamespace"),
    ("text_search_dictionary", "pg_ts_dict", "dictname", "dictnamespace"),
    ("statistics_object", "pg_statistic_ext", "stxname", "stxnamespace"),
    ("event_trigger", "pg_event_trigger", "evtname", None),
    ("publication", "pg_publication", "pubname", None),
    ("foreign_data_wrapper", "pg_foreign_data_wrapper", "fdwname", None),
    ("foreign_server", "pg_foreign_server", "srvname", None),
)


def _named(kind: str, catalog: str, name: str, namespace: str | None) -> str:
    schema, join = ("n.nspname", f"JOIN user_ns n ON n.oid = o.{namespace}") if namespace else ("NULL", "")
    return (f"UNION ALL SELECT '{kind}', {schema}, o.{name}, NULL, NULL FROM {catalog} o {join} "
            f"WHERE o.oid NOT IN (SELECT objid FROM part WHERE classid = '{catalog}'::regclass)")


# (kind, schema, name, table, variety). Each branch reads one catalog and drops the rows `part`
# names (members of an extension or of another object) and those of the server's own schemas.
OBJECTS = r"""
-- a partitioned table depends internally on itself (its partition key): that makes it no part of another
WITH part AS (SELECT classid, objid FROM pg_depend
              WHERE deptype IN ('e', 'i') AND (classid, objid) <> (refclassid, refobjid)),
user_ns AS (SELECT oid, nspname FROM pg_namespace
            WHERE nspname !~ '^pg_' AND nspname <> 'information_schema'),
serial AS (  -- sequences of serial and identity columns: the table's, not standalone
    SELECT d.objid FROM pg_depend d
    -- sequences only, before the defaults are printed: an index depends on its columns too
    JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
    LEFT JOIN pg_attrdef ad ON ad.adrelid = d.refobjid AND ad.adnum = d.refobjsubid
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0
      AND (d.deptype = 'i' OR (d.deptype = 'a' AND pg_get_expr(ad.adbin, ad.adrelid)
                               = 'nextval(' || quote_literal(d.objid::regclass::text) || '::regclass)')))
SELECT 'type', n.nspname, t.typname, NULL, CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'c' THEN 'composite'
                                                          WHEN 'd' THEN 'domain' WHEN 'r' THEN 'range'
                                                          WHEN 'b' THEN 'base' ELSE 'shell' END
FROM pg_type t JOIN user_ns n ON n.oid = t.typnamespace
LEFT JOIN pg_class c ON c.oid = t.typrelid
-- base types (made with functions in C or internal) and shell types too; an array type is part of its element's
WHERE (t.typtype IN ('e', 'd', 'r', 'b', 'p') OR (t.typtype = 'c' AND c.relkind = 'c'))
  AND t.oid NOT IN (SELECT objid FROM part WHERE classid = 'pg_type'::regclass)
UNION ALL
SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized_view'
                      ELSE 'foreign_table' END, n.nspname, c.relname, NULL, NULL
FROM pg_class c JOIN user_ns n ON n.oid = c.relnamespace
WHERE c.relkind IN ('S', 'v', 'm', 'f')
  AND c.oid NOT IN (SELECT objid FROM part WHERE classid = 'pg_class'::regclass)
  AND c.oid NOT IN (SELECT objid FROM serial)
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END, n.nspname,
       format('%s(%s)', p.proname, pg_get_function_identity_arguments(p.oid)), NULL, NULL
FROM pg_proc p JOIN user_ns n ON n.oid = p.pronamespace
WHERE p.oid NOT IN (SELECT objid FROM part WHERE classid = 'pg_proc'::regclass)
UNION ALL
SELECT 'trigger', n.nspname, tg.tgname, c.relname, NULL
FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN user_ns n ON n.oid = c.relnamespace
WHERE NOT tg.tgisinternal AND tg.tgparentid = 0  -- a partition's clone of its parent's trigger is the parent's
  AND c.oid NOT IN (SELECT objid FROM part WHERE classid = 'pg_class'::regclass)
UNION ALL  -- indexes of materialized views (a table's are the table's, read with it)
SELECT 'materialized_view_index', n.nspname, ic.relname, c.relname, NULL
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
JOIN user_ns n ON n.oid = c.relnamespace
WHERE c.relkind = 'm' AND c.oid NOT IN (SELECT objid FROM part WHERE classid = 'pg_class'::regclass)
UNION ALL
SELECT 'rule', n.nspname, r.rulename, c.relname, NULL
FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN user_ns n ON n.oid = c.relnamespace
WHERE r.rulename <> '_RETURN' AND c.oid NOT IN (SELECT objid FROM part WHERE classid = 'pg_class'::regclass)
UNION ALL
SELECT 'operator', n.nspname, format('%s(%s, %s)', o.oprname, o.oprleft::regtype, o.oprright::regtype), NULL, NULL
FROM pg_operator o JOIN user_ns n ON n.oid = o.oprnamespace
WHERE o.oid NOT IN (SELECT objid FROM part WHERE classid = 'pg_operator'::regclass)
UNION ALL
SELECT 'operator_class', n.nspname, format('%s (%s)', o.opcname, a.amname), NULL, NULL
FROM pg_opclass o JOIN user_ns n ON n.oid = o.opcnamespace JOIN pg_am a ON a.oid = o.opcmethod
WHERE o.oid NOT IN (SELECT objid FROM part WHERE classid = 'pg_opclass'::regclass)
UNION ALL
SELECT 'operator_family', n.nspname, format('%s (%s)', o.opfname, a.amname), NULL, NULL
FROM pg_opfamily o JOIN user_ns n ON n.oid = o.opfnamespace JOIN pg_am a ON a.oid = o.opfmethod
WHERE o.oid NOT IN (SELECT objid FROM part WHERE classid = 'pg_opfamily'::regclass)
{named}
UNION ALL
SELECT 'cast', NULL, format('%s AS %s', o.castsource::regtype, o.casttarget::regtype), NULL, NULL
FROM pg_cast o WHERE o.oid >= 16384  -- FirstNormalObjectId: below it, the server's own
  AND o.oid NOT IN (SELECT objid FROM part WHERE classid = 'pg_cast'::regclass)
ORDER BY 1, 2, 4, 3
""".replace("{named}", "\n".join(_named(*entry) for entry in _NAMED))


ENUMS = r"""
SELECT n.nspname, t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder), pg_get_userbyid(t.typowner),
       obj_description(t.oid, 'pg_type')
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
GROUP BY t.oid, n.nspname, t.typname
"""

# Composite types and domains of the namespaces `{filter}` keeps (n: pg_namespace).
COMPOSITES = r"""
SELECT n.nspname, t.typname,
       array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0
             AND NOT a.attisdropped ORDER BY a.attnum),
       array(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = t.typrelid
             AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
       array(SELECT CASE WHEN a.attcollation <> at.typcollation THEN a.attcollation::regcollation::text END
             FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid WHERE a.attrelid = t.typrelid
             AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
       pg_get_userbyid(t.typowner), obj_description(t.oid, 'pg_type')
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_class c ON c.oid = t.typrelid
WHERE t.typtype = 'c' AND c.relkind = 'c' AND {filter}
"""
DOMAINS = r"""
SELECT n.nspname, t.typname, format_type(t.typbasetype, t.typtypmod), pg_get_expr(t.typdefaultbin, 0),
       t.typnotnull,
       array(SELECT c.conname::text FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c'
             ORDER BY c.conname),
       array(SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c'
             ORDER BY c.conname),
       CASE WHEN t.typcollation <> b.typcollation THEN t.typcollation::regcollation::text END,
       pg_get_userbyid(t.typowner), obj_description(t.oid, 'pg_type')
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_type b ON b.oid = t.typbasetype
WHERE t.typtype = 'd' AND {filter}
"""
_USER_NAMESPACES = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"


def composite_states(rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], CompositeState]:
    return {(schema, name): CompositeState(schema, name, tuple(zip(names, types, collations, strict=True)),
                                           owner, comment)
            for schema, name, names, types, collations, owner, comment in rows}


def domain_states(rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], DomainState]:
    return {(schema, name): DomainState(schema, name, base, default, not_null,
                                        tuple(zip(names, definitions, strict=True)), collation, owner, comment)
            for schema, name, base, default, not_null, names, definitions, collation, owner, comment in rows}


SEQUENCES = r"""
SELECT n.nspname, c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
       s.seqcache, s.seqcycle, tn.nspname, tc.relname, a.attname, pg_get_userbyid(c.relowner),
       obj_description(c.oid, 'pg_class')
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a'
                     AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0
LEFT JOIN pg_class tc ON tc.oid = d.refobjid LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
"""


# Views and materialized views of the relations `{filter}` keeps (c: pg_class, n: pg_namespace):
# the live ones, or those of the scratch build (`state.view_canon`), printed alike.
VIEWS = r"""
SELECT n.nspname, c.relname, c.relkind = 'm', pg_get_viewdef(c.oid),
       array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
             AND NOT a.attisdropped ORDER BY a.attnum),
       array(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = c.oid
             AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
       coalesce(c.reloptions, '{{}}'), c.relispopulated, pg_get_userbyid(c.relowner),
       obj_description(c.oid, 'pg_class'),
       array(SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = c.oid ORDER BY i.indexrelid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND {filter}
"""
# Which relations each view's query reads (through its rewrite rule): the order in which views are
# dropped and created again, and which views a recreated one takes with it.
VIEW_USES = r"""
SELECT DISTINCT vn.nspname, v.relname, rn.nspname, r.relname
FROM pg_rewrite rw JOIN pg_class v ON v.oid = rw.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_class'::regclass
JOIN pg_class r ON r.oid = d.refobjid AND r.oid <> v.oid JOIN pg_namespace rn ON rn.oid = r.relnamespace
WHERE v.relkind IN ('v', 'm') AND {filter}
"""
# Functions and procedures of the namespaces `{filter}` keeps (p: pg_proc, n: pg_namespace).
FUNCTIONS = r"""
SELECT n.nspname, p.proname, p.prokind = 'p', pg_get_function_identity_arguments(p.oid),
       pg_get_function_arguments(p.oid), CASE WHEN p.prokind <> 'p' THEN pg_get_function_result(p.oid) END,
       l.lanname, p.prosrc, p.provolatile, p.proisstrict, p.prosecdef, p.proparallel, p.proleakproof, p.procost,
       p.prorows, coalesce(p.proconfig, '{{}}'), pg_get_userbyid(p.proowner), obj_description(p.oid, 'pg_proc'),
       oidvectortypes(p.proargtypes)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
WHERE p.prokind IN ('f', 'p', 'w') AND {filter}  -- a window function is a function (in C or internal)
"""
# Triggers on the relations `{filter}` keeps (c: pg_class, n: pg_namespace), not those PostgreSQL
# makes for foreign keys. tgtype bits: 1 row, 2 before, 4 insert, 8 delete, 16 update, 32
# truncate, 64 instead.
TRIGGERS = r"""
SELECT n.nspname, c.relname, t.tgname, t.tgtype, t.tgenabled <> 'D', fn.nspname, f.proname, t.tgargs,
       array(SELECT a.attname::text FROM unnest(t.tgattr::int2[]) WITH ORDINALITY u(num, o)
             JOIN pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = u.num ORDER BY u.o),
       pg_get_triggerdef(t.oid), t.tgconstraint <> 0, t.tgdeferrable, t.tginitdeferred,
       obj_description(t.oid, 'pg_trigger')
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc f ON f.oid = t.tgfoid JOIN pg_namespace fn ON fn.oid = f.pronamespace
WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND {filter}
"""
LIVE_TRIGGERS = TRIGGERS.format(filter="n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'")
LIVE_FUNCTIONS = FUNCTIONS.format(filter="n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'")
# Which functions each view's query calls: a function dropped and created again takes them along.
VIEW_CALLS = r"""
SELECT DISTINCT vn.nspname, v.relname, fn.nspname,
       format('%s(%s)', f.proname, pg_get_function_identity_arguments(f.oid))
FROM pg_rewrite rw JOIN pg_class v ON v.oid = rw.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_proc'::regclass
JOIN pg_proc f ON f.oid = d.refobjid JOIN pg_namespace fn ON fn.oid = f.pronamespace
WHERE v.relkind IN ('v', 'm') AND vn.nspname !~ '^pg_' AND vn.nspname <> 'information_schema'
"""
# Which table columns each view reads: a column retyped or dropped takes them along.
VIEW_COLUMNS = r"""
SELECT DISTINCT vn.nspname, v.relname, rn.nspname, r.relname, a.attname
FROM pg_rewrite rw JOIN pg_class v ON v.oid = rw.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_class'::regclass
                AND d.refobjsubid > 0
JOIN pg_class r ON r.oid = d.refobjid AND r.oid <> v.oid JOIN pg_namespace rn ON rn.oid = r.relnamespace
JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = d.refobjsubid
WHERE v.relkind IN ('v', 'm') AND vn.nspname !~ '^pg_' AND vn.nspname <> 'information_schema'
"""
# What else calls each function (triggers, column defaults and generated columns, checks of tables and
# domains, domains' defaults, policies, index expressions; a domain's check or default names the
# domain where a table stands, and its default is called `default` of kind `domain`): a
# function dropped and created again takes them along, or is refused where the files cannot bring
# them back. A partition's clone of a trigger goes with its parent's.
FUNCTION_USERS = r"""
SELECT DISTINCT CASE WHEN t.oid IS NOT NULL THEN 'trigger' WHEN a.attgenerated <> '' THEN 'generated column'
                     WHEN ad.oid IS NOT NULL THEN 'default' WHEN co.contypid <> 0 THEN 'domain check'
                     WHEN dt.oid IS NOT NULL THEN 'domain'
                     WHEN co.oid IS NOT NULL THEN 'constraint'
                     WHEN po.oid IS NOT NULL THEN 'policy' ELSE 'index' END,
       coalesce(n.nspname, tn.nspname, dn.nspname), coalesce(c.relname, ty.typname, dt.typname),
       coalesce(t.tgname, a.attname, co.conname, po.polname, ic.relname, 'default'), fn.nspname,
       format('%s(%s)', f.proname, pg_get_function_identity_arguments(f.oid))
FROM pg_depend d JOIN pg_proc f ON f.oid = d.refobjid JOIN pg_namespace fn ON fn.oid = f.pronamespace
LEFT JOIN pg_trigger t ON d.classid = 'pg_trigger'::regclass AND t.oid = d.objid AND t.tgparentid = 0
LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
LEFT JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
LEFT JOIN pg_constraint co ON d.classid = 'pg_constraint'::regclass AND co.oid = d.objid
LEFT JOIN pg_policy po ON d.classid = 'pg_policy'::regclass AND po.oid = d.objid
LEFT JOIN pg_index ix ON d.classid = 'pg_class'::regclass AND ix.indexrelid = d.objid
LEFT JOIN pg_class ic ON ic.oid = ix.indexrelid
LEFT JOIN pg_type ty ON ty.oid = co.contypid LEFT JOIN pg_namespace tn ON tn.oid = ty.typnamespace
LEFT JOIN pg_type dt ON d.classid = 'pg_type'::regclass AND dt.oid = d.objid AND dt.typtype = 'd'
LEFT JOIN pg_namespace dn ON dn.oid = dt.typnamespace
LEFT JOIN pg_class c ON c.oid = coalesce(t.tgrelid, ad.adrelid, nullif(co.conrelid, 0), po.polrelid, ix.indrelid)
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (c.oid IS NOT NULL OR ty.oid IS NOT NULL OR dt.oid IS NOT NULL) AND d.refclassid = 'pg_proc'::regclass
  AND d.deptype = 'n' AND d.classid IN ('pg_trigger'::regclass, 'pg_attrdef'::regclass, 'pg_constraint'::regclass,
                                        'pg_policy'::regclass, 'pg_class'::regclass, 'pg_type'::regclass)
  AND fn.nspname !~ '^pg_' AND fn.nspname <> 'information_schema'
"""
# What each function or procedure cannot be created without, as the server recorded it: the routines
# its argument defaults or BEGIN ATOMIC body call, the relations that body reads, the types it takes,
# returns or uses (an array's or a multirange's: the type that makes it, on which it depends internally).
# The server's own objects are left out: every server has them.
FUNCTION_NEEDS = r"""
WITH needs AS (
  SELECT DISTINCT d.objid, d.refclassid, coalesce(i.refobjid, d.refobjid) AS ref
  FROM pg_depend d
  LEFT JOIN pg_depend i ON d.refclassid = 'pg_type'::regclass AND i.classid = 'pg_type'::regclass
                        AND i.objid = d.refobjid AND i.refclassid = 'pg_type'::regclass AND i.deptype = 'i'
  WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'n'
    AND d.refclassid IN ('pg_proc'::regclass, 'pg_class'::regclass, 'pg_type'::regclass)
), named AS (
  SELECT n.objid, n.refclassid, coalesce(fn.nspname, cn.nspname, tn.nspname) AS needed_schema,
         CASE WHEN f.oid IS NOT NULL THEN format('%s(%s)', f.proname, pg_get_function_identity_arguments(f.oid))
              ELSE coalesce(c.relname, t.typname) END AS needed
  FROM needs n
  LEFT JOIN pg_proc f ON n.refclassid = 'pg_proc'::regclass AND f.oid = n.ref
  LEFT JOIN pg_namespace fn ON fn.oid = f.pronamespace
  LEFT JOIN pg_class c ON n.refclassid = 'pg_class'::regclass AND c.oid = n.ref
  LEFT JOIN pg_namespace cn ON cn.oid = c.relnamespace
  LEFT JOIN pg_type t ON n.refclassid = 'pg_type'::regclass AND t.oid = n.ref
  LEFT JOIN pg_namespace tn ON tn.oid = t.typnamespace
)
SELECT s.nspname, format('%s(%s)', p.proname, pg_get_function_identity_arguments(p.oid)),
       CASE m.refclassid WHEN 'pg_proc'::regclass THEN 'function' WHEN 'pg_class'::regclass THEN 'relation'
                         ELSE 'type' END, m.needed_schema, m.needed
FROM named m JOIN pg_proc p ON p.oid = m.objid JOIN pg_namespace s ON s.oid = p.pronamespace
WHERE s.nspname !~ '^pg_' AND s.nspname <> 'information_schema'
  AND m.needed_schema !~ '^pg_' AND m.needed_schema <> 'information_schema'
"""
# Which table columns, composite types (an attribute) and domains (their base type) use each type, as
# the server recorded it; an array's or a multirange's use counts as its element's or range's. A
# partition's columns are its parent's.
TYPE_USERS = r"""
WITH uses AS (
  SELECT d.classid, d.objid, d.objsubid, coalesce(i.refobjid, d.refobjid) AS type
  FROM pg_depend d
  LEFT JOIN pg_depend i ON i.classid = 'pg_type'::regclass AND i.objid = d.refobjid
                        AND i.refclassid = 'pg_type'::regclass AND i.deptype = 'i'
  WHERE d.refclassid = 'pg_type'::regclass AND d.deptype = 'n'
    AND (d.classid = 'pg_type'::regclass OR (d.classid = 'pg_class'::regclass AND d.objsubid > 0))
)
SELECT DISTINCT tn.nspname, t.typname, CASE WHEN c.relkind = 'c' OR dt.oid IS NOT NULL THEN 'type' ELSE 'column' END,
       coalesce(cn.nspname, dn.nspname), coalesce(ct.typname, c.relname, dt.typname),
       CASE WHEN c.relkind <> 'c' THEN a.attname ELSE '' END
FROM uses u JOIN pg_type t ON t.oid = u.type JOIN pg_namespace tn ON tn.oid = t.typnamespace
LEFT JOIN pg_class c ON u.classid = 'pg_class'::regclass AND c.oid = u.objid AND c.relkind IN ('r', 'p', 'f', 'c')
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.objsubid
LEFT JOIN pg_type ct ON c.relkind = 'c' AND ct.oid = c.reltype
LEFT JOIN pg_namespace cn ON cn.oid = c.relnamespace
LEFT JOIN pg_type dt ON u.classid = 'pg_type'::regclass AND dt.oid = u.objid AND dt.typtype = 'd'
LEFT JOIN pg_namespace dn ON dn.oid = dt.typnamespace
WHERE (a.attislocal OR dt.oid IS NOT NULL) AND tn.nspname !~ '^pg_' AND tn.nspname <> 'information_schema'
"""
# Each range type's multirange (PostgreSQL 14+): made with it, depending on it internally, with an ACL of its own.
MULTIRANGES = r"""
SELECT rn.nspname, r.typname, mn.nspname, m.typname
FROM pg_depend d JOIN pg_type m ON m.oid = d.objid AND m.typtype = 'm' JOIN pg_namespace mn ON mn.oid = m.typnamespace
JOIN pg_type r ON r.oid = d.refobjid JOIN pg_namespace rn ON rn.oid = r.typnamespace
WHERE d.classid = 'pg_type'::regclass AND d.refclassid = 'pg_type'::regclass AND d.deptype = 'i'
  AND rn.nspname !~ '^pg_' AND rn.nspname <> 'information_schema'
"""
LIVE_VIEWS = VIEWS.format(filter="n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'")
LIVE_VIEW_USES = VIEW_USES.format(filter="vn.nspname !~ '^pg_' AND vn.nspname <> 'information_schema'")


def view_states(rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], ViewState]:
    views = {}
    for schema, name, materialized, definition, names, types, options, populated, owner, comment, indexes in rows:
        settings = dict(option.split("=", 1) for option in options)
        views[(schema, name)] = ViewState(
            schema, name, materialized, definition, tuple(zip(names, types, strict=True)),
            settings.get("security_barrier") == "true", settings.get("security_invoker") == "true",
            settings.get("check_option"), populated, owner, comment, tuple(indexes))
    return views


_VOLATILITY = {"v": "volatile", "s": "stable", "i": "immutable"}
_PARALLEL = {"u": "unsafe", "r": "restricted", "s": "safe"}


def function_states(rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], FunctionState]:
    functions = {}
    for (schema, name, procedure, identity, arguments, result, language, body, volatility, strict, definer,
         parallel, leakproof, cost, rows_, config, owner, comment, types) in rows:
        attributes = (("volatility", _VOLATILITY[volatility]), ("strict", strict), ("security_definer", definer),
                      ("parallel", _PARALLEL[parallel]), ("leakproof", leakproof), ("cost", cost),
                      ("rows", rows_), ("set", tuple(config)))
        state = FunctionState(schema, name, procedure, identity, arguments, result, language, body,
                              attributes, owner, comment, types)
        functions[(schema, state.signature)] = state
    return functions


_EVENTS = ((4, "insert"), (16, "update"), (8, "delete"), (32, "truncate"))


def _condition(definition: str) -> str | None:
    """The WHEN condition of a pg_get_triggerdef text, as it prints it."""
    start, end = definition.find(" WHEN ("), definition.rfind(") EXECUTE ")
    return definition[start + len(" WHEN ("):end] if start != -1 and end > start else None


def trigger_states(rows: list[tuple[Any, ...]]) -> dict[tuple[str, str, str], TriggerState]:
    triggers = {}
    for (schema, table, name, tgtype, enabled, fn_schema, fn_name, args, columns, definition, constraint,
         deferrable, initially_deferred, comment) in rows:
        timing = "instead of" if tgtype & 64 else ("before" if tgtype & 2 else "after")
        arguments = tuple(bytes(args).decode().split("\x00")[:-1]) if args else ()
        triggers[(schema, table, name)] = TriggerState(
            schema, table, name, timing, tuple(event for bit, event in _EVENTS if tgtype & bit), tuple(columns),
            "row" if tgtype & 1 else "statement", _condition(definition), (fn_schema, fn_name), arguments,
            constraint, deferrable, initially_deferred, enabled, comment)
    return triggers


# Whether objects of an extension may stand among the user's: the detail queries below read those
# too (a view's uses, a function's callers), while OBJECTS leaves them out. plpgsql's live in pg_catalog.
EXTENSIONS_BESIDE = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname <> 'plpgsql')"
# The detail queries, each with the kinds of OBJECTS whose details it reads: a database without
# such objects (and without extensions) gives it nothing to find, so it is not sent. Planning these
# catalog joins is most of their cost on a small database (about 12 ms for all of them).
_DETAILS: tuple[tuple[str, frozenset[str]], ...] = tuple((query, frozenset(kinds)) for query, kinds in (
    (ENUMS, {"type"}),
    (SEQUENCES, {"sequence"}),
    (LIVE_VIEWS, {"view", "materialized_view"}),
    (LIVE_VIEW_USES, {"view", "materialized_view"}),
    (LIVE_FUNCTIONS, {"function", "procedure"}),
    (LIVE_TRIGGERS, {"trigger"}),
    (COMPOSITES.format(filter=_USER_NAMESPACES), {"type"}),
    (DOMAINS.format(filter=_USER_NAMESPACES), {"type"}),
    (VIEW_CALLS, {"view", "materialized_view"}),
    (VIEW_COLUMNS, {"view", "materialized_view"}),
    (FUNCTION_USERS, {"function", "procedure", "aggregate"}),
))
# What cannot be created without what (core.left_out): asked by export, and by a plan only when it
# prunes (10 to 15 ms each at a thousand functions of user types, for nothing in any other plan).
_DEPENDENCIES: tuple[tuple[str, frozenset[str]], ...] = tuple((query, frozenset(kinds)) for query, kinds in (
    (FUNCTION_NEEDS, {"function", "procedure"}),
    (TYPE_USERS, {"type"}),
    (MULTIRANGES, {"type"}),
))


def read_type_users(conn: psycopg.Connection) -> dict[tuple[str, str], set[tuple[str, str, str, str]]]:
    """`SchemaObjects.type_users` alone: a plan that does not prune needs them only when it drops
    and creates a type again (`diff.type_users`)."""
    return _type_users(conn.execute(TYPE_USERS).fetchall())


def _type_users(rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], set[tuple[str, str, str, str]]]:
    users: dict[tuple[str, str], set[tuple[str, str, str, str]]] = {}
    for schema, name, kind, user_schema, user, column in rows:
        users.setdefault((schema, name), set()).add((kind, user_schema, user, column))
    return users


def read_schema_objects(conn: psycopg.Connection, dependencies: bool = True) -> SchemaObjects:
    """Every object, then the details of the kinds found (enums, standalone sequences, views,
    functions, triggers, ...) and, with ``dependencies``, what each needs and is used by: two
    round trips whatever their number."""
    with conn.pipeline():
        found, beside = conn.execute(OBJECTS), conn.execute(EXTENSIONS_BESIDE)
    objects = found.fetchall()
    kinds = {row[0] for row in objects}
    row = beside.fetchone()
    every = row is None or bool(row[0])
    asked = [*_DETAILS, *(_DEPENDENCIES if dependencies else ())]
    with conn.pipeline():
        cursors = [conn.execute(query) if every or kinds & wanted else None for query, wanted in asked]
    rows = [cursor.fetchall() if cursor is not None else [] for cursor in cursors]
    enums, sequences, views, uses, functions, triggers, composites, domains, calls, columns, users = \
        rows[:len(_DETAILS)]
    needs, type_users, multiranges = rows[len(_DETAILS):] or ([], [], [])
    live = SchemaObjects([LiveObject(kind, schema, name, table, variety)
                          for kind, schema, name, table, variety in objects])
    kept = {(o.kind, o.schema, o.name) for o in live.objects}  # extension members and serials are not
    live.enums = {(schema, name): EnumState(schema, name, tuple(values), owner, comment)
                  for schema, name, values, owner, comment in enums if ("type", schema, name) in kept}
    for schema, name, type_, start, inc, lo, hi, cache, cycle, t_schema, table, column, owner, comment in sequences:
        if ("sequence", schema, name) in kept:
            owned = (t_schema, table, column) if table else None
            live.sequences[(schema, name)] = SequenceState(schema, name, type_, start, inc, lo, hi, cache, cycle,
                                                           owned, owner, comment)
    live.views = {key: view for key, view in view_states(views).items()
                  if (view.kind, view.schema, view.name) in kept}
    live.functions = {key: f for key, f in function_states(functions).items()
                      if (f.kind, f.schema, f.signature) in kept}
    live.composites = {k: c for k, c in composite_states(composites).items() if ("type", *k) in kept}
    live.domains = {k: d for k, d in domain_states(domains).items() if ("type", *k) in kept}
    user_triggers = {(o.schema, o.table, o.name) for o in live.objects if o.kind == "trigger"}
    live.triggers = {key: t for key, t in trigger_states(triggers).items() if key in user_triggers}
    for schema, name, table_schema, table, column in columns:
        live.view_columns.setdefault((schema, name), set()).add((table_schema, table, column))
    for schema, name, fn_schema, signature in calls:
        live.view_calls.setdefault((schema, name), set()).add((fn_schema, signature))
    for kind, schema, table, name, fn_schema, signature in users:
        live.function_users.setdefault((fn_schema, signature), set()).add((kind, schema, table, name))
    for schema, name, used_schema, used in uses:
        live.view_uses.setdefault((schema, name), set()).add((used_schema, used))
    for schema, signature, what, needed_schema, needed in needs:
        live.function_needs.setdefault((schema, signature), set()).add((what, needed_schema, needed))
    live.type_users = _type_users(type_users)
    live.multiranges = {(schema, name): (m_schema, m_name) for schema, name, m_schema, m_name in multiranges}
    return live


def scratch_prelude(db: model.Database, live: SchemaObjects) -> list[sql.Composed]:
    """The statements that give the scratch build the file's types and sequences (and their
    schemas), which is rolled back: columns of those types, defaults naming a value the apply adds
    or calling nextval() of a new sequence are then read as the server will print them. A live enum
    whose values change is renamed out of the way and made anew (a transaction may not use the
    values it added to a type)."""
    statements: list[sql.Composed] = []
    for q in db.sequences:
        if (q.schema_, q.name) in live.sequences:
            continue
        if q.renamed_from and (q.schema_, q.renamed_from) in live.sequences:
            statements.append(sql.SQL("ALTER SEQUENCE {} RENAME TO {}").format(
                sql.Identifier(q.schema_, q.renamed_from), sql.Identifier(q.name)))
        else:
            statements += [sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(q.schema_)),
                           sql.SQL("CREATE SEQUENCE {}").format(sql.Identifier(q.schema_, q.name))]
    for t in db.types:
        if t.enum is None:
            continue
        have = live.enums.get((t.schema_, t.name))
        if have is None and t.renamed_from and (old := live.enums.get((t.schema_, t.renamed_from))):
            have = old
            statements.append(sql.SQL("ALTER TYPE {} RENAME TO {}").format(
                sql.Identifier(t.schema_, old.name), sql.Identifier(t.name)))
        if have is not None and have.values == tuple(t.enum):
            continue
        if have is None:
            statements.insert(0, sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(t.schema_)))
        else:
            statements.append(sql.SQL("ALTER TYPE {} RENAME TO {}").format(
                sql.Identifier(t.schema_, t.name), sql.Identifier(f"erpprov_scratch_{uuid.uuid4().hex[:12]}")))
        statements.append(create_enum(EnumState(t.schema_, t.name, tuple(t.enum))))
    absent = _absent(db, live)
    statements += [sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(s))
                   for s in sorted({t.schema_ for t in absent})]
    statements += [create_domain(t, functions=db.functions) for t in absent if t.base_type is not None]
    statements += [create_composite(t) for t in absent if t.attributes is not None]
    return statements


def domain_calls_prelude(db: model.Database, live: SchemaObjects) -> list[sql.Composed]:
    """What `scratch_prelude` left out of the domains it creates, to follow the function stand-ins
    (function_canon.function_prelude): their default and checks that call the file's functions."""
    return [statement for t in _absent(db, live) if t.base_type is not None
            for statement in domain_calls(t, db.functions)]


def _absent(db: model.Database, live: SchemaObjects) -> list[model.Type]:
    """The file's composite types and domains the live database has no type of that name for."""
    return [t for t in db.types if t.enum is None and (t.schema_, t.name) not in live.composites
            and (t.schema_, t.name) not in live.domains]


# Each function's arguments one by one (what export writes): name, mode (i, o, b, v, t: a
# RETURNS TABLE column), type, default; and its result type and whether it returns a set.
FUNCTION_PARTS = r"""
SELECT n.nspname, format('%s(%s)', p.proname, pg_get_function_identity_arguments(p.oid)),
       array(SELECT coalesce(p.proargnames[i], '') FROM generate_series(1, a.n) i ORDER BY i),
       array(SELECT coalesce(p.proargmodes[i], 'i') FROM generate_series(1, a.n) i ORDER BY i),
       array(SELECT format_type(coalesce(p.proallargtypes[i], p.proargtypes[i - 1]), NULL)
             FROM generate_series(1, a.n) i ORDER BY i),
       array(SELECT pg_get_function_arg_default(p.oid, i) FROM generate_series(1, a.n) i ORDER BY i),
       format_type(p.prorettype, NULL), p.proretset
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN LATERAL (SELECT coalesce(array_length(p.proallargtypes, 1), p.pronargs) AS n) a
WHERE p.prokind IN ('f', 'p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
"""


def function_parts(conn: psycopg.Connection) -> dict[tuple[str, str], tuple[list[dict[str, Any]], str, bool]]:
    """(schema, signature) -> (arguments as a playbook writes them, result type, returns a set)."""
    modes = {"i": "in", "o": "out", "b": "inout", "v": "variadic", "t": "table"}
    parts = {}
    for schema, signature, names, arg_modes, types, defaults, result, setof in conn.execute(FUNCTION_PARTS):
        arguments = []
        for name, mode, type_, default in zip(names, arg_modes, types, defaults, strict=True):
            argument: dict[str, Any] = {"name": name} if name else {}
            argument["type"] = type_
            if modes[mode] != "in":
                argument["mode"] = modes[mode]
            if default is not None:
                argument["default"] = default
            arguments.append(argument)
        parts[(schema, signature)] = (arguments, result, setof)
    return parts
