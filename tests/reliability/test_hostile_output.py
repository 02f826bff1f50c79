"""Names that attack the reader, not the server: live objects created by another role with ANSI
escapes, carriage returns, newlines, code fences and bidirectional overrides in their names. The
plan (text, markdown, JSON), apply's lines and recap, and error messages show them escaped, so
nothing can erase a hazard tag, forge a line or break out of a pull-request comment's code block."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from erpprov.core.actions import Action, Hazard, HostPlan, Op, Phase
from erpprov.core.address import Address
from erpprov.core.display import shown
from erpprov.plan.planfile import document, dump
from erpprov.plan.render import markdown, text
from tests.helpers import erpprov

ERASE = "t\x1b[2K\x1b[1A\rclean"  # erase the line, move up, back to column 0
C1 = "c\x9b31mred\u202egpj.exe"  # a C1 CSI, a right-to-left override
FENCE = "r```\n## Approved by security\n```"
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # anything but a newline


def _intruder(pg, tag: str) -> psycopg.Connection:  # type: ignore[no-untyped-def]
    """Another role, with its own connection, that may create tables, roles and databases."""
    name, password = f"intruder_{tag}", uuid.uuid4().hex
    with pg.connect() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(password)))
        admin.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(name)))
    return psycopg.connect(host=pg.host, port=pg.port, user=name, password=password, dbname=pg.dbname,
                           autocommit=True)


def _hostile_server(pg, tag: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    names = {"table": ERASE + tag, "c1": C1 + tag, "role": FENCE + tag, "database": f"d{tag}\x1b]0;owned\x07"}
    with _intruder(pg, tag) as conn:
        for table in (names["table"], names["c1"]):
            conn.execute(sql.SQL("CREATE TABLE public.{} (id int)").format(sql.Identifier(table)))
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(names["role"])))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(names["database"])))
    return names


def _project(tmp: Path, pg) -> Path:  # type: ignore[no-untyped-def]
    pg.inventory(tmp)
    (tmp / "playbooks").mkdir()
    playbook = tmp / "playbooks" / "dev.yaml"
    playbook.write_text(f"- name: p\n  hosts: dev\n  databases:\n    - name: {pg.dbname}\n      prune: true\n")
    return playbook


def _no_raw_controls(output: str) -> None:
    assert RAW.search(output) is None, repr(RAW.search(output))


def test_plan_text_shows_hostile_live_names_escaped(tmp_path, pg):
    tag = uuid.uuid4().hex[:6]
    names = _hostile_server(pg, tag)
    _project(tmp_path, pg)
    run = erpprov(tmp_path, "plan", "-v")  # -v: the SQL, and each unmanaged object's name
    assert run.returncode == 0, run.stderr
    _no_raw_controls(run.stdout)
    drop = next(line for line in run.stdout.splitlines() if shown(names["table"]) in line and "- table" in line)
    assert drop.endswith("[deletes_data]")  # on the same line as the name, nothing can erase it
    assert any(shown(names["c1"]) in line and "[deletes_data]" in line for line in run.stdout.splitlines())
    unmanaged = run.stdout[run.stdout.index("Unmanaged"):]
    assert "role." + shown(names["role"]) in unmanaged and "database." + shown(names["database"]) in unmanaged
    assert not any(line.startswith("## ") for line in run.stdout.splitlines())


def test_markdown_plan_keeps_a_code_fence_in_a_name_inside_the_code_block(tmp_path, pg):
    tag = uuid.uuid4().hex[:6]
    names = _hostile_server(pg, tag)
    _project(tmp_path, pg)
    run = erpprov(tmp_path, "plan", "--format", "markdown")
    assert run.returncode == 0, run.stderr
    _no_raw_controls(run.stdout)
    lines = run.stdout.splitlines()
    opening = next(i for i, line in enumerate(lines) if line.startswith("```"))
    fence = re.match("`+", lines[opening]).group()
    closing = next(i for i in range(opening + 1, len(lines)) if lines[i].startswith(fence))
    # CommonMark: the block ends only at a line of at least as many backticks; the name is inside
    assert lines[closing].strip() == fence
    assert any(shown(names["role"]) in line for line in lines[opening + 1:closing])
    assert not any(line.lstrip().startswith("## ") for line in lines)


def test_json_plan_holds_the_exact_names_and_no_raw_controls(tmp_path, pg):
    tag = uuid.uuid4().hex[:6]
    names = _hostile_server(pg, tag)
    _project(tmp_path, pg)
    run = erpprov(tmp_path, "plan", "--format", "json")
    assert run.returncode == 0, run.stderr
    _no_raw_controls(run.stdout)
    host = json.loads(run.stdout)["hosts"][0]
    assert "role." + names["role"] in host["unmanaged"]  # machines get the name itself
    assert any(a["parts"][-1] == names["c1"] for a in host["actions"])


def test_apply_lines_recap_and_refusal_show_names_escaped(tmp_path, pg):
    tag = uuid.uuid4().hex[:6]
    names = _hostile_server(pg, tag)
    _project(tmp_path, pg)
    refused = erpprov(tmp_path, "apply")
    assert refused.returncode == 1
    _no_raw_controls(refused.stdout + refused.stderr)
    refusal = next(line for line in refused.stderr.splitlines() if shown(names["table"]) in line)
    assert "(deletes_data)" in refusal
    done = erpprov(tmp_path, "apply", "--allow-hazard", "deletes_data")
    assert done.returncode == 0, done.stderr
    _no_raw_controls(done.stdout + done.stderr)
    assert f"changed: [localhost] table {pg.dbname}.public.{shown(names['table'])}" in done.stdout.splitlines()
    assert any(line.startswith("localhost ") and "failed=0" in line for line in done.stdout.splitlines())


def test_error_messages_show_live_names_escaped(tmp_path, pg):
    names = _hostile_server(pg, uuid.uuid4().hex[:6])
    pg.inventory(tmp_path)
    run = erpprov(tmp_path, "export", "--db", "no_such\x1b[8mdb")
    assert run.returncode == 1
    _no_raw_controls(run.stderr)
    assert "no database named no_such\\x1b[8mdb" in run.stderr
    assert shown(names["database"]) in run.stderr  # the hint lists the live databases


def test_every_renderer_escapes_warnings_notes_and_values():
    evil = "x\x1b[31m\ny\r```"
    action = Action(address=Address("table", "db", "public", evil), op=Op.DELETE, phase=Phase.DROP_TABLE, database="db",
                    before={"columns": [evil], evil: 1}, hazards=(Hazard.DELETES_DATA,), note=f"{evil} is dropped")
    plan = HostPlan(host=f"h{evil}", driver="external", actions=[action], unmanaged=[Address("role", evil)],
                    warnings=[f"role.{evil}: the password cannot be compared"])
    for output in (text([plan], show_sql=True), markdown([plan]), dump(document([plan]))):
        _no_raw_controls(output)
    rendered = text([plan], names=True)
    # host, action, two values, the note's two lines (its newline is structure), warning, unmanaged and
    # its one name, summary
    assert len(rendered.splitlines()) == 10
    assert "      role.x\\x1b[31m\\ny\\r```" in rendered.splitlines()
    assert "      # y\\r``` is dropped" in rendered.splitlines()
    assert "! role.x\\x1b[31m\\ny\\r```: the password cannot be compared" in rendered
    assert "<code>hx\\x1b[31m\\ny\\r```</code>" in markdown([plan])
    assert json.loads(dump(document([plan])))["hosts"][0]["unmanaged"] == [f"role.{evil}"]


def test_names_from_the_files_are_escaped_in_plan_apply_and_status(tmp_path, pg):
    """The files are reviewed as YAML, where "\\e[8m" reads harmlessly; the terminal must not run it."""
    pg.inventory(tmp_path)
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "dev.yaml").write_text(
        '- name: p\n  hosts: dev\n  roles:\n    - {name: "app\\e[8m\\rhidden", login: true, password: pw}\n')
    for args in (("plan",), ("apply",), ("status",)):
        run = erpprov(tmp_path, *args)
        assert run.returncode == 0, run.stderr
        _no_raw_controls(run.stdout + run.stderr)
        assert "app\\x1b[8m\\rhidden" in run.stdout, args
