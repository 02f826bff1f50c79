"""Seed rows (`data:` on a table) against a real PostgreSQL: planned by the server, applied in
order, and converged (a fresh plan is empty)."""

from __future__ import annotations

import gzip
import json

import pytest

from erpprov.core.actions import Hazard
from erpprov.errors import ErpprovError
from erpprov.plan.build import plan_target
from tests.helpers import (
    apply_all,
    assert_converged,
    count_round_trips,
    erpprov,
    load_targets,
    pg_env,
    plan_of,
    server_vars,
    write_project,
)


def _playbook(db: str, tables: str) -> str:
    body = "\n".join("      " + line for line in tables.strip("\n").splitlines())
    return f"""
- name: seed
  hosts: dev
  databases:
    - name: {db}
      tables:
{body}
"""


COUNTRIES = """
- name: countries
  columns:
    - {name: code, type: char(2), primary_key: true}
    - {name: name, type: text, nullable: false}
    - {name: rate, type: "numeric(6,2)"}
  data:
    mode: %s
    rows:
      - {code: FR, name: France, rate: 1.50}
      - {code: DE, name: Germany, rate: "2"}
      - {code: IT, name: "Ital'y \\"quoted\\"", rate: null}
"""


def _rows(pg, query: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    with pg.connect() as conn:
        return conn.execute(query).fetchall()


def test_insert_then_upsert_then_exact_converge(tmp_path, pg):
    targets = load_targets(tmp_path, pg, _playbook(pg.dbname, COUNTRIES % "insert"))
    assert (f"data.{pg.dbname}.public.countries", "create") in plan_of(targets)
    apply_all(targets)
    assert _rows(pg, "SELECT code, name, rate::text FROM countries ORDER BY code") == [
        ("DE", "Germany", "2.00"), ("FR", "France", "1.50"), ("IT", 'Ital\'y "quoted"', None)]
    # 1.50 is 1.5 and "2" is 2.00 for the server: nothing to do
    assert plan_of(targets) == []
    with pg.connect() as conn:
        conn.execute("UPDATE countries SET name = 'Frankreich' WHERE code = 'FR'")
        conn.execute("INSERT INTO countries VALUES ('ES', 'Spain', 3)")
    assert plan_of(targets) == [], "insert mode never touches existing rows"
    upsert = load_targets(tmp_path, pg, _playbook(pg.dbname, COUNTRIES % "upsert"))
    plan = plan_target(upsert[0])
    [action] = plan.actions
    assert action.after is not None and (action.after["update"], action.after["delete"]) == (1, 0)
    assert action.after["first"]["update"] == [{"code": "FR", "name": ["Frankreich", "France"]}]
    apply_all(upsert)
    assert plan_of(upsert) == []
    exact = load_targets(tmp_path, pg, _playbook(pg.dbname, COUNTRIES % "exact"))
    [action] = plan_target(exact[0]).actions
    assert action.hazards == (Hazard.DELETES_DATA,) and action.after is not None and action.after["delete"] == 1
    with pytest.raises(ErpprovError, match="deletes_data"):
        apply_all(exact)
    apply_all(exact, allow=frozenset({Hazard.DELETES_DATA}))
    assert [r[0] for r in _rows(pg, "SELECT code FROM countries ORDER BY code")] == ["DE", "FR", "IT"]
    assert plan_of(exact) == []


PARENTS_AND_CHILDREN = """
- name: orders
  columns:
    - {name: id, type: bigserial, primary_key: true}
    - {name: user_id, type: integer, nullable: false}
    - {name: placed, type: timestamptz}
    - {name: extra, type: json}
  foreign_keys:
    - {columns: [user_id], references: {table: users}}
  data:
    from: orders.csv.gz
- name: users
  columns:
    - {name: id, type: integer, primary_key: true, identity: always}
    - {name: email, type: text, unique: true}
  data:
    key: [email]
    from: users.json
"""


def test_files_parents_first_and_sequences_advanced(tmp_path, pg):
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir(parents=True)
    (playbooks / "users.json").write_text(json.dumps([{"id": 1, "email": "a@x"}, {"id": 7, "email": "b@x"}]))
    csv_text = ('id,user_id,placed,extra\n'
                '1,1,2024-01-01 10:00:00+00,"{""a"": 1}"\n'
                '5,7,2024-01-02T00:00:00Z,\n')
    (playbooks / "orders.csv.gz").write_bytes(gzip.compress(csv_text.encode()))
    targets = load_targets(tmp_path, pg, _playbook(pg.dbname, PARENTS_AND_CHILDREN))
    apply_all(targets)
    with count_round_trips(pytest.MonkeyPatch()) as few:
        assert plan_target(targets[0]).actions == []
    with pg.connect() as conn:
        # the next row an application inserts does not collide with a seeded one
        assert conn.execute("INSERT INTO users (email) VALUES ('c@x') RETURNING id").fetchone() == (8,)
        assert conn.execute("INSERT INTO orders (user_id) VALUES (1) RETURNING id").fetchone() == (6,)
        assert conn.execute("SELECT extra::text FROM orders WHERE id = 1").fetchone() == ('{"a": 1}',)
    # a thousand times the rows, the same number of round trips
    many = "id,user_id,placed,extra\n" + "".join(f"{i},1,2024-01-01,\n" for i in range(1, 2001))
    (playbooks / "orders.csv.gz").write_bytes(gzip.compress(many.encode()))
    targets = load_targets(tmp_path, pg, _playbook(pg.dbname, PARENTS_AND_CHILDREN))
    with count_round_trips(pytest.MonkeyPatch()) as more:
        plan = plan_target(targets[0])
    assert more.count == few.count
    assert [a.after["insert"] for a in plan.actions if a.after] == [1997]  # ids 1, 5 and 6 are there


def test_bad_rows_are_named_by_file_line_row_and_column(tmp_path, pg):
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir(parents=True)
    table = """
- name: t
  columns:
    - {name: id, type: integer, primary_key: true}
    - {name: price, type: numeric}
  data: {from: t.csv}
"""
    (playbooks / "t.csv").write_text('id,price\n1,2\n2,"multi\nline"\n3,abc\n')
    targets = load_targets(tmp_path, pg, _playbook(pg.dbname, table))
    with pytest.raises(ErpprovError) as bad:
        plan_target(targets[0])
    # the line where the row starts (PostgreSQL counts the line where it ends)
    assert "row 2, column price" in bad.value.message and str(bad.value.location).endswith("t.csv:3")
    (playbooks / "t.csv").write_text('id,price\n1,2\n2,3\n3,3,4\n')
    with pytest.raises(ErpprovError) as wide:
        plan_target(load_targets(tmp_path, pg, _playbook(pg.dbname, table))[0])
    assert "row 3: extra data" in wide.value.message and str(wide.value.location).endswith("t.csv:4")
    (playbooks / "t.csv").write_text('id,price\n1,2\n1,3\n')
    with pytest.raises(ErpprovError, match="row 2 repeats the key") as repeated:
        plan_target(load_targets(tmp_path, pg, _playbook(pg.dbname, table))[0])
    assert str(repeated.value.location).endswith("t.csv:3")
    (playbooks / "t.csv").write_text('id,price\n1,2\n,3\n4,4\n,5\n')
    with pytest.raises(ErpprovError, match="row 2 has no value for a key column") as empty:
        plan_target(load_targets(tmp_path, pg, _playbook(pg.dbname, table))[0])
    assert str(empty.value.location).endswith("t.csv:3")
    (playbooks / "t.csv").write_text('id,cost\n1,2\n')
    with pytest.raises(ErpprovError, match="column 'cost'"):
        load_targets(tmp_path, pg, _playbook(pg.dbname, table))
    with pytest.raises(ErpprovError, match="data key names column 'nope'"):
        load_targets(tmp_path, pg, _playbook(pg.dbname, table.replace("{from: t.csv}", "{from: t.csv, key: [nope]}")))
    with pytest.raises(ErpprovError, match="data file not found") as missing:
        load_targets(tmp_path, pg, _playbook(pg.dbname, table.replace("t.csv", "gone.csv")))
    assert str(missing.value.location).endswith("dev.yaml:11:22")  # the `from:` that names it
    # a plan shows a data file's first rows: a file outside the project could leak through it
    with pytest.raises(ErpprovError, match="outside the project"):
        load_targets(tmp_path, pg, _playbook(pg.dbname, table.replace("t.csv", "../../outside.csv")))
    with pg.connect() as conn:  # nothing was created
        assert conn.execute("SELECT to_regclass('public.t')").fetchone() == (None,)


def test_a_cycle_between_seeded_tables_is_refused(tmp_path, pg):
    cycle = """
- name: a
  columns: [{name: id, type: int, primary_key: true}, {name: b, type: int}]
  foreign_keys: [{columns: [b], references: {table: b}}]
  data: {rows: [{id: 1, b: null}]}
- name: b
  columns: [{name: id, type: int, primary_key: true}, {name: a, type: int}]
  foreign_keys: [{columns: [a], references: {table: a}}]
  data: {rows: [{id: 1, a: 1}]}
"""
    targets = load_targets(tmp_path, pg, _playbook(pg.dbname, cycle))
    with pytest.raises(ErpprovError, match="cycle"):
        plan_target(targets[0])


SECRET = "s3cr3t-from-the-env-file"


def test_plan_shows_counts_and_first_rows_in_every_format_without_secrets(tmp_path, pg):
    users = """
- name: users
  columns:
    - {name: id, type: int, primary_key: true}
    - {name: login, type: text}
    - {name: password_hash, type: text}
    - {name: motto, type: text}
  data:
    rows:
      - {id: 1, login: ann, password_hash: "h-ann-visible-only-masked", motto: "{{ env.MOTTO }}"}
      - {id: 2, login: bob, password_hash: null, motto: plain}
"""
    cwd = write_project(tmp_path, _playbook(pg.dbname, users), server_vars(pg), env_file=f"MOTTO={SECRET}\n")
    env = pg_env(pg)
    text = erpprov(cwd, "plan", "--detailed-exitcode", env=env)
    assert text.returncode == 2, text
    assert f"+ data.{pg.dbname}.public.users: 2 to insert" in text.stdout
    assert "+ id='1', login='ann', password_hash=(sensitive), motto='(sensitive)'" in text.stdout
    markdown = erpprov(cwd, "plan", "--format", "markdown", env=env)
    assert f"+ data.{pg.dbname}.public.users: 2 to insert" in markdown.stdout
    as_json = erpprov(cwd, "plan", "--format", "json", env=env)
    [action] = [a for a in json.loads(as_json.stdout)["hosts"][0]["actions"] if a["kind"] == "data"]
    assert action["after"]["insert"] == 2 and action["after"]["first"]["insert"][1]["login"] == "bob"
    for run in (text, markdown, as_json):
        assert SECRET not in run.stdout + run.stderr and "h-ann-visible" not in run.stdout
    saved = erpprov(cwd, "plan", "-o", "plan.json", env=env)
    assert saved.returncode == 0 and SECRET not in (cwd / "plan.json").read_text(), saved
    applied = erpprov(cwd, "apply", "plan.json", env=env)  # the saved plan still matches: it runs
    assert applied.returncode == 0, applied
    assert_converged(cwd, env)
    assert _rows(pg, "SELECT motto FROM users ORDER BY id") == [(SECRET,), ("plain",)]
    # the secret rotates: the live value an update replaces was the old secret, which the plan no
    # longer knows as one; it is hidden whole beside the new one, whatever a filter made of either
    rotated = users.replace("    rows:", "    mode: upsert\n    rows:").replace("env.MOTTO }}", "env.MOTTO | upper }}")
    cwd = write_project(tmp_path, _playbook(pg.dbname, rotated), server_vars(pg), env_file="MOTTO=rotated-motto\n")
    for args in (("plan",), ("plan", "--format", "json"), ("plan", "--format", "markdown")):
        run = erpprov(cwd, *args, env=env)
        assert run.returncode == 0 and "1 to update" in run.stdout.replace('"update": 1', "1 to update"), run
        for secret in (SECRET, "rotated-motto"):
            assert secret.lower() not in (run.stdout + run.stderr).lower(), run


def test_rows_of_a_table_renamed_in_the_same_plan_are_compared_under_the_old_name(tmp_path, pg):
    before = COUNTRIES % "exact"
    apply_all(load_targets(tmp_path, pg, _playbook(pg.dbname, before.replace("name: countries", "name: lands"))),
              allow=frozenset({Hazard.DELETES_DATA}))
    renamed = before.replace("- name: countries", "- name: countries\n  renamed_from: lands")
    targets = load_targets(tmp_path, pg, _playbook(pg.dbname, renamed))
    assert [a.address.kind for a in plan_target(targets[0]).actions] == ["table"]  # no rows to insert
    apply_all(targets)
    assert plan_of(targets) == []


def test_live_values_that_the_new_column_type_cannot_hold_are_a_clear_error(tmp_path, pg):
    with pg.connect() as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'not a number')")
    table = """
- name: t
  columns: [{name: id, type: int, primary_key: true}, {name: v, type: int}]
  data: {rows: [{id: 1, v: 2}], mode: upsert}
"""
    with pytest.raises(ErpprovError, match="live rows cannot be compared") as failed:
        plan_target(load_targets(tmp_path, pg, _playbook(pg.dbname, table))[0])
    assert "invalid input syntax for type integer" in failed.value.message


def _kin(kinds: str, members: str) -> str:
    return f"""
- name: members
  columns:
    - {{name: id, type: int, primary_key: true}}
    - {{name: kind, type: text, nullable: false}}
  foreign_keys: [{{columns: [kind], references: {{table: kinds}}}}]
  data: {{mode: exact, rows: [{members}]}}
- name: kinds
  columns: [{{name: code, type: text, primary_key: true}}]
  data: {{mode: exact, rows: [{kinds}]}}
- name: notes
  columns:
    - {{name: id, type: int, primary_key: true}}
    - {{name: kind, type: text}}
  foreign_keys: [{{columns: [kind], references: {{table: kinds}}, on_delete: cascade}}]
"""


def test_exact_deletes_children_first_then_inserts_parents_first(tmp_path, pg):
    allow = frozenset({Hazard.DELETES_DATA})
    apply_all(load_targets(tmp_path, pg, _playbook(pg.dbname, _kin(
        "{code: a}, {code: b}", "{id: 1, kind: a}, {id: 2, kind: b}"))), allow=allow)
    with pg.connect() as conn:  # rows of a table without data: the server deletes them with their parent
        conn.execute("INSERT INTO notes VALUES (1, 'a'), (2, 'b')")
    # kind a goes with the member that references it, kind c comes with a member that needs it
    targets = load_targets(tmp_path, pg, _playbook(pg.dbname, _kin(
        "{code: b}, {code: c}", "{id: 2, kind: b}, {id: 3, kind: c}")))
    plan = plan_target(targets[0]).ordered()
    assert [(a.address.parts[2], a.op.value) for a in plan] == [
        ("members", "delete"), ("kinds", "delete"), ("kinds", "create"), ("members", "create")]
    assert plan[1].note is not None and "rows of public.notes that reference a deleted row are deleted too" \
        in plan[1].note and plan[0].note is not None and "notes" not in plan[0].note
    apply_all(targets, allow=allow)
    assert _rows(pg, "SELECT m.id, k.code FROM members m JOIN kinds k ON k.code = m.kind ORDER BY 1") == [
        (2, "b"), (3, "c")]
    assert _rows(pg, "SELECT id FROM notes") == [(2,)]
    assert plan_of(targets) == []
