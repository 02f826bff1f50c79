"""`scripts:` against a real PostgreSQL: never run by plan, run once / on change / always by apply,
recorded in erpprov.script_runs, and invisible to the table and schema diffs."""

from __future__ import annotations

from erpprov.plan.build import plan_target
from tests.helpers import apply_all, load_targets, plan_of

PLAY = """
- name: scripts
  hosts: dev
  databases:
    - name: {db}
      prune: true
      tables:
        - name: counters
          columns: [{{name: name, type: text, primary_key: true}}, {{name: n, type: int, nullable: false}}]
      scripts:
        - {{name: seed counters, file: seed.sql}}
        - {{name: bump, run: on_change, sql: "UPDATE counters SET n = n + 1 WHERE name = 'changes'"}}
        - {{name: every time, run: always, sql: "UPDATE counters SET n = n + 1 WHERE name = 'always'"}}
"""


def _counters(pg) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with pg.connect() as conn:
        return dict(conn.execute("SELECT name, n FROM counters").fetchall())


def test_scripts_run_by_apply_only_and_as_their_run_says(tmp_path, pg):
    (tmp_path / "playbooks").mkdir(parents=True)
    seed = tmp_path / "playbooks" / "seed.sql"
    seed.write_text("INSERT INTO counters VALUES ('changes', 0);\nINSERT INTO counters VALUES ('always', 0);\n")
    targets = load_targets(tmp_path, pg, PLAY.format(db=pg.dbname))
    planned = plan_of(targets)
    assert (f"script.{pg.dbname}.seed counters", "create") in planned
    plan_target(targets[0])
    with pg.connect() as conn:  # plan ran nothing: no table, no journal
        assert conn.execute("SELECT to_regclass('erpprov.script_runs')").fetchone() == (None,)
    apply_all(targets)  # the re-plan holds only the `always` script, which repeats by design
    assert _counters(pg) == {"changes": 1, "always": 1}
    with pg.connect() as conn:
        journal = conn.execute("SELECT name, erpprov_version IS NOT NULL FROM erpprov.script_runs "
                               "ORDER BY name").fetchall()
    assert journal == [("bump", True), ("every time", True), ("seed counters", True)]
    assert [address for address, _ in plan_of(targets)] == [f"script.{pg.dbname}.every time"]
    # a changed `once` script is reported, not run; a changed on_change script runs again
    seed.write_text("INSERT INTO counters VALUES ('changes', 100);\n")
    changed = load_targets(tmp_path, pg, PLAY.format(db=pg.dbname).replace("n + 1 WHERE name = 'changes'",
                                                                              "n + 10 WHERE name = 'changes'"))
    plan = plan_target(changed[0])
    assert any("seed counters" in w and "not run again" in w for w in plan.warnings)
    assert sorted(a.address.parts[-1] for a in plan.actions) == ["bump", "every time"]
    apply_all(changed)
    assert _counters(pg) == {"changes": 11, "always": 2}
    # prune: true leaves the journal alone: it is bookkeeping, not a schema of the playbook
    assert [address for address, _ in plan_of(changed)] == [f"script.{pg.dbname}.every time"]


def test_only_the_journal_is_hidden_not_what_a_user_keeps_in_a_schema_named_erpprov(tmp_path, pg):
    """The journal is erpprov's bookkeeping; a table of the user's own in the same schema is theirs,
    and is listed like any other (nothing invisible)."""
    with pg.connect() as conn:
        conn.execute("CREATE SCHEMA erpprov; CREATE TABLE erpprov.audit (id int)")
    bare = f"- name: p\n  hosts: dev\n  databases:\n    - name: {pg.dbname}\n"
    unmanaged = {str(a) for a in plan_target(load_targets(tmp_path, pg, bare)[0]).unmanaged}
    assert {f"table.{pg.dbname}.erpprov.audit", f"schema.{pg.dbname}.erpprov"} <= unmanaged
    apply_all(load_targets(tmp_path, pg, bare + "      scripts: [{name: once, sql: \"SELECT 1\"}]\n"))
    with pg.connect() as conn:
        assert conn.execute("SELECT to_regclass('erpprov.script_runs') IS NOT NULL").fetchone() == (True,)
    unmanaged = {str(a) for a in plan_target(load_targets(tmp_path, pg, bare)[0]).unmanaged}
    assert f"table.{pg.dbname}.erpprov.audit" in unmanaged
    assert not {a for a in unmanaged if "script_runs" in a}
