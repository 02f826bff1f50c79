"""Enum types and standalone sequences against the real server, each ending with the convergence
check (apply_all fails when the re-plan inside the lock is not empty; plan_of then shows nothing)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erpprov.core.actions import Hazard
from erpprov.diff.types import additions
from erpprov.plan.build import plan_target
from tests.helpers import apply_all, load_targets, plan_of


def _play(pg, body: str) -> str:
    return f"- name: p\n  hosts: all\n  databases:\n    - name: {pg.dbname}\n" + body


def _converge(tmp_path, pg, body: str, allow: frozenset[Hazard] = frozenset()) -> list[str]:
    targets = load_targets(tmp_path, pg, _play(pg, body))
    changed = apply_all(targets, allow=allow)
    assert plan_of(targets) == []
    return changed


def _values(conn, name: str) -> list[str]:
    return conn.execute("SELECT enum_range(NULL::" + name + ")::text[]").fetchone()[0]




def test_enum_column_and_values_added_where_the_file_puts_them_converge(tmp_path, pg, conn):
    conn.execute("CREATE ROLE type_user")
    first = """\
      types:
        - {name: order_status, enum: [new, paid], comment: where an order is}
      tables:
        - name: orders
          columns:
            - {name: id, type: serial, primary_key: true}
            - {name: status, type: order_status, default: "'new'"}
"""
    _converge(tmp_path, pg, first)  # the column's type exists only once the plan's own type does
    assert _values(conn, "order_status") == ["new", "paid"]
    second = """\
      types:
        - name: order_status
          enum: [draft, new, approved, paid, shipped]
          comment: where an order is
          grants: [{to: type_user, privileges: [USAGE]}]
      tables:
        - name: orders
          columns:
            - {name: id, type: serial, primary_key: true}
            - {name: status, type: order_status, default: "'draft'"}
"""
    changed = _converge(tmp_path, pg, second)  # the default uses a value the same apply adds
    assert f"enum_values.{pg.dbname}.public.order_status" in changed
    assert _values(conn, "order_status") == ["draft", "new", "approved", "paid", "shipped"]
    assert conn.execute("SELECT has_type_privilege('type_user', 'order_status', 'USAGE')").fetchone()[0]


def test_removing_an_enum_value_recreates_the_type_only_when_allowed(tmp_path, pg, conn):
    _converge(tmp_path, pg, "      types:\n        - {name: mood, enum: [sad, ok, happy]}\n")
    targets = load_targets(tmp_path, pg, _play(pg, "      types:\n        - {name: mood, enum: [happy, ok]}\n"))
    [action] = plan_target(targets[0]).actions
    assert action.op.value == "replace" and action.hazards == (Hazard.BREAKS_CALLERS,)
    _converge(tmp_path, pg, "      types:\n        - {name: mood, enum: [happy, ok]}\n",
              allow=frozenset({Hazard.BREAKS_CALLERS}))
    assert _values(conn, "mood") == ["happy", "ok"]


def test_sequence_options_change_without_resetting_its_value(tmp_path, pg, conn):
    conn.execute("CREATE ROLE seq_owner; CREATE ROLE seq_user")
    first = """\
      sequences:
        - {name: invoice_no, type: integer, start: 1000, increment: 5, cache: 2, owner: seq_owner,
           grants: [{to: seq_user, privileges: [USAGE, SELECT]}]}
      tables:
        - name: invoices
          owner: seq_owner  # OWNED BY: PostgreSQL wants the table and the sequence in one owner's hands
          columns:
            - {name: number, type: integer, default: "nextval('invoice_no')"}
            - {name: batch, type: integer}
"""
    _converge(tmp_path, pg, first)
    assert [conn.execute("SELECT nextval('invoice_no')").fetchone()[0] for _ in range(2)] == [1000, 1005]
    second = """\
      sequences:
        - {name: invoice_no, type: integer, start: 1, increment: 10, max_value: 99999, cycle: true,
           owner: seq_owner, owned_by: {table: invoices, column: batch}, grants: [{to: seq_user, privileges: [USAGE]}]}
      tables:
        - name: invoices
          owner: seq_owner
          columns:
            - {name: number, type: integer, default: "nextval('invoice_no')"}
            - {name: batch, type: integer}
"""
    _converge(tmp_path, pg, second)
    assert conn.execute("SELECT nextval('invoice_no')").fetchone()[0] == 1015  # not back to 1
    # owned by a column whose default does not call it (one whose default does is that column's serial)
    assert conn.execute("SELECT pg_get_serial_sequence('invoices', 'batch')").fetchone()[0] == "public.invoice_no"
    assert conn.execute("SELECT has_sequence_privilege('seq_user', 'invoice_no', 'USAGE')"
                        " AND NOT has_sequence_privilege('seq_user', 'invoice_no', 'SELECT')").fetchone()[0]


@given(st.lists(st.text("abcdefgh", min_size=1, max_size=2), unique=True, max_size=8), st.data())
def test_added_values_land_where_the_file_puts_them(want: list[str], data: st.DataObject) -> None:
    """Any order-keeping subset of the values as the live enum: the steps rebuild exactly the file."""
    keep = data.draw(st.lists(st.booleans(), min_size=len(want), max_size=len(want)))
    have = [v for v, kept in zip(want, keep, strict=True) if kept]
    enum = list(have)
    steps = additions(tuple(have), tuple(want))
    assert steps is not None
    for value, neighbour, before in steps:
        enum.insert(len(enum) if neighbour is None else enum.index(neighbour) + (0 if before else 1), value)
    assert enum == want


def test_a_reordered_enum_has_no_additions() -> None:
    assert additions(("a", "b"), ("b", "a")) is None and additions(("a", "b"), ("a",)) is None


DOMAINS = """\
      types:
        - {name: order_status, enum: [new, paid]}
        - name: positive
          base_type: int
          default: "1"
          checks: [{expression: VALUE > 0}, {name: small, expression: VALUE < 1000}]
        - name: code
          base_type: varchar(10)
          collation: C
          not_null: true
        - name: money_pair
          attributes: [{name: amount, type: "numeric(12, 2)"}, {name: status, type: order_status},
                       {name: qty, type: code}]
      tables:
        - name: lines
          columns:
            - {name: id, type: serial, primary_key: true}
            - {name: price, type: money_pair}
            - {name: qty, type: positive}
"""


def test_domains_and_composite_types_converge_and_change_in_place(tmp_path, pg, conn):
    _converge(tmp_path, pg, DOMAINS)  # the composite uses an enum and a domain of the same apply
    assert conn.execute("SELECT pg_typeof(qty)::text FROM (SELECT NULL::positive AS qty) s").fetchone()[0] == "positive"
    changed = (DOMAINS.replace('default: "1"', 'default: "2"').replace("VALUE < 1000", "VALUE < 500")
               .replace("not_null: true", "not_null: false")
               .replace("{name: qty, type: code}]", "{name: qty, type: code}, {name: note, type: text}]"))
    actions = {a.address.name.rsplit(".", 1)[-1]: a for a in plan_target(
        load_targets(tmp_path, pg, _play(pg, changed))[0]).actions}
    assert set(actions) == {"positive", "code", "money_pair"} and all(a.op.value == "update" for a in actions.values())
    _converge(tmp_path, pg, changed, allow=frozenset({Hazard.VALIDATES_DATA}))
    moved = changed.replace('[{name: amount, type: "numeric(12, 2)"}, {name: status, type: order_status},',
                            '[{name: status, type: order_status}, {name: amount, type: "numeric(12, 2)"},')
    assert moved != changed
    [action] = plan_target(load_targets(tmp_path, pg, _play(pg, moved))[0]).actions
    assert action.op.value == "replace" and action.hazards == (Hazard.BREAKS_CALLERS,)


def test_a_type_is_one_kind_and_only_an_enum_renames() -> None:
    import pydantic

    from erpprov.core import model

    for wrong in ({"name": "t"}, {"name": "t", "enum": ["a"], "base_type": "int"},
                  {"name": "t", "attributes": [{"name": "a", "type": "int"}], "not_null": True},
                  {"name": "t", "base_type": "int", "renamed_from": "old"}):
        with pytest.raises(pydantic.ValidationError):
            model.Type.model_validate(wrong)
