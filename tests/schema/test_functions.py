"""Functions and procedures against the real server, each ending with the convergence check."""

from __future__ import annotations

import pytest

from erpprov.core.actions import Hazard, Op
from erpprov.errors import ErpprovError
from erpprov.plan.build import plan_target
from tests.helpers import apply_all, assert_converged, load_targets, plan_of

FUNCTIONS = """\
      types:
        - {name: order_status, enum: [new, paid]}
      functions:
        - name: touch
          returns: trigger
          language: plpgsql
          body: "BEGIN NEW.updated_at = now(); RETURN NEW; END"
        - name: add
          arguments: [{name: a, type: int}, {name: b, type: int, default: "1"}]
          returns: integer
          body: SELECT a + b
          volatility: immutable
          strict: true
          comment: adds
          set: {search_path: "pg_catalog, public"}
          grants: [{to: PUBLIC, privileges: []}, {to: fn_caller, privileges: [EXECUTE]}]
        - name: is_paid
          arguments: [{name: s, type: order_status}]
          returns: boolean
          body: "SELECT s = 'paid'"
        - name: pairs
          returns_table: [{name: x, type: int}, {name: y, type: text}]
          body: "SELECT 1, 'one'"
      procedures:
        - name: archive
          arguments: [{name: keep, type: int}]
          language: plpgsql
          body: "BEGIN RAISE NOTICE '%', keep; END"
"""


def _targets(tmp_path, pg, body: str):  # type: ignore[no-untyped-def]
    return load_targets(tmp_path, pg, f"- name: p\n  hosts: all\n  databases:\n    - name: {pg.dbname}\n" + body)


def _converge(tmp_path, pg, body: str, allow: frozenset[Hazard] = frozenset()) -> None:
    targets = _targets(tmp_path, pg, body)
    apply_all(targets, allow=allow)  # fails unless the re-plan inside the lock is empty
    assert plan_of(targets) == []


def _can_call(conn, role: str, function: str) -> bool:
    return conn.execute("SELECT has_function_privilege(%s, %s, 'EXECUTE')", (role, function)).fetchone()[0]


def test_functions_and_procedures_converge_and_change_in_place_or_by_recreating(tmp_path, pg, conn):
    conn.execute("CREATE ROLE fn_caller; CREATE ROLE fn_other")
    _converge(tmp_path, pg, FUNCTIONS)  # is_paid's argument type is created by the same apply
    assert conn.execute("SELECT add(2), is_paid('paid'), (SELECT y FROM pairs())").fetchone() == (3, True, "one")
    assert _can_call(conn, "fn_caller", "add(int, int)") and not _can_call(conn, "fn_other", "add(int, int)")

    new_body = FUNCTIONS.replace("SELECT a + b", "SELECT a + b + 0")
    [action] = plan_target(_targets(tmp_path, pg, new_body)[0]).actions
    assert action.op is Op.UPDATE and action.sql[1].text.startswith("CREATE OR REPLACE FUNCTION")
    assert "erpprov_scratch" not in repr(action)
    _converge(tmp_path, pg, new_body)

    conn.execute("CREATE VIEW uses_add AS SELECT add(1) AS two")  # unmanaged, it calls the function
    new_result = new_body.replace("returns: integer", "returns: bigint")
    plan = plan_target(_targets(tmp_path, pg, new_result)[0]).ordered()
    # the caller goes first and comes back once the function is made again, in the same transaction
    assert [(a.address.kind, a.op) for a in plan] == [
        ("view", Op.DELETE), ("function", Op.REPLACE), ("view", Op.CREATE)]
    assert plan[1].hazards == (Hazard.BREAKS_CALLERS,)
    _converge(tmp_path, pg, new_result, allow=frozenset({Hazard.BREAKS_CALLERS}))
    assert conn.execute("SELECT pg_typeof(two)::text FROM uses_add").fetchone()[0] == "bigint"
    assert _can_call(conn, "fn_caller", "add(int, int)") and not _can_call(conn, "fn_other", "add(int, int)")
    assert conn.execute("SELECT pg_typeof(add(1))::text").fetchone()[0] == "bigint"


def test_an_undeclared_overload_stays_unmanaged(tmp_path, pg, conn):
    conn.execute("CREATE ROLE fn_caller;"
                 "CREATE FUNCTION add(a text, b text) RETURNS text LANGUAGE sql AS 'SELECT a || b'")
    _converge(tmp_path, pg, FUNCTIONS)
    unmanaged = plan_target(_targets(tmp_path, pg, FUNCTIONS)[0]).unmanaged
    assert [a for a in unmanaged if a.kind == "function"] == [f"function.{pg.dbname}.public.add(a text, b text)"]


def test_a_renamed_function_and_procedure_keep_their_grants_comment_and_the_views_calling_them(tmp_path, pg, conn):
    conn.execute("CREATE ROLE fn_caller")
    _converge(tmp_path, pg, FUNCTIONS)
    conn.execute("CREATE VIEW sums AS SELECT add(1, 2) AS s")  # unmanaged: it must keep working
    renamed = (FUNCTIONS.replace("- name: add\n", "- name: plus\n          renamed_from: add\n")
               .replace("- name: archive\n", "- name: archive_orders\n          renamed_from: archive\n"))
    plan = plan_target(_targets(tmp_path, pg, renamed)[0])
    assert sorted((a.op, a.before["name"], a.after["name"], len(a.before)) for a in plan.actions) == [
        (Op.UPDATE, "add", "plus", 1), (Op.UPDATE, "archive", "archive_orders", 1)]
    assert [a.sql[0].text for a in plan.actions if a.address.kind == "procedure"] == [
        'ALTER PROCEDURE "public"."archive"(IN keep integer) RENAME TO "archive_orders"']
    assert not [a for a in plan.unmanaged if 'archive(' in str(a)]  # the old name is the declared one
    _converge(tmp_path, pg, renamed)
    assert conn.execute("SELECT s, pg_get_viewdef('sums'::regclass) LIKE '%plus(1, 2)%',"
                        " obj_description('plus(int, int)'::regprocedure) FROM sums").fetchone() == (3, True, "adds")
    assert _can_call(conn, "fn_caller", "plus(int, int)")
    _converge(tmp_path, pg, renamed)  # done: the old name is gone, the rename is nothing


CALLERS = """\
      tables:
        - name: items
          columns:
            - {name: id, type: int}
            - {name: n, type: int, default: "add(1)"}
          checks: [{name: items_n_positive, expression: "add(n) > 0", comment: positive}]
          indexes: [{name: items_added, columns: ["add(id)"], comment: by sum}]
          row_level_security: {enabled: true}
          policies: [{name: mine, using: "add(n) > 0", comment: own}]
      functions:
        - name: add
          arguments: [{name: a, type: int}, {name: b, type: int, default: "1"}]
          returns: integer
          body: SELECT a + b
          volatility: immutable
        - name: keep
          returns: trigger
          language: plpgsql
          body: "BEGIN RETURN NEW; END"
      triggers:
        - {name: items_keep, table: items, timing: before, events: [insert], function: keep, when: "add(NEW.n) > 0",
           comment: kept}
"""


def test_a_re_signed_function_takes_its_triggers_defaults_checks_policies_and_indexes_along(tmp_path, pg, conn):
    # a default calling a function the same apply creates does not canonicalize yet: it exists first
    conn.execute("CREATE FUNCTION add(a int, b int DEFAULT 1) RETURNS integer IMMUTABLE LANGUAGE sql AS 'SELECT a + b'")
    _converge(tmp_path, pg, CALLERS)
    conn.execute("CREATE VIEW uses_add AS SELECT add(1) AS two")  # unmanaged: brought back from its live text
    bigger = CALLERS.replace("returns: integer", "returns: bigint")
    plan = plan_target(_targets(tmp_path, pg, bigger)[0]).ordered()
    assert [(a.address.kind, a.op) for a in plan] == [
        ("view", Op.DELETE), ("function", Op.REPLACE), ("view", Op.CREATE), ("trigger", Op.CREATE)]
    texts = [s.text for s in plan[1].sql]
    drop = next(i for i, t in enumerate(texts) if t.startswith("DROP FUNCTION"))
    assert {t.split()[0] + " " + t.split()[1] for t in texts[:drop]} == {
        "DROP TRIGGER", "ALTER TABLE", "DROP POLICY", "DROP INDEX", "SET LOCAL"}
    assert all(any(w in t for t in texts[drop:]) for w in ("SET DEFAULT", "ADD CONSTRAINT", "CREATE POLICY",
                                                           "CREATE INDEX"))
    assert plan[1].hazards == (Hazard.BREAKS_CALLERS,) and "trigger public.items.items_keep" in (plan[1].note or "")
    assert "dropped with the function" in (plan[3].note or "")
    _converge(tmp_path, pg, bigger, allow=frozenset({Hazard.BREAKS_CALLERS}))
    conn.execute("INSERT INTO items (id) VALUES (1)")
    assert conn.execute("SELECT n, pg_typeof(add(n))::text FROM items").fetchone() == (2, "bigint")
    assert conn.execute("SELECT obj_description(oid, 'pg_trigger') FROM pg_trigger WHERE tgname = 'items_keep'"
                        ).fetchone()[0] == "kept"

    conn.execute("CREATE POLICY theirs ON items USING (add(n) > 1);"
                 "ALTER TABLE items ADD COLUMN g bigint GENERATED ALWAYS AS (add(id)) STORED;"
                 "CREATE DOMAIN positive AS int DEFAULT add(1) CONSTRAINT above CHECK (add(VALUE) > 0)")
    with pytest.raises(ErpprovError) as refused:  # the files could not bring these back
        plan_target(_targets(tmp_path, pg, CALLERS)[0])
    assert ("domain default on public.positive, domain check above on public.positive, generated column g on "
            "public.items, policy theirs on public.items" in str(refused.value))


CALLED = """\
      schemas: [{name: app}]
      functions:
        - {name: next_code, schema: app, returns: text, body: "SELECT 'c-' || nextval('app.codes')"}
        - name: is_code
          schema: app
          arguments: [{name: c, type: text}]
          returns: boolean
          body: "SELECT c LIKE 'c-%'"
          volatility: immutable
      sequences: [{name: codes, schema: app}]
      tables:
        - name: items
          schema: app
          columns:
            - {name: id, type: serial, primary_key: true}
            - {name: code, type: text, default: "app.next_code()"}
            - {name: lower_code, type: text, generated: "lower(code)"}
          checks: [{name: items_code_ok, expression: "app.is_code(code)"}]
"""


def test_a_default_and_a_check_calling_functions_of_the_same_apply_converge(tmp_path, pg, conn):
    _converge(tmp_path, pg, CALLED)  # the rolled-back table build saw the functions the apply creates
    conn.execute("INSERT INTO app.items DEFAULT VALUES")
    assert conn.execute("SELECT code FROM app.items").fetchone() == ("c-1",)
    assert_converged(tmp_path)


def test_a_plan_never_runs_the_body_of_a_function_the_playbook_declares(tmp_path, pg, conn):
    """A stranger's pull request may declare a function with side effects and call it from a
    default: the scratch build evaluates a default that is not volatile (ADD COLUMN stores the
    value), so it must see a stand-in, never the body. A sequence's nextval survives the
    rollback, which makes a body that ran visible."""
    conn.execute("CREATE SEQUENCE public.witness")
    bump = ('{name: %s, returns: integer, language: plpgsql, volatility: immutable, '
            'body: "BEGIN PERFORM nextval(\'public.witness\'); RETURN 1; END"}')
    body = (f"      functions: [{bump % 'bump'}]\n"
            "      tables:\n        - name: t\n          columns:\n"
            "            - {name: id, type: integer, primary_key: true}\n"
            "            - {name: x, type: integer, default: \"bump()\"}\n")
    plan = plan_target(_targets(tmp_path, pg, body)[0])
    assert plan.actions
    assert conn.execute("SELECT last_value FROM pg_sequences WHERE sequencename = 'witness'").fetchone() == (None,)


def test_a_function_in_a_language_the_server_lacks_stops_the_plan(tmp_path, pg):
    body = ('      functions:\n        - {name: f, schema: app, returns: int, language: plfoo, body: "x"}\n'
            '      schemas: [{name: app}]\n')
    with pytest.raises(ErpprovError, match=r"function app\.f: language plfoo does not exist") as refused:
        plan_target(_targets(tmp_path, pg, body)[0])
    assert "plpgsql" in (refused.value.hint or "")  # what it has instead
    # any refusal but an object the apply creates (here an enum) stops the plan too, with the server's reason
    wrong = ('      types: [{name: mood, enum: [ok]}]\n      functions:\n'
             '        - {name: g, arguments: [{name: m, type: mood}], returns: trigger, body: "SELECT 1"}\n')
    with pytest.raises(ErpprovError, match=r"function public\.g: PostgreSQL rejects it: SQL functions cannot return"):
        plan_target(_targets(tmp_path, pg, wrong)[0])
    over_new_table = ('      tables: [{name: fresh, columns: [{name: id, type: int}]}]\n      functions:\n'
                      '        - {name: h, returns: "SETOF fresh", body: "SELECT * FROM fresh"}\n')
    assert plan_target(_targets(tmp_path, pg, over_new_table)[0]).actions  # its row type is the apply's


RESIGNED = """\
      functions:
        - {name: label, arguments: [{name: n, type: int}], returns: int, body: "SELECT n",
           comment: labels, grants: [{to: fn_caller, privileges: [EXECUTE]}]}
      views:
        - {name: labels, query: "SELECT label(1) AS l"}
      tables:
        - name: items
          columns:
            - {name: id, type: int, default: "label(1)"}
"""


def test_a_function_renamed_with_a_new_result_type_in_one_apply_converges(tmp_path, pg, conn):
    conn.execute("CREATE ROLE fn_caller")
    _converge(tmp_path, pg, RESIGNED)
    renamed = (RESIGNED.replace("{name: label,", "{name: tag, renamed_from: label,")
               .replace("returns: int, body: \"SELECT n\"", "returns: bigint, body: \"SELECT n::bigint\"")
               .replace("label(1)", "tag(1)").replace("type: int, default", "type: bigint, default"))
    assert "renamed_from" in renamed and "bigint" in renamed
    _converge(tmp_path, pg, renamed, allow=frozenset(Hazard))
    assert conn.execute("SELECT pg_get_function_result('tag(int)'::regprocedure),"
                        " has_function_privilege('fn_caller', 'tag(int)', 'EXECUTE')").fetchone() == ("bigint", True)
    assert_converged(tmp_path)


def test_a_new_default_calling_a_function_whose_argument_is_renamed_plans_and_converges(tmp_path, pg, conn):
    called = ('      functions:\n'
              '        - {name: f, arguments: [{name: a, type: int}], returns: int, body: "SELECT a"}\n'
              '      views: [{name: calls_f, query: "SELECT f(1) AS v"}]\n')
    _converge(tmp_path, pg, called)
    table = "      tables:\n        - {name: t, columns: [{name: x, type: int, default: \"f(1)\"}]}\n"
    conn.execute("CREATE TABLE kept (y int DEFAULT f(2))")  # an undeclared caller: the plan names it
    with pytest.raises(ErpprovError, match="kept"):
        plan_target(_targets(tmp_path, pg, called.replace("name: a,", "name: b,").replace("SELECT a", "SELECT b"))[0])
    conn.execute("DROP TABLE kept")
    _converge(tmp_path, pg, called.replace("name: a,", "name: b,").replace("SELECT a", "SELECT b") + table,
              allow=frozenset(Hazard))  # a new argument name is a new function to PostgreSQL
    assert_converged(tmp_path)


NEW_TYPES_CALLED = """\
      types:
        - {name: order_status, enum: [new, paid]}
        - {name: money_pair, attributes: [{name: amount, type: numeric}, {name: currency, type: text}]}
        - {name: cents, base_type: bigint, default: "status_weight('paid')",
           checks: [{name: cents_ok, expression: "VALUE >= 0"}]}
      functions:
        - {name: label, arguments: [{name: s, type: order_status}], returns: text, body: "SELECT s::text",
           volatility: immutable}
        - {name: first_status, returns: order_status, body: "SELECT 'new'::order_status"}
        - {name: pair, arguments: [{name: a, type: numeric}], returns: money_pair,
           body: "SELECT ROW(a, 'EUR')::money_pair"}
        - {name: status_weight, arguments: [{name: s, type: order_status}], returns: bigint, body: "SELECT 7::bigint"}
        - {name: to_cents, arguments: [{name: n, type: int}], returns: cents, body: "SELECT (n * 100)::cents"}
        - {name: counted, arguments: [{name: c, type: cents}], returns: boolean, body: "SELECT c > 0"}
      tables:
        - name: orders
          columns:
            - {name: status, type: order_status, default: "first_status()"}
            - {name: shown, type: text, default: "label('new')"}
            - {name: price, type: money_pair, default: "pair(1)"}
            - {name: total, type: cents, default: "to_cents(1)"}
            - {name: fee, type: cents}
            - {name: shown_again, type: text, generated: "label(status)"}
          checks:
            - {name: orders_paid_or_new, expression: "status IN (first_status(), 'paid')"}
            - {name: orders_counted, expression: "counted(total)"}
"""


def test_defaults_checks_and_domains_calling_functions_over_types_of_the_same_apply_converge(tmp_path, pg, conn):
    """The stand-ins of the functions a default, generated column, check or domain default calls
    are built after the types the same apply creates, so one that takes or returns a new enum,
    composite or domain is found too."""
    _converge(tmp_path, pg, NEW_TYPES_CALLED)
    conn.execute("INSERT INTO orders DEFAULT VALUES")
    assert conn.execute("SELECT status::text, shown, shown_again, (price).currency, total, fee FROM orders"
                        ).fetchone() == ("new", "new", "new", "EUR", 100, 7)
    assert_converged(tmp_path)
