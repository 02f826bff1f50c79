"""A materialized view's declared `indexes:`, against the real server: compared by shape like a
table's, one index changed at a time, given back after a rebuild; each test ends converged."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import yaml

from erpprov.core.actions import Hazard, Op
from erpprov.errors import ErpprovError
from erpprov.plan.build import plan_target
from tests.helpers import apply_all, assert_converged, load_targets, plan_of

BASE = """\
- name: p
  hosts: all
  databases:
    - name: {db}
      tables:
        - name: orders
          columns:
            - {{name: id, type: serial, primary_key: true}}
            - {{name: total, type: "numeric(10, 2)"}}
            - {{name: status, type: text}}
      materialized_views:
        - name: totals
          query: "SELECT status, sum(total) AS total, count(*) AS n FROM orders GROUP BY status"
          indexes:
            - {{columns: [status], unique: true, comment: one per status}}
            - {{name: totals_big, columns: ["lower(status)", "total DESC"], where: "total > 100"}}
"""


def _targets(tmp_path, pg, text: str):  # type: ignore[no-untyped-def]
    return load_targets(tmp_path, pg, text.format(db=pg.dbname) if "{db}" in text else text)


def _indexes(conn: psycopg.Connection) -> dict[str, str]:
    return {name: definition for name, definition in conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'totals'")}


def _plan(tmp_path, pg, text: str) -> list[Any]:  # type: ignore[no-untyped-def]
    return plan_target(_targets(tmp_path, pg, text)[0]).ordered()


def _converge(tmp_path, pg, text: str, allow: frozenset[Hazard] = frozenset()) -> None:  # type: ignore[no-untyped-def]
    targets = _targets(tmp_path, pg, text)
    apply_all(targets, allow=allow)  # fails unless the re-plan inside the lock is empty
    assert plan_of(targets) == []


def test_declared_indexes_are_created_changed_and_dropped_one_at_a_time(tmp_path, pg, conn):
    _converge(tmp_path, pg, BASE)
    indexes = _indexes(conn)
    assert set(indexes) == {"totals_status_idx", "totals_big"}
    assert "UNIQUE" in indexes["totals_status_idx"] and "WHERE (total > (100)::numeric)" in indexes["totals_big"]
    conn.execute("INSERT INTO orders (total, status) VALUES (5, 'open'); REFRESH MATERIALIZED VIEW totals")
    # the server's spelling of the same index is no change; declared, they are not unmanaged
    same = plan_target(_targets(tmp_path, pg, BASE.replace('"total > 100"', '"(total > (100)::numeric)"'))[0])
    assert not same.actions and not [a for a in same.unmanaged if a.kind == "materialized_view_index"]

    changed = BASE.replace('"total > 100"', '"total > 200"')
    [action] = _plan(tmp_path, pg, changed)
    assert (action.address.kind, action.address.parts[-1], action.op) == (
        "materialized_view_index", "totals_big", Op.REPLACE)  # that index only: the view keeps its rows
    _converge(tmp_path, pg, changed)
    assert "200" in _indexes(conn)["totals_big"]
    assert conn.execute("SELECT n FROM totals").fetchone() == (1,)

    fewer = changed.replace('            - {{columns: [status], unique: true, comment: one per status}}\n', "")
    [action] = _plan(tmp_path, pg, fewer)
    assert (action.address.parts[-1], action.op) == ("totals_status_idx", Op.DELETE)
    _converge(tmp_path, pg, fewer)
    assert set(_indexes(conn)) == {"totals_big"}
    assert_converged(tmp_path)


def test_a_rebuilt_materialized_view_gets_the_declared_indexes_back_in_the_same_transaction(tmp_path, pg, conn):
    _converge(tmp_path, pg, BASE)
    conn.execute("CREATE INDEX totals_unlisted ON totals (n)")  # not declared: goes
    rebuilt = BASE.replace("count(*) AS n", "max(total) AS top").replace('"total DESC"', '"top"')
    plan = _plan(tmp_path, pg, rebuilt)
    assert [(a.address.kind, a.op) for a in plan] == [("materialized_view", Op.DELETE),
                                                      ("materialized_view", Op.CREATE)]
    assert any("CREATE INDEX totals_big" in s.text.replace('"', "") for s in plan[1].sql)
    _converge(tmp_path, pg, rebuilt, allow=frozenset({Hazard.DELETES_DATA}))
    indexes = _indexes(conn)
    assert set(indexes) == {"totals_status_idx", "totals_big"} and "top" in indexes["totals_big"]
    assert_converged(tmp_path)


def test_indexes_left_undeclared_stay_unmanaged_and_a_rebuild_that_would_lose_one_stops(tmp_path, pg, conn):
    unset = BASE.split("          indexes:")[0]
    _converge(tmp_path, pg, unset)
    conn.execute("CREATE INDEX totals_mine ON totals (n)")
    plan = plan_target(_targets(tmp_path, pg, unset)[0])
    assert not plan.actions
    assert [a.parts[-1] for a in plan.unmanaged if a.kind == "materialized_view_index"] == ["totals_mine"]
    with pytest.raises(ErpprovError, match="its index totals_mine, which the files do not declare, uses n"):
        plan_target(_targets(tmp_path, pg, unset.replace("count(*) AS n", "count(*) AS c"))[0])
    _targets(tmp_path, pg, unset)
    assert_converged(tmp_path)


EXPORTED_SQL = """
CREATE TABLE orders (id serial PRIMARY KEY, total numeric(10, 2), status text);
CREATE MATERIALIZED VIEW totals AS SELECT status, sum(total) AS total FROM orders GROUP BY status;
CREATE UNIQUE INDEX totals_status ON totals (status);
CREATE INDEX totals_big ON totals (lower(status), total DESC) WHERE total > 100;
COMMENT ON INDEX totals_big IS 'the big ones';
"""


def test_export_writes_the_indexes_and_they_round_trip_to_an_empty_database(tmp_path, pg, conn):
    from pydantic import SecretStr

    from erpprov.core.model import Connection
    from erpprov.ops.export import export_playbook

    conn.execute(EXPORTED_SQL)
    left_out: list[str] = []
    with pg.connect("postgres") as admin:
        [play] = export_playbook(admin, Connection(driver="external", pg_host=pg.host, pg_port=pg.port,
                                                   pg_user=pg.user, pg_password=SecretStr(pg.password)),
                                 databases=[pg.dbname], left_out=left_out, templated=False)
    assert not left_out
    [db] = play["databases"]
    assert db["materialized_views"][0]["indexes"] == [
        {"name": "totals_big", "columns": ["lower(status)", "total DESC"], "where": "(total > (100)::numeric)",
         "comment": "the big ones"},
        {"name": "totals_status", "columns": ["status"], "unique": True}]
    copy = pg.dbname + "_copy"
    play = {"name": "p", "hosts": "all", "databases": [dict(db, name=copy)]}
    targets = load_targets(tmp_path, pg, yaml.safe_dump([play]))
    apply_all(targets)  # fails unless the re-plan inside the lock is empty
    with pg.connect(copy) as copied:
        assert _indexes(copied) == _indexes(conn)
    assert_converged(tmp_path)


def test_an_index_expression_may_call_a_function_the_same_apply_creates(tmp_path, pg, conn):
    conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, total numeric(10, 2), status text)")
    unset = BASE.split("      tables:")[0]  # the table exists: the view is built in the scratch build
    body = BASE.split("      materialized_views:")[1].replace('"lower(status)"', '"norm(status)"')
    functions = ('      functions:\n        - {{name: norm, arguments: [{{name: s, type: text}}], returns: text,'
                 ' body: "SELECT lower(s)", volatility: immutable}}\n')
    _converge(tmp_path, pg, unset + functions + "      materialized_views:" + body)
    assert "norm(status)" in _indexes(conn)["totals_big"]
    assert_converged(tmp_path)
