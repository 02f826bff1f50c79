"""`erpprov plan` and `erpprov apply` as users run them: exit codes, saved plans, secrets, locking,
kills mid-apply and several hosts at once."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import yaml

from erpprov.drivers.embedded import free_port
from tests.helpers import erpprov, wait_in_transaction, wait_sessions_gone

SECRET = "Pa55-w0rd-that-must-never-show"


def project(tmp: Path, pg, playbook: str, extra_hosts: dict | None = None) -> Path:  # type: ignore[no-untyped-def]
    hosts = {"localhost": {"driver": "external", "pg_host": pg.host, "pg_port": pg.port, "pg_user": pg.user,
                           "pg_password": "{{ env.TEST_PG_PASSWORD }}"}}
    hosts.update(extra_hosts or {})
    (tmp / "inventory.yaml").write_text(yaml.safe_dump({"all": {"children": {"dev": {"hosts": hosts}}}}))
    (tmp / ".env").write_text(f"TEST_PG_PASSWORD={pg.password}\nAPP_PASSWORD={SECRET}\n")
    (tmp / "playbooks").mkdir(exist_ok=True)
    (tmp / "playbooks" / "dev.yaml").write_text(textwrap.dedent(playbook))
    return tmp


def simple_playbook(db: str) -> str:
    return f"""
        - name: app
          hosts: dev
          roles:
            - {{name: cli_app, login: true, password: "{{{{ env.APP_PASSWORD }}}}"}}
          databases:
            - name: {db}
              grants: [{{to: cli_app, privileges: [CONNECT]}}]
    """


def test_detailed_exitcode_then_apply_then_nothing_to_do(tmp_path, pg):
    cwd = project(tmp_path, pg, simple_playbook(pg.dbname))
    first = erpprov(cwd, "plan", "--detailed-exitcode")
    assert first.returncode == 2, first.stderr
    assert "+ role.cli_app" in first.stdout and "Plan: 2 to add, 0 to change, 0 to destroy." in first.stdout
    applied = erpprov(cwd, "apply")
    assert applied.returncode == 0, applied.stderr
    assert "changed: [localhost] role cli_app" in applied.stdout
    assert "RECAP" in applied.stdout and "changed=2" in applied.stdout
    again = erpprov(cwd, "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes." in again.stdout


def test_no_secret_in_any_output_plan_file_or_server_log(tmp_path, pg, pg_cluster):
    cwd = project(tmp_path, pg, simple_playbook(pg.dbname))
    logged = {"PGOPTIONS": "-c log_statement=all"}  # the server logs every statement erpprov sends
    outputs = [erpprov(cwd, "plan", "--sql", env=logged), erpprov(cwd, "plan", "--format", "json", env=logged),
               erpprov(cwd, "plan", "--format", "markdown"), erpprov(cwd, "plan", "-o", "plan.json"),
               erpprov(cwd, "apply", "-v", env=logged)]
    (tmp_path / "playbooks" / "dev.yaml").write_text(textwrap.dedent(simple_playbook(pg.dbname)).replace(
        "login: true", "login: true, connection_limit: oops"))
    outputs.append(erpprov(cwd, "plan", "-v"))
    assert outputs[-1].returncode == 1
    texts = [o.stdout + o.stderr for o in outputs] + [(cwd / "plan.json").read_text(), pg_cluster.tail_log(5000)]
    assert "CREATE ROLE" in texts[0] and "ALTER ROLE" not in texts[0]
    assert "(sensitive)" in texts[0]
    # The server log did record what apply sent (an empty log would hide nothing and prove nothing).
    assert "statement: CREATE ROLE" in texts[-1] and "SCRAM-SHA-256$" in texts[-1], texts[-1][-2000:]
    for text in texts:
        assert SECRET not in text
        assert pg.password not in text
    assert oct((cwd / "plan.json").stat().st_mode & 0o777) == "0o600"


def test_saved_plan_applies_exactly_and_refuses_when_anything_moved(tmp_path, pg):
    cwd = project(tmp_path, pg, simple_playbook(pg.dbname))
    assert erpprov(cwd, "plan", "-o", "plan.json").returncode == 0
    with pg.connect() as conn:
        conn.execute("CREATE ROLE someone_new")  # the live state moves on
    stale = erpprov(cwd, "apply", "plan.json")
    assert stale.returncode == 1 and "live state changed since the plan was saved" in stale.stderr
    assert erpprov(cwd, "plan", "-o", "plan.json").returncode == 0
    (tmp_path / "playbooks" / "dev.yaml").write_text(textwrap.dedent(simple_playbook(pg.dbname)).replace(
        "login: true", "login: true, connection_limit: 3"))
    edited = erpprov(cwd, "apply", "plan.json")
    assert edited.returncode == 1 and "changed since the plan was saved" in edited.stderr
    (tmp_path / "playbooks" / "dev.yaml").write_text(textwrap.dedent(simple_playbook(pg.dbname)))
    good = erpprov(cwd, "apply", "plan.json")
    assert good.returncode == 0, good.stderr
    assert erpprov(cwd, "plan", "--detailed-exitcode").returncode == 0


def test_sigkill_mid_apply_leaves_each_database_before_or_after_and_the_next_apply_converges(tmp_path, pg):
    databases = [f"{pg.dbname}_k{i}" for i in range(3)]
    schemas = "\n".join(f"        - name: s{j}\n          grants: [{{to: kill_app, privileges: [USAGE, CREATE]}}]"
                        for j in range(15))
    plays = "\n".join(f"""
    - name: {db}
      hosts: dev
      roles: [{{name: kill_app}}]
      databases:
        - name: {db}
          schemas:
{textwrap.indent(schemas, '  ')}""" for db in databases)
    cwd = project(tmp_path, pg, plays)

    def schemas() -> dict[str, int | None]:  # per database: how many of the 15 it holds (None: no database yet)
        with pg.connect("postgres") as conn:
            existing = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        counts: dict[str, int | None] = dict.fromkeys(databases)
        for db in databases:
            if db in existing:
                with pg.connect(db) as conn:
                    counts[db] = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname ~ '^s[0-9]+$'"
                                              ).fetchone()[0]
        return counts

    rng = random.Random(7)
    landed = 0  # kills that found erpprov inside a database's transaction and undid it
    for _ in range(4):
        victim = rng.choice([db for db, count in schemas().items() if count != 15] or databases)
        proc = subprocess.Popen([sys.executable, "-m", "erpprov", "apply"], cwd=cwd, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        inside = wait_in_transaction(pg.connect, [victim], proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        wait_sessions_gone(pg.connect)
        counts = schemas()
        for db, count in counts.items():
            assert count in (None, 0, 15), f"{db} holds {count} of 15 schemas: a transaction was split"
        landed += inside is not None and counts[inside] == 0
    assert landed, "no kill landed inside a transaction: every one hit erpprov before or after its work"
    final = erpprov(cwd, "apply", "--lock-wait", "30")
    assert final.returncode == 0, final.stderr
    assert erpprov(cwd, "plan", "--detailed-exitcode").returncode == 0


def test_one_failing_host_does_not_stop_the_others(tmp_path, pg):
    dead = {"driver": "external", "pg_host": "127.0.0.1", "pg_port": free_port(), "pg_password": "x",
            "pg_connect_timeout": 1}
    cwd = project(tmp_path, pg, simple_playbook(pg.dbname), extra_hosts={"deadhost": dead})
    out = erpprov(cwd, "apply", "--forks", "2")
    assert out.returncode == 1
    assert "changed: [localhost] role cli_app" in out.stdout
    recap = {line.split()[0]: line for line in out.stdout[out.stdout.index("RECAP"):].splitlines()[1:] if line}
    assert "changed=2" in recap["localhost"] and "failed=0" in recap["localhost"]
    assert "failed=1" in recap["deadhost"]
    assert "error: [deadhost] cannot connect" in out.stderr


def test_offline_plan_needs_no_server(tmp_path, pg):
    cwd = project(tmp_path, pg, simple_playbook("brand_new_db"), extra_hosts=None)
    inventory = yaml.safe_load((cwd / "inventory.yaml").read_text())
    inventory["all"]["children"]["dev"]["hosts"]["localhost"]["pg_port"] = free_port()  # nothing listens
    (cwd / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    out = erpprov(cwd, "plan", "--offline", "--format", "json")
    assert out.returncode == 0, out.stderr
    document = json.loads(out.stdout)
    addresses = [a["address"] for a in document["hosts"][0]["actions"]]
    assert addresses[:2] == ["role.cli_app", "database.brand_new_db"]


def test_saved_plan_with_memberships_and_a_template_applies(tmp_path, pg):
    """The saved file lists actions in apply order and includes file actions; apply must compare
    like with like, not refuse a plan nothing has changed."""
    cwd = project(tmp_path, pg, f"""
        - name: app
          hosts: dev
          roles:
            - {{name: saved_grp}}
            - {{name: saved_a, member_of: [{{role: saved_grp}}]}}
            - {{name: saved_b, member_of: [{{role: saved_grp}}]}}
          databases:
            - name: {pg.dbname}
          templates:
            - {{src: app.env.j2, dest: app.env}}
    """)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "app.env.j2").write_text("DB={{ inventory_hostname }}\n")
    assert erpprov(cwd, "plan", "-o", "plan.json").returncode == 0
    applied = erpprov(cwd, "apply", "plan.json")
    assert applied.returncode == 0, applied.stderr
    assert (tmp_path / "app.env").read_text() == "DB=localhost\n"
    assert erpprov(cwd, "plan", "--detailed-exitcode").returncode == 0


def _statements(plan_document: dict) -> list[str]:
    return [s for h in plan_document["hosts"] for a in h["actions"] for s in a["sql"]]


def test_the_order_shown_is_the_order_saved_and_the_order_the_server_runs(tmp_path, pg, pg_cluster):
    """Two databases, and a role that owns objects in both and is dropped: the plan JSON, the saved
    plan and the statements the server logged list the same statements in the same order (each
    database's work together; REASSIGN/DROP OWNED in every database before DROP ROLE)."""
    first, second = f"{pg.dbname}_a", f"{pg.dbname}_b"
    owner = f"gone_{pg.dbname}"
    with pg.connect("postgres") as admin:
        admin.execute(f"CREATE ROLE {owner}")
        for db in (first, second):
            admin.execute(f"CREATE DATABASE {db}")
            with pg.connect(db) as conn:
                conn.execute(f"CREATE TABLE owned (id int); ALTER TABLE owned OWNER TO {owner}")
    databases = "".join(f"""
            - name: {db}
              schemas: [{{name: app}}]
              tables:
                - {{name: items, schema: app, columns: [{{name: id, type: integer}}]}}""" for db in (first, second))
    cwd = project(tmp_path, pg, f"""
        - name: app
          hosts: dev
          roles:
            - {{name: {owner}, state: absent}}
          databases:{databases}
    """)
    shown = erpprov(cwd, "plan", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert erpprov(cwd, "plan", "-o", "plan.json").returncode == 0
    order = _statements(json.loads(shown.stdout))
    assert order == _statements(json.loads((cwd / "plan.json").read_text()))
    assert order[-1] == f'DROP ROLE "{owner}"'
    refused = erpprov(cwd, "apply", "plan.json")
    assert refused.returncode == 1 and "--allow-hazard drops_role (or --allow-destructive)" in refused.stderr
    start = pg_cluster.log_file.stat().st_size
    applied = erpprov(cwd, "apply", "plan.json", "--allow-destructive", env={"PGOPTIONS": "-c log_statement=all"})
    assert applied.returncode == 0, applied.stderr
    with open(pg_cluster.log_file, encoding="utf-8", errors="replace") as log:
        log.seek(start)
        logged = [line.split(" statement: ", 1)[1] for line in log.read().splitlines() if " statement: " in line]
    assert [s for s in logged if s in order] == order
    assert erpprov(cwd, "plan", "--detailed-exitcode").returncode == 0


def test_two_plans_of_the_same_state_are_byte_identical(tmp_path, pg):
    """A password that must be set (a new role, an existing role with another password) leaves no
    trace of a random salt in the plan: the same files and live state give the same bytes."""
    with pg.connect() as conn:
        conn.execute("CREATE ROLE cli_old LOGIN PASSWORD 'not the one in the files'")
    cwd = project(tmp_path, pg, simple_playbook(pg.dbname).replace(
        "            - {name: cli_app",
        '            - {name: cli_old, login: true, password: "{{ env.APP_PASSWORD }}"}\n            - {name: cli_app'))
    first, second = (erpprov(cwd, "plan", "--format", "json", "--sql") for _ in range(2))
    assert first.returncode == 0, first.stderr
    assert '"role.cli_old"' in first.stdout and "(sensitive) (changed)" in first.stdout
    assert first.stdout == second.stdout and SECRET not in first.stdout
    assert erpprov(cwd, "plan", "-o", "a.json").returncode == 0 and erpprov(cwd, "plan", "-o", "b.json").returncode == 0
    assert (cwd / "a.json").read_bytes() == (cwd / "b.json").read_bytes()
    assert erpprov(cwd, "apply").returncode == 0
    with psycopg.connect(host=pg.host, port=pg.port, user="cli_old", password=SECRET, dbname=pg.dbname) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "cli_old"
    assert erpprov(cwd, "plan", "--detailed-exitcode").returncode == 0
