"""Views and materialized views against the real server, each ending with the convergence check."""

from __future__ import annotations

import pytest

from erpprov.core.actions import Hazard, Op
from erpprov.errors import ErpprovError
from erpprov.plan.build import plan_target
from tests.helpers import apply_all, load_targets, plan_of

TABLE = """\
      tables:
        - name: orders
          columns:
            - {name: id, type: serial, primary_key: true}
            - {name: total, type: "numeric(10, 2)"}
            - {name: status, type: text}
"""


def _play(pg, body: str) -> str:
    return f"- name: p\n  hosts: all\n  databases:\n    - name: {pg.dbname}\n" + body


def _targets(tmp_path, pg, body: str):  # type: ignore[no-untyped-def]
    return load_targets(tmp_path, pg, _play(pg, TABLE + body))


def _converge(tmp_path, pg, body: str, allow: frozenset[Hazard] = frozenset()) -> None:
    targets = _targets(tmp_path, pg, body)
    apply_all(targets, allow=allow)  # fails unless the re-plan inside the lock is empty
    assert plan_of(targets) == []


VIEWS = """\
      schemas: [{name: reports}]
      views:
        - {name: statuses, query: "SELECT status FROM totals"}  # a materialized view declared below
        - {name: open_orders, query: "select id, total from orders where status = 'open'",
           grants: [{to: view_reader, privileges: [SELECT]}]}
        - {name: big_open, schema: reports, query: "SELECT id FROM open_orders WHERE total > 100",
           security_barrier: true, comment: the big ones}
      materialized_views:
        - {name: totals, query: "SELECT status, sum(total) AS total FROM orders GROUP BY status"}
"""


def test_views_over_new_tables_and_over_each_other_converge_in_one_apply(tmp_path, pg, conn):
    conn.execute("CREATE ROLE view_reader")
    _converge(tmp_path, pg, VIEWS)  # the tables do not exist when the views are planned
    assert conn.execute("SELECT has_table_privilege('view_reader', 'open_orders', 'SELECT')").fetchone()[0]
    assert conn.execute("SELECT count(*) FROM reports.big_open").fetchone()[0] == 0


def test_a_changed_query_is_replaced_in_place_or_recreated_keeping_grants(tmp_path, pg, conn):
    conn.execute("CREATE ROLE view_reader")
    _converge(tmp_path, pg, VIEWS)
    wider = VIEWS.replace("select id, total from", "select id, total, status from")
    [action] = plan_target(_targets(tmp_path, pg, wider)[0]).actions
    assert action.op is Op.UPDATE and "CREATE OR REPLACE VIEW" in action.sql[0].text
    assert "erpprov_scratch" not in repr(action)  # the stand-in schema never shows
    _converge(tmp_path, pg, wider)
    narrower = VIEWS.replace("select id, total from", "select total, id from").replace(
        '"SELECT id FROM open_orders WHERE total > 100"', '"SELECT 1 AS one"')
    plan = plan_target(_targets(tmp_path, pg, narrower)[0])
    # the reader goes first and comes back last, around the view it reads, in one transaction
    assert [(a.address.parts[1:], a.op) for a in plan.ordered()] == [
        (("reports", "big_open"), Op.DELETE), (("public", "open_orders"), Op.DELETE),
        (("public", "open_orders"), Op.CREATE), (("reports", "big_open"), Op.CREATE)]
    assert plan.ordered()[1].hazards == (Hazard.BREAKS_CALLERS,)
    _converge(tmp_path, pg, narrower, allow=frozenset({Hazard.BREAKS_CALLERS}))
    assert conn.execute("SELECT has_table_privilege('view_reader', 'open_orders', 'SELECT')").fetchone()[0]


def test_a_rebuilt_materialized_view_takes_an_unmanaged_reader_along_and_brings_it_back(tmp_path, pg, conn):
    _converge(tmp_path, pg, VIEWS.replace("view_reader", "PUBLIC"))
    conn.execute("CREATE ROLE report_reader; CREATE VIEW status_list AS SELECT status FROM totals;"
                 "GRANT SELECT ON status_list TO report_reader; COMMENT ON VIEW status_list IS 'unmanaged';"
                 "CREATE UNIQUE INDEX totals_status ON totals (status)")  # unmanaged: it comes back too
    changed = VIEWS.replace("view_reader", "PUBLIC").replace("sum(total) AS total", "count(*) AS n")
    drop, *_ = plan_target(_targets(tmp_path, pg, changed)[0]).ordered()
    assert drop.address.kind == "view" and drop.op is Op.DELETE  # the reader first
    _converge(tmp_path, pg, changed, allow=frozenset({Hazard.DELETES_DATA}))
    assert conn.execute("SELECT has_table_privilege('report_reader', 'status_list', 'SELECT'),"
                        " obj_description('status_list'::regclass)").fetchone() == (True, "unmanaged")
    assert conn.execute("SELECT to_regclass('totals_status') IS NOT NULL").fetchone()[0]


def test_a_retyped_column_takes_the_views_that_read_it_along(tmp_path, pg, conn):
    _converge(tmp_path, pg, VIEWS.replace("view_reader", "PUBLIC"))
    conn.execute("CREATE VIEW unmanaged_totals AS SELECT id, total FROM orders")
    wider = VIEWS.replace("view_reader", "PUBLIC")
    targets = load_targets(tmp_path, pg, _play(pg, TABLE.replace('"numeric(10, 2)"', '"numeric(14, 2)"') + wider))
    plan = plan_target(targets[0]).ordered()
    kinds = [(a.address.kind, a.op) for a in plan]
    assert kinds.index(("view", Op.DELETE)) < kinds.index(("column", Op.UPDATE)) < kinds.index(("view", Op.CREATE))
    apply_all(targets, allow=frozenset(Hazard))
    assert plan_of(targets) == []
    assert conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                        "WHERE attrelid = 'unmanaged_totals'::regclass AND attname = 'total'").fetchone()[0] \
        == "numeric(14,2)"


def test_a_plan_says_when_it_cannot_build_views_to_compare_them(tmp_path, pg, conn):
    conn.execute("CREATE ROLE plain_planner LOGIN PASSWORD 'pw'; CREATE TABLE orders (id int)")
    conn.execute(f'REVOKE CREATE ON DATABASE "{pg.dbname}" FROM PUBLIC')
    view = '      views:\n        - {name: v, query: "SELECT id FROM orders"}\n'
    targets = load_targets(tmp_path, pg, _play(pg, view), pg_user="plain_planner", pg_password="pw")
    plan = plan_target(targets[0])
    assert any("may not create schemas here" in w for w in plan.warnings), plan.warnings


def test_a_renamed_view_and_materialized_view_keep_their_grants_comment_readers_and_indexes(tmp_path, pg, conn):
    conn.execute("CREATE ROLE view_reader")
    _converge(tmp_path, pg, VIEWS)
    conn.execute("CREATE VIEW unmanaged_reader AS SELECT id FROM open_orders;"
                 "CREATE UNIQUE INDEX totals_status ON totals (status)")
    renamed = (VIEWS.replace("{name: open_orders,", "{name: orders_open, renamed_from: open_orders,")
               .replace("FROM open_orders", "FROM orders_open")
               .replace("{name: totals,", "{name: order_totals, renamed_from: totals,")
               .replace("FROM totals", "FROM order_totals"))
    plan = plan_target(_targets(tmp_path, pg, renamed)[0])
    renames = [a for a in plan.actions if (a.before or {}).get("name")]
    assert sorted((a.before["name"], a.after["name"]) for a in renames) == [
        ("open_orders", "orders_open"), ("totals", "order_totals")]
    assert {a.op for a in plan.actions} == {Op.UPDATE}  # nothing dropped: the same objects, new names
    assert not [a for a in plan.unmanaged if 'open_orders' in str(a)]  # the old name is the declared one
    _converge(tmp_path, pg, renamed)
    assert conn.execute("SELECT has_table_privilege('view_reader', 'orders_open', 'SELECT'),"
                        " obj_description('reports.big_open'::regclass),"
                        " pg_get_viewdef('unmanaged_reader'::regclass) LIKE '%orders_open%',"
                        " to_regclass('totals_status') IS NOT NULL").fetchone() == (True, "the big ones", True, True)
    _converge(tmp_path, pg, renamed)  # done: the old name is gone, the rename is nothing
    rebuilt = (renamed.replace("{name: order_totals, renamed_from: totals,",
                               "{name: by_status, renamed_from: order_totals,")
               .replace("FROM order_totals", "FROM by_status").replace("sum(total) AS total", "count(*) AS total"))
    _converge(tmp_path, pg, rebuilt, allow=frozenset({Hazard.DELETES_DATA}))  # renamed, then rebuilt: index kept
    assert conn.execute("SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid = 'totals_status'::regclass"
                        ).fetchone()[0] == "by_status"


@pytest.mark.parametrize(("kind", "existing", "body"), [
    ("view", "CREATE VIEW old_v AS SELECT 1 AS one; CREATE VIEW new_v AS SELECT 1 AS one",
     'views: [{name: new_v, renamed_from: old_v, query: "SELECT 1 AS one"}]'),
    ("table", "CREATE TABLE old_v (id int); CREATE TABLE new_v (id int)",
     "tables: [{name: new_v, renamed_from: old_v, columns: [{name: id, type: int}]}]"),
    ("sequence", "CREATE SEQUENCE old_v; CREATE SEQUENCE new_v", "sequences: [{name: new_v, renamed_from: old_v}]"),
])
def test_a_rename_whose_old_and_new_object_both_exist_is_refused(tmp_path, pg, conn, kind, existing, body):
    conn.execute(existing)
    with pytest.raises(ErpprovError, match=rf"{kind} public\.new_v is renamed_from public\.old_v, but both exist"):
        plan_target(load_targets(tmp_path, pg, _play(pg, "      " + body + "\n"))[0])
