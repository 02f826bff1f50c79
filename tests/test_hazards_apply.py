"""Every hazard kind: `apply` refuses it without permission, names it and how to allow it, changes
nothing; with permission it goes ahead and the next plan is empty."""

from __future__ import annotations

import pytest

from erpprov.errors import ErpprovError
from erpprov.plan import Hazard
from erpprov.reconcile import plan_target
from tests.helpers import apply_all, load_targets, plan_of

TABLE = """
- name: p
  databases:
    - name: {db}
      schemas: [{{name: public, prune: {prune}}}]
      tables:
        - name: items
          columns:
            - {{name: id, type: integer}}
            - {{name: label, type: {label_type}, nullable: {nullable}}}
"""

SCENARIOS = {
    # name: (setup SQL, playbook changes, hazard that must be refused)
    "drop_table": ("CREATE TABLE legacy (id int); INSERT INTO legacy VALUES (1)",
                   {"prune": "true"}, Hazard.DELETES_DATA),
    "narrow_type": ("", {"label_type": "varchar(2)"}, Hazard.DELETES_DATA),
    "rewrite_type": ("", {"label_type": "integer"}, Hazard.REWRITES_TABLE),
    "not_null": ("", {"nullable": "false"}, Hazard.VALIDATES_DATA),
    "lock": ("", {"nullable": "false"}, Hazard.LOCKS_TABLE),
}


def _playbook(db: str, **changes: str) -> str:
    values = {"db": db, "prune": "false", "label_type": "text", "nullable": "true", **changes}
    return TABLE.format(**values)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_apply_refuses_each_hazard_until_allowed(tmp_path, pg, scenario):
    setup, changes, hazard = SCENARIOS[scenario]
    apply_all(load_targets(tmp_path, pg, _playbook(pg.dbname)))
    with pg.connect() as conn:
        conn.execute("INSERT INTO items VALUES (1, '7'), (2, '42')")
        if setup:
            conn.execute(setup)
    targets = load_targets(tmp_path, pg, _playbook(pg.dbname, **changes))
    planned = {h for a in plan_target(targets[0]).actions for h in a.hazards}
    assert hazard in planned
    before = plan_of(targets)
    with pytest.raises(ErpprovError) as refused:
        apply_all(targets, allow=frozenset(planned - {hazard}))
    assert hazard.value in refused.value.message and f"--allow-hazard {hazard.value}" in refused.value.hint
    assert plan_of(targets) == before  # nothing was changed
    apply_all(targets, allow=frozenset(planned))
    assert plan_of(targets) == []
    with pg.connect() as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 2
