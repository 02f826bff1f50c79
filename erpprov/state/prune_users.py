"""What still uses the objects a prune would drop (pg_depend, read only when a prune drops
something): PostgreSQL refuses DROP while a default, check, trigger, policy, index, column, view,
function or type depends on the object, so the plan must know before apply does."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from erpprov.core.schema_objects import LiveObject, PruneUser

# Each pruned object by oid, then every normal dependency on it with what holds the dependent:
# its relation (a table's default, check, trigger, policy or index; a column's type; a view's
# rewrite rule), else the function or type (a domain's check) it is part of.
USERS = r"""
WITH pruned(kind, schema, name) AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[])),
target AS (
    SELECT pr.kind, pr.schema, pr.name, 'pg_proc'::regclass AS classid, p.oid AS objid
    FROM pruned pr JOIN pg_namespace n ON n.nspname = pr.schema JOIN pg_proc p ON p.pronamespace = n.oid
     AND format('%%s(%%s)', p.proname, pg_get_function_identity_arguments(p.oid)) = pr.name
    WHERE pr.kind IN ('function', 'procedure')
    UNION ALL
    SELECT pr.kind, pr.schema, pr.name, 'pg_class'::regclass, c.oid
    FROM pruned pr JOIN pg_namespace n ON n.nspname = pr.schema JOIN pg_class c ON c.relnamespace = n.oid
     AND c.relname = pr.name
    WHERE pr.kind IN ('table', 'view', 'materialized_view', 'sequence')
    UNION ALL
    SELECT pr.kind, pr.schema, pr.name, 'pg_type'::regclass, t.oid
    FROM pruned pr JOIN pg_namespace n ON n.nspname = pr.schema JOIN pg_type t ON t.typnamespace = n.oid
     AND t.typname = pr.name
    WHERE pr.kind = 'type')
SELECT DISTINCT t.kind, t.schema, t.name, pg_describe_object(d.classid, d.objid, d.objsubid),
       CASE WHEN c.relkind IN ('r', 'p') THEN 'table' WHEN c.relkind = 'v' THEN 'view'
            WHEN c.relkind = 'm' THEN 'materialized_view' WHEN c.relkind = 'c' THEN 'type'
            WHEN c.oid IS NOT NULL THEN 'relation'
            WHEN p.oid IS NOT NULL THEN CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END
            WHEN ty.oid IS NOT NULL THEN 'type' END,
       coalesce(cn.nspname, pn.nspname, tn.nspname),
       coalesce(CASE WHEN c.relkind = 'c' THEN ct.typname END, c.relname,  -- format() of NULLs is not NULL
                CASE WHEN p.oid IS NOT NULL
                     THEN format('%%s(%%s)', p.proname, pg_get_function_identity_arguments(p.oid)) END, ty.typname),
       CASE WHEN tg.oid IS NOT NULL THEN ARRAY['trigger', cn.nspname, c.relname, tg.tgname]
            WHEN co.conrelid <> 0 THEN ARRAY['constraint', cn.nspname, c.relname, co.conname]
            WHEN ix.indexrelid IS NOT NULL THEN ARRAY['index', cn.nspname, ic.relname]
            WHEN at.attname IS NOT NULL THEN ARRAY['column', cn.nspname, c.relname, at.attname::text] END
FROM target t
JOIN pg_depend d ON d.refclassid = t.classid AND d.refobjid = t.objid AND d.deptype = 'n'
LEFT JOIN pg_rewrite rw ON d.classid = 'pg_rewrite'::regclass AND rw.oid = d.objid
LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
LEFT JOIN pg_constraint co ON d.classid = 'pg_constraint'::regclass AND co.oid = d.objid
LEFT JOIN pg_trigger tg ON d.classid = 'pg_trigger'::regclass AND tg.oid = d.objid
LEFT JOIN pg_policy po ON d.classid = 'pg_policy'::regclass AND po.oid = d.objid
LEFT JOIN pg_index ix ON d.classid = 'pg_class'::regclass AND ix.indexrelid = d.objid
LEFT JOIN pg_class c ON c.oid = coalesce(rw.ev_class, ad.adrelid, nullif(co.conrelid, 0), tg.tgrelid, po.polrelid,
                                         ix.indrelid, CASE WHEN d.classid = 'pg_class'::regclass THEN d.objid END)
LEFT JOIN pg_namespace cn ON cn.oid = c.relnamespace
LEFT JOIN pg_class ic ON ic.oid = ix.indexrelid
LEFT JOIN pg_attribute at ON at.attrelid = c.oid AND at.attnum = coalesce(ad.adnum, CASE
    WHEN d.classid = 'pg_class'::regclass AND d.objsubid > 0 THEN d.objsubid END)
LEFT JOIN pg_type ct ON ct.oid = c.reltype
LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
LEFT JOIN pg_namespace pn ON pn.oid = p.pronamespace
LEFT JOIN pg_type ty ON ty.oid = CASE WHEN d.classid = 'pg_type'::regclass THEN d.objid ELSE nullif(co.contypid, 0) END
LEFT JOIN pg_namespace tn ON tn.oid = ty.typnamespace
WHERE c.oid IS DISTINCT FROM t.objid  -- a view's own rule reads its own columns
ORDER BY 1, 2, 3, 4
"""


def read_prune_users(conn: psycopg.Connection, pruned: Iterable[LiveObject]) -> list[PruneUser]:
    """``pruned``: the objects a prune drops (tables too, as LiveObject("table", ...))."""
    objects = [o for o in pruned if o.kind != "trigger"]  # nothing depends on a trigger
    if not objects:
        return []
    rows = conn.execute(USERS, [[o.kind for o in objects], [o.schema for o in objects],
                                [o.name for o in objects]]).fetchall()
    return [PruneUser(LiveObject(kind, schema, name), what, holder, holder_schema, holder_name,
                      tuple(part) if part else None)
            for kind, schema, name, what, holder, holder_schema, holder_name, part in rows]
