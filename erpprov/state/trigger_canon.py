"""The WHEN conditions of the desired triggers as pg_get_triggerdef prints them: each trigger with
a condition is built on a copy (LIKE) of its table in a stand-in schema of a rolled-back
transaction, never on the table itself (no lock beyond reading its definition). Everything else
of a trigger is compared from the catalog's structured columns."""

from __future__ import annotations

import uuid

import psycopg
from psycopg import sql

from erpprov.core.schema_objects import TriggerState
from erpprov.postgres import trigger_ddl
from erpprov.state.schema_catalog import TRIGGERS, trigger_states
from erpprov.state.scratch_build import build


def canonical_conditions(conn: psycopg.Connection, declared: list[TriggerState]) -> dict[int, str | None]:
    """By position in ``declared``: the printed condition of each trigger with one that the server
    could build (its table and function exist)."""
    conditional = [(i, t) for i, t in enumerate(declared) if t.when is not None]
    if not conditional:
        return {}
    schema = f"erpprov_scratch_{uuid.uuid4().hex[:10]}_tg"
    builds = []
    for i, trigger in conditional:
        builds += [sql.SQL("CREATE TABLE {} (LIKE {})").format(sql.Identifier(schema, f"t{i}"),
                                                               sql.Identifier(trigger.schema, trigger.table)),
                   trigger_ddl.create(trigger, schema=schema, table=f"t{i}")]
    with conn.transaction(force_rollback=True):
        build(conn, [sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema))], builds)
        rows = conn.execute(TRIGGERS.format(filter="n.nspname = %s"), [schema]).fetchall()
    return {int(t.table[1:]): t.when for t in trigger_states(rows).values()}
