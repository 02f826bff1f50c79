"""Each hazard is carried by the action that causes it, and performing the action works."""

from __future__ import annotations

import pytest

from erpprov.apply.executor import ApplyFailed
from erpprov.core.actions import Hazard, Op
from erpprov.state.table_catalog import inspect_tables
from tests.tables.tablekit import apply, converge, plan, tables

BASE = """
- name: items
  columns:
    - {name: id, type: int, primary_key: true}
    - {name: label, type: varchar(50)}
    - {name: qty, type: int}
    - {name: owner_id, type: int}
"""
PARENT = "- {name: owners, columns: [{name: id, type: int, primary_key: true}]}\n"


def _seed(conn, rows: int = 3) -> None:
    converge(conn, tables(BASE + PARENT))
    conn.execute("INSERT INTO owners VALUES (1)")
    conn.execute("INSERT INTO items SELECT g, 'label ' || g, g, 1 FROM generate_series(1, %s) g", (rows,))


def _only(result, address_part: str):
    found = [a for a in result.actions if address_part in a.address]
    assert len(found) == 1, [a.address for a in result.actions]
    return found[0]


def test_drop_table_and_column_delete_data(conn):
    _seed(conn)
    spec = tables(BASE.replace("    - {name: qty, type: int}\n", ""))
    result = plan(conn, spec, prune=["public"])
    assert Hazard.DELETES_DATA in _only(result, "owners").hazards
    assert _only(result, "owners").op is Op.DELETE
    assert Hazard.DELETES_DATA in _only(result, "items.qty").hazards
    apply(conn, result.actions)
    assert not plan(conn, spec, prune=["public"]).actions
    assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 3


def test_narrowing_a_type_deletes_data_and_widening_does_not(conn):
    _seed(conn)
    narrow = tables(BASE.replace("varchar(50)", "varchar(20)") + PARENT)
    action = _only(plan(conn, narrow), "items.label")
    assert Hazard.DELETES_DATA in action.hazards and Hazard.LOCKS_TABLE in action.hazards
    converge(conn, narrow)
    wide = tables(BASE.replace("varchar(50)", "varchar(200)") + PARENT)
    action = _only(plan(conn, wide), "items.label")
    assert Hazard.DELETES_DATA not in action.hazards and Hazard.REWRITES_TABLE not in action.hazards
    converge(conn, wide)
    to_text = tables(BASE.replace("varchar(50)", "text") + PARENT)
    assert Hazard.REWRITES_TABLE not in _only(plan(conn, to_text), "items.label").hazards
    converge(conn, to_text)


def test_data_hazards_count_only_on_a_table_with_rows(conn):
    # Rows are read only when some table changes; an empty table's rewrite risks nothing.
    converge(conn, tables(BASE + PARENT))
    spec = tables(BASE.replace("{name: qty, type: int}", "{name: qty, type: bigint}") + PARENT)
    assert _only(plan(conn, spec), "items.qty").hazards == ()
    conn.execute("INSERT INTO items VALUES (1, 'x', 1, NULL)")
    assert Hazard.REWRITES_TABLE in _only(plan(conn, spec), "items.qty").hazards
    converge(conn, spec)


def test_type_change_needing_a_rewrite(conn):
    _seed(conn)
    spec = tables(BASE.replace("{name: qty, type: int}", "{name: qty, type: bigint}") + PARENT)
    action = _only(plan(conn, spec), "items.qty")
    assert Hazard.REWRITES_TABLE in action.hazards and Hazard.DELETES_DATA not in action.hazards
    converge(conn, spec)
    assert conn.execute("SELECT sum(qty) FROM items").fetchone()[0] == 6


def test_volatile_default_on_a_new_column_rewrites_and_a_stable_one_does_not(conn):
    _seed(conn)
    volatile = tables(BASE + "    - {name: token, type: uuid, default: gen_random_uuid()}\n" + PARENT)
    assert Hazard.REWRITES_TABLE in _only(plan(conn, volatile), "items.token").hazards
    stable = tables(BASE + "    - {name: at, type: timestamptz, default: now()}\n" + PARENT)
    assert Hazard.REWRITES_TABLE not in _only(plan(conn, stable), "items.at").hazards
    converge(conn, volatile)
    assert conn.execute("SELECT count(DISTINCT token) FROM items").fetchone()[0] == 3


@pytest.mark.parametrize("change, part, words", [
    ("{name: qty, type: int, nullable: false}", "items.qty", "NULL"),
    ("{name: qty, type: int, unique: true}", "items_qty_key", "duplicate"),
])
def test_constraints_over_existing_rows_validate_data(conn, change, part, words):
    _seed(conn)
    spec = tables(BASE.replace("{name: qty, type: int}", change) + PARENT)
    action = _only(plan(conn, spec), part)
    assert Hazard.VALIDATES_DATA in action.hazards and Hazard.LOCKS_TABLE in action.hazards
    assert words in action.note
    converge(conn, spec)


def test_check_and_foreign_key_validate_data(conn):
    _seed(conn)
    spec = tables(BASE + "  checks: [{expression: 'qty > 0'}]\n"
                  "  foreign_keys: [{columns: [owner_id], references: {table: owners}}]\n" + PARENT)
    result = plan(conn, spec)
    check, fk = _only(result, "items_qty_check"), _only(result, "items_owner_id_fkey")
    assert Hazard.VALIDATES_DATA in check.hazards and "violates" in check.note
    assert Hazard.VALIDATES_DATA in fk.hazards and "references" in fk.note
    assert Hazard.LOCKS_TABLE not in fk.hazards  # SHARE ROW EXCLUSIVE, not ACCESS EXCLUSIVE
    converge(conn, spec)


def test_empty_tables_carry_no_data_hazards(conn):
    converge(conn, tables(BASE + PARENT))
    spec = tables(BASE.replace("{name: qty, type: int}", "{name: qty, type: bigint, nullable: false}")
                  + "  checks: [{expression: 'qty > 0'}]\n" + PARENT)
    result = plan(conn, spec)
    assert result.actions and not any(a.hazards for a in result.actions)
    converge(conn, spec)


def test_not_null_over_nulls_fails_untouched_with_a_clear_message(conn):
    _seed(conn, rows=5)
    conn.execute("UPDATE items SET label = NULL WHERE id <= 2")
    spec = tables(BASE.replace("{name: label, type: varchar(50)}",
                               "{name: label, type: varchar(60), nullable: false}") + PARENT)
    result = plan(conn, spec)
    action = _only(result, "items.label")
    assert Hazard.VALIDATES_DATA in action.hazards
    with pytest.raises(ApplyFailed) as failure:
        apply(conn, result.actions)
    # the whole transaction rolled back: the type change that ran first is undone too
    column = inspect_tables(conn).tables[("public", "items")].column("label")
    assert column.type == "character varying(50)" and not column.not_null
    assert conn.execute("SELECT count(*) FROM items WHERE label IS NULL").fetchone()[0] == 2
    message, hint = str(failure.value), failure.value.hint or ""
    assert message.startswith(action.address), message
    assert "public.items" in message and "label" in message and "2 rows hold NULL" in message
    assert "nothing in this transaction was applied" in hint and "SET NOT NULL" in hint
    # fix the data, and the same plan goes through
    conn.execute("UPDATE items SET label = 'x' WHERE label IS NULL")
    converge(conn, spec)


def test_serial_to_integer_deletes_the_sequence_and_its_value(conn):
    """The column keeps its values, but the sequence goes: where numbering stood is lost."""
    converge(conn, tables("- {name: tickets, columns: [{name: id, type: serial}]}"))
    conn.execute("SELECT nextval('tickets_id_seq') FROM generate_series(1, 5)")  # no rows, a used sequence
    plain = tables("- {name: tickets, columns: [{name: id, type: integer}]}")
    action = _only(plan(conn, plain), "tickets.id")
    assert action.hazards == (Hazard.DELETES_DATA,)
    assert "tickets_id_seq" in action.note and "current value" in action.note
    converge(conn, plain)
    assert conn.execute("SELECT to_regclass('tickets_id_seq')").fetchone()[0] is None


def test_giving_up_an_identity_deletes_its_sequence_and_value(conn):
    """DROP IDENTITY drops the identity's sequence with it: where numbering stood is lost too."""
    converge(conn, tables("- {name: tickets, columns: [{name: id, type: bigint, identity: always}]}"))
    conn.execute("SELECT nextval('tickets_id_seq') FROM generate_series(1, 5)")  # no rows, a used sequence
    plain = tables("- {name: tickets, columns: [{name: id, type: bigint, nullable: false}]}")
    action = _only(plan(conn, plain), "tickets.id")
    assert Hazard.DELETES_DATA in action.hazards
    assert "tickets_id_seq" in action.note and "current value" in action.note
    converge(conn, plain)
    assert conn.execute("SELECT to_regclass('tickets_id_seq')").fetchone()[0] is None
