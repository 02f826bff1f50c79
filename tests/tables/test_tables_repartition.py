"""A table whose partitioning changes is rebuilt (create, copy, swap) in the apply's transaction,
only when `rewrites_table` is allowed: its rows, sequences, grants and the foreign keys that
reference it survive."""

from __future__ import annotations

import psycopg
import pytest

from erpprov.apply.host import HostFailed
from erpprov.core.actions import Hazard, Op
from erpprov.errors import ErpprovError
from tests.helpers import apply_all, load_targets, plan_of
from tests.tables.tablekit import converge, plan, tables

PLAIN = """
- name: orders
  comment: all orders
  columns:
    - {name: id, type: bigint, identity: by default}
    - {name: placed, type: date, nullable: false}
    - {name: note, type: text}
  primary_key: {columns: [id, placed]}
  indexes: [{columns: [note]}]
- name: lines
  columns: [{name: order_id, type: bigint}, {name: placed, type: date}]
  foreign_keys: [{columns: [order_id, placed], references: {table: orders, columns: [id, placed]}}]
"""
PARTITIONED = PLAIN.replace("  indexes:", """  partition_by: {method: range, columns: [placed]}
  partitions:
    - {name: orders_2024, from: ["'2024-01-01'"], to: ["'2025-01-01'"]}
    - {name: orders_rest, default: true}
  indexes:""")


def test_a_table_partitioned_and_back_keeps_its_rows_sequence_and_referencing_keys(conn):
    converge(conn, tables(PLAIN))
    conn.execute("INSERT INTO orders (placed, note) VALUES ('2024-03-01', 'a'), ('2026-01-01', 'b')")
    conn.execute("INSERT INTO lines VALUES (1, '2024-03-01')")
    first = plan(conn, tables(PARTITIONED))
    rebuilt = next(a for a in first.actions if a.address.endswith(".orders") and a.op is Op.REPLACE)
    assert Hazard.REWRITES_TABLE in rebuilt.hazards and "copy the rows" in (rebuilt.note or "")
    converge(conn, tables(PARTITIONED))
    assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'orders'").fetchone() == ("p",)
    assert conn.execute("SELECT count(*) FROM orders_2024").fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM orders_rest").fetchone() == (1,)
    # the identity takes up where the old one stood, and the referencing key still guards the rows
    assert conn.execute("INSERT INTO orders (placed) VALUES ('2024-05-01') RETURNING id").fetchone() == (3,)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("INSERT INTO lines VALUES (9, '2024-03-01')")
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("DELETE FROM orders WHERE id = 1")
    # and back to a plain table
    converge(conn, tables(PLAIN))
    assert conn.execute("SELECT relkind, count(*) FROM orders, pg_class WHERE relname = 'orders' "
                        "GROUP BY relkind").fetchone() == ("r", 3)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("INSERT INTO lines VALUES (9, '2024-03-01')")
    # a live column the file does not mention would not survive the copy: refused, named
    conn.execute("ALTER TABLE orders ADD COLUMN extra int")
    with pytest.raises(ErpprovError, match=r"does not mention its column\(s\) extra"):
        plan(conn, tables(PARTITIONED))


GRANTED = """
- name: shop
  hosts: all
  roles: [{name: shop_reader}, {name: shop_owner}]
  databases:
    - name: {db}
      schemas:
        - name: public
          grants: [{to: shop_reader, privileges: [SELECT], tables: ALL},
                   {to: shop_reader, privileges: [SELECT], sequences: ALL}]
      tables:
        - name: events
          owner: shop_owner
          columns: [{name: id, type: bigserial}, {name: at, type: date}]
"""
GRANTED_PARTITIONED = GRANTED.replace("      tables:", """      views:
        - {name: recent, query: "SELECT id, at FROM events WHERE at > '2000-01-01'"}
      tables:""") + """          partition_by: {method: range, columns: [at]}
          partitions: [{name: events_all, from: [MINVALUE], to: [MAXVALUE]}]
"""


def test_rebuilding_a_table_is_refused_without_permission_and_keeps_its_grants_and_views(tmp_path, pg):
    apply_all(load_targets(tmp_path, pg, GRANTED_PARTITIONED.split("          partition_by")[0].replace(
        "{db}", pg.dbname)))
    with pg.connect() as conn:
        conn.execute("INSERT INTO events (at) VALUES ('2024-01-01')")
    targets = load_targets(tmp_path, pg, GRANTED_PARTITIONED.replace("{db}", pg.dbname))
    with pytest.raises(HostFailed, match=r"events \(rewrites_table\): .*copy the rows.*drop the old table"):
        apply_all(targets)
    apply_all(targets, allow=frozenset({Hazard.REWRITES_TABLE, Hazard.LOCKS_TABLE}))  # fails unless converged
    assert plan_of(targets) == []
    with pg.connect() as conn:
        assert conn.execute(
            "SELECT relkind, pg_get_userbyid(relowner), has_table_privilege('shop_reader', oid, 'SELECT'), "
            "has_sequence_privilege('shop_reader', pg_get_serial_sequence('events', 'id'), 'SELECT') "
            "FROM pg_class WHERE relname = 'events'").fetchone() == ("p", "shop_owner", True, True)
        assert conn.execute("INSERT INTO events (at) VALUES ('2024-02-01') RETURNING id").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM recent").fetchone() == (2,)  # the view reads the new table


BY_DATE = """
- name: ev
  columns: [{name: id, type: serial}, {name: at, type: date}, {name: kind, type: text}]
  primary_key: {columns: [id, at, kind]}
  row_level_security: {enabled: true}
  policies: [{name: mine, using: "kind = 'a'"}]
  indexes: [{columns: [kind]}]
  partition_by: {method: range, columns: [at]}
  partitions:
    - {name: ev_a, from: [MINVALUE], to: ["'2025-01-01'"]}
    - {name: ev_b, from: ["'2025-01-01'"], to: [MAXVALUE]}
"""
BY_KIND = (BY_DATE.replace("{method: range, columns: [at]}", "{method: list, columns: [kind]}")
           .replace("""{name: ev_a, from: [MINVALUE], to: ["'2025-01-01'"]}""", """{name: ev_a, in: ["'a'"]}""")
           .replace("""{name: ev_b, from: ["'2025-01-01'"], to: [MAXVALUE]}""", "{name: ev_b, default: true}"))


def test_another_partition_key_reuses_the_partition_names_and_a_column_renamed_on_the_way_keeps_its_rows(conn):
    converge(conn, tables(BY_DATE))
    conn.execute("INSERT INTO ev (at, kind) VALUES ('2024-01-01', 'a'), ('2026-01-01', 'b')")
    converge(conn, tables(BY_KIND))
    assert conn.execute("SELECT count(*) FROM ev_a").fetchone() == (1,)
    assert conn.execute("SELECT polname FROM pg_policy").fetchall() == [("mine",)]
    # the old indexes and their parts are out of the way, so the new partitions' parts get their own names
    assert conn.execute("SELECT array_agg(indexname ORDER BY indexname) FROM pg_indexes WHERE tablename = 'ev_a'"
                        ).fetchone() == (["ev_a_kind_idx", "ev_a_pkey"],)
    plain = (BY_KIND.split("  partition_by")[0].replace("kind", "sort")
             .replace("{name: sort, type: text}", "{name: sort, type: text, renamed_from: kind}"))
    converge(conn, tables(plain))
    assert conn.execute("SELECT count(*), max(id) FROM ev WHERE sort = 'b'").fetchone() == (1, 2)
    assert conn.execute("INSERT INTO ev (at, sort) VALUES ('2024-01-01', 'a') RETURNING id").fetchone() == (3,)


def test_a_foreign_key_of_an_unmanaged_table_refuses_the_rebuild_at_plan_time(conn):
    converge(conn, tables(PLAIN))
    conn.execute("CREATE TABLE notes (o bigint, p date, FOREIGN KEY (o, p) REFERENCES orders (id, placed))")
    with pytest.raises(ErpprovError, match=r"tables the file does not manage reference it \(public.notes\)"):
        plan(conn, tables(PARTITIONED))


TRIGGERED = """
      functions:
        - {name: stamp, returns: trigger, language: plpgsql, body: "BEGIN NEW.at = '2024-06-01'; RETURN NEW; END"}
      triggers:
        - {name: events_stamp, table: events, timing: before, events: [insert], function: stamp}
      tables:"""


def test_the_triggers_of_a_rebuilt_table_are_made_again_on_the_new_one(tmp_path, pg):
    plain = GRANTED_PARTITIONED.split("          partition_by")[0].replace("{db}", pg.dbname)
    apply_all(load_targets(tmp_path, pg, plain.replace("\n      tables:", TRIGGERED, 1)))
    rebuilt = GRANTED_PARTITIONED.replace("{db}", pg.dbname).replace("\n      tables:", TRIGGERED, 1)
    assert ("trigger." + pg.dbname + ".public.events.events_stamp", "create") in [
        (str(address), op) for address, op in plan_of(load_targets(tmp_path, pg, rebuilt))]
    # one the file does not declare would be lost: refused, named
    with pg.connect() as conn:
        conn.execute("CREATE TRIGGER stray BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION stamp()")
    with pytest.raises(ErpprovError, match=r"would lose the trigger\(s\) stray on public.events"):
        plan_of(load_targets(tmp_path, pg, rebuilt))
    with pg.connect() as conn:
        conn.execute("DROP TRIGGER stray ON events")
    targets = load_targets(tmp_path, pg, rebuilt)
    apply_all(targets, allow=frozenset({Hazard.REWRITES_TABLE, Hazard.LOCKS_TABLE}))  # fails unless converged
    assert plan_of(targets) == []
