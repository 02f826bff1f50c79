"""Functions that other objects of the same apply use, and the plans that must stop before the
server would: against the real server, each apply ending with the convergence check."""

from __future__ import annotations

from erpprov.core.actions import Hazard
from tests.helpers import apply_all, assert_converged, load_targets, plan_of


def _targets(tmp_path, pg, body: str):  # type: ignore[no-untyped-def]
    return load_targets(tmp_path, pg, f"- name: p\n  hosts: all\n  databases:\n    - name: {pg.dbname}\n" + body)


def _converge(tmp_path, pg, body: str, allow: frozenset[Hazard] = frozenset()) -> None:
    targets = _targets(tmp_path, pg, body)
    apply_all(targets, allow=allow)  # fails unless the re-plan inside the lock is empty
    assert plan_of(targets) == []
    assert_converged(tmp_path)


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
    _converge(tmp_path, pg, CALLED)
    conn.execute("INSERT INTO app.items DEFAULT VALUES")
    assert conn.execute("SELECT code FROM app.items").fetchone() == ("c-1",)
