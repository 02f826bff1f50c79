"""Types (enums, composite types, domains) and standalone sequences against the real server, each
ending with the convergence check (apply_all fails when the re-plan inside the lock is not empty;
plan_of then shows nothing)."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from erpprov.core.actions import Hazard, Op, Phase
from erpprov.diff.types import additions
from erpprov.errors import ErpprovError
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


# `label` takes the domain the other function's result fills: it needs the domain first, the
# domain's default needs `next_code` first
DEFAULT_CALLS = """\
      types:
        - {name: status, enum: [new, done]}
        - name: code
          base_type: text
          default: "next_code()"
          checks: [{name: nonempty, expression: "VALUE <> ''"}]
      functions:
        - {name: next_code, returns: text, body: "SELECT 'X' || 1"}
        - name: label
          arguments: [{name: c, type: code}, {name: s, type: status}]
          returns: text
          body: "SELECT c || ':' || s"
      tables:
        - name: t
          columns: [{name: id, type: int}, {name: c, type: code}]
"""


def test_a_domain_default_calling_a_new_function_plans_applies_and_converges(tmp_path, pg, conn):
    plan = plan_target(load_targets(tmp_path, pg, _play(pg, DEFAULT_CALLS))[0]).ordered()
    steps = {(a.address.kind, a.address.parts[-1], a.phase) for a in plan if a.address.kind != "enum_values"}
    assert steps == {("type", "status", Phase.TYPE), ("type", "code", Phase.TYPE),  # run in the order of phases
                     ("function", "label(…)", Phase.FUNCTION), ("function", "next_code()", Phase.FUNCTION),
                     ("type", "code", Phase.DOMAIN_CALLS), ("table", "t", Phase.TABLE)}
    assert [s.text for s in plan[-2].sql] == ['ALTER DOMAIN "public"."code" SET DEFAULT (next_code())']
    _converge(tmp_path, pg, DEFAULT_CALLS)  # the enum, the domain and functions over them, in one apply
    conn.execute("INSERT INTO t (id) VALUES (1)")
    assert conn.execute("SELECT label(c, 'new') FROM t").fetchone() == ("X1:new",)

    # a new body is CREATE OR REPLACE: the domain's default keeps calling it
    new_body = DEFAULT_CALLS.replace("SELECT 'X' || 1", "SELECT 'Y' || 2")
    [action] = plan_target(load_targets(tmp_path, pg, _play(pg, new_body))[0]).actions
    assert (action.address.kind, action.op) == ("function", Op.UPDATE)
    _converge(tmp_path, pg, new_body)
    conn.execute("INSERT INTO t (id) VALUES (2)")
    assert conn.execute("SELECT c FROM t WHERE id = 2").fetchone() == ("Y2",)

    # a new result drops the function and creates it again: the domain's default goes and comes back
    resigned = new_body.replace("{name: next_code, returns: text,", "{name: next_code, returns: varchar,")
    [action] = plan_target(load_targets(tmp_path, pg, _play(pg, resigned))[0]).actions
    assert action.op is Op.REPLACE and action.sql[0].text == 'ALTER DOMAIN "public"."code" DROP DEFAULT'
    _converge(tmp_path, pg, resigned, allow=frozenset({Hazard.BREAKS_CALLERS}))
    conn.execute("INSERT INTO t (id) VALUES (3)")
    assert conn.execute("SELECT c FROM t WHERE id = 3").fetchone() == ("Y2",)


def test_a_domain_default_taking_from_a_new_sequence_converges(tmp_path, pg, conn):
    _converge(tmp_path, pg, """\
      sequences: [{name: codes}]
      types: [{name: code, base_type: bigint, default: "nextval('codes')"}]
      tables: [{name: t, columns: [{name: id, type: int}, {name: c, type: code}]}]
""")  # the sequence is created before the domain
    conn.execute("INSERT INTO t (id) VALUES (1)")
    assert conn.execute("SELECT c FROM t").fetchone() == (1,)


CHECK_CALLS = """\
      schemas: [{name: app}]
      types:
        - name: code
          schema: app
          base_type: text
          not_null: true
          checks: [{expression: "app.is_code(VALUE)"}, {expression: "length(VALUE) < 10"}]
      functions:
        - name: is_code
          schema: app
          arguments: [{name: c, type: text}]
          returns: boolean
          body: "SELECT c LIKE 'c-%'"
          volatility: immutable
      tables:
        - name: t
          schema: app
          columns: [{name: c, type: app.code}]
"""


def test_a_domain_check_calling_a_new_function_plans_applies_and_converges(tmp_path, pg, conn):
    # two unnamed checks, the one calling the function added last: both builds name them alike
    _converge(tmp_path, pg, CHECK_CALLS)
    conn.execute("INSERT INTO app.t VALUES ('c-1')")
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO app.t VALUES ('d-1')")


def test_an_existing_domain_given_a_default_calling_a_new_function_converges(tmp_path, pg, conn):
    _converge(tmp_path, pg, """\
      types: [{name: code, base_type: text, default: "'none'"}]
""")
    plan = plan_target(load_targets(tmp_path, pg, _play(pg, DEFAULT_CALLS))[0])
    [altered] = [a for a in plan.actions if a.address.kind == "type" and a.address.parts[-1] == "code"]
    assert altered.phase is Phase.DOMAIN_CALLS and altered.op is Op.UPDATE  # after the function it calls
    _converge(tmp_path, pg, DEFAULT_CALLS, allow=frozenset({Hazard.VALIDATES_DATA}))  # the check is new
    conn.execute("INSERT INTO t (id) VALUES (1)")
    assert conn.execute("SELECT c FROM t").fetchone() == ("X1",)


def test_a_domain_calling_a_function_that_takes_or_returns_it_is_refused_naming_both(tmp_path, pg, conn):
    cycle = DEFAULT_CALLS.replace('{name: next_code, returns: text,', '{name: next_code, returns: code,')
    with pytest.raises(ErpprovError) as refused:
        load_targets(tmp_path, pg, _play(pg, cycle))
    assert "domain public.code: its default calls function public.next_code, which takes or returns code" in str(
        refused.value)
    assert "base type (text)" in (refused.value.hint or "")
    in_check = CHECK_CALLS.replace("{name: c, type: text}", "{name: c, type: app.code}")
    with pytest.raises(ErpprovError) as refused:
        load_targets(tmp_path, pg, _play(pg, in_check))
    assert "its check app.is_code(VALUE) calls function app.is_code" in str(refused.value)
    assert conn.execute("SELECT count(*) FROM pg_type WHERE typname = 'code'").fetchone() == (0,)


MADE_OF = """      types:
        - {name: mood, enum: [sad, ok], grants: [{to: PUBLIC, privileges: []}]}
        - {name: feeling, base_type: mood, grants: [{to: PUBLIC, privileges: []}]}
        - name: day
          attributes: [{name: how, type: feeling}]
"""


def test_a_recreated_enum_takes_its_domain_and_the_composite_over_that_along_with_their_grants(tmp_path, pg, conn):
    _converge(tmp_path, pg, MADE_OF)  # no schema prunes: the users are read for the recreation alone
    reordered = MADE_OF.replace("[sad, ok]", "[ok, sad]")
    plan = plan_target(load_targets(tmp_path, pg, _play(pg, reordered))[0]).ordered()
    assert [(a.address.name.rsplit(".", 1)[-1], a.op) for a in plan if a.address.kind == "type"] == [
        ("day", Op.DELETE), ("feeling", Op.DELETE), ("mood", Op.REPLACE), ("feeling", Op.CREATE),
        ("day", Op.CREATE)]
    _converge(tmp_path, pg, reordered, allow=frozenset({Hazard.BREAKS_CALLERS}))
    assert _values(conn, "mood") == ["ok", "sad"]
    with_column = reordered + "      tables:\n        - {name: days, columns: [{name: d, type: day}]}\n"
    _converge(tmp_path, pg, with_column)
    with pytest.raises(ErpprovError, match=r"type public\.day uses a type this apply drops and creates again.*"
                                           r"column public\.days\.d uses it"):
        plan_target(load_targets(tmp_path, pg, _play(pg, with_column.replace("[ok, sad]", "[sad, ok]")))[0])
