"""Hostile names and values against the real server (fixture `pg`): none may change what SQL runs
beyond the named object. Each test applies, checks that the objects exist with exactly those names,
compares a catalog snapshot of everything else before/after, and ends with an empty re-plan."""

from __future__ import annotations

import uuid

import psycopg
import pytest
import yaml

from erpprov.errors import ErpprovError
from tests.helpers import PLAYBOOK, apply_all, load_targets, plan_of, server_vars, write_project

from .conftest import diff_snapshots, snapshot, unique
from .kinds import covers

INJECTION = "'; DROP TABLE canary; --"
HOSTILE = ['we"ird', "semi;colon", "dash--dash", "with space", "dot.ted", "UpperCase", "ünï_名前",
           INJECTION, "$$x$$", "back\\slash", "tab\tname", "%s%(x)s{}", "sel'ect"]


def _tagged(tag: str) -> list[str]:
    return [f"{name}{tag}" for name in HOSTILE] + [(tag + "_" + "m" * 63)[:63]]


def _canary(pg) -> None:  # type: ignore[no-untyped-def]
    """Objects that an injection would hit: a table `canary` with a row, in the test database."""
    with pg.connect() as conn:
        conn.execute("CREATE TABLE canary (id int); INSERT INTO canary VALUES (42)")
        conn.execute("CREATE TABLE x (id int)")


def _canary_intact(pg) -> None:  # type: ignore[no-untyped-def]
    with pg.connect() as conn:
        assert conn.execute("SELECT id FROM canary").fetchall() == [(42,)]
        assert conn.execute("SELECT to_regclass('public.x') IS NOT NULL").fetchone()[0]


def _dump(plays: list[dict]) -> str:
    return yaml.safe_dump(plays, allow_unicode=True, sort_keys=False)


@covers("hostile_identifiers", "sql_looking_values")
def test_hostile_names_in_every_kind_of_object(tmp_path, pg):
    tag = uuid.uuid4().hex[:4]
    names = _tagged(tag)
    db = f"{pg.dbname}_{INJECTION}"[:63]
    roles = [{"name": n, "login": i % 2 == 0, "comment": INJECTION} for i, n in enumerate(names)]
    roles[1]["member_of"] = [names[0], {"role": names[2], "admin": True}]
    roles[3]["settings"] = {"application_name": INJECTION, "search_path": "erp, public"}
    columns = [{"name": n, "type": "text", "comment": INJECTION} for n in names]
    columns[0] = {"name": names[0], "type": "serial", "primary_key": True}
    tables = [{"name": n, "schema": names[(i + 1) % len(names)], "comment": INJECTION, "owner": names[i],
               "columns": columns, "grants": [{"to": names[-1], "privileges": ["SELECT", "INSERT"]}]}
              for i, n in enumerate(names[:4])]
    tables.append({"name": names[4], "schema": names[5], "columns": columns[:3],
                   "indexes": [{"columns": [names[1], names[2]], "name": names[6]}],
                   "unique": [{"columns": [names[2]], "name": names[7]}],
                   "foreign_keys": [{"columns": [names[0]], "name": names[8],
                                     "references": {"table": names[0], "schema": names[1]}}]})
    play = {"name": INJECTION, "hosts": "dev", "roles": roles, "databases": [{
        "name": db, "comment": INJECTION, "owner": names[0],
        "grants": [{"to": n, "privileges": ["CONNECT"]} for n in names],
        "schemas": [{"name": n, "owner": names[0], "comment": INJECTION,
                     "grants": [{"to": names[-1], "privileges": ["USAGE"]}]} for n in names],
        "tables": tables,
    }]}
    _canary(pg)
    before = snapshot(pg.connect, [pg.dbname])
    targets = load_targets(tmp_path, pg, _dump([play]))
    apply_all(targets)
    assert plan_of(targets) == []
    _canary_intact(pg)
    changes = diff_snapshots(before, snapshot(pg.connect, [pg.dbname]))
    assert set(changes) <= {"roles", "databases", "members", "role_settings", "shdescriptions"}, changes
    for gone, _ in changes.values():
        assert not gone, f"something disappeared: {changes}"
    assert {r[0] for r in changes["roles"][1]} == set(names)
    assert {r[0] for r in changes["databases"][1]} == {db}
    with pg.connect(db) as conn:
        schemas = {r[0] for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname NOT IN "
            "('information_schema', 'public')")}
        assert schemas == set(names)
        found = {(s, t) for s, t in conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY(%s)", (names,))}
        assert found == {(t["schema"], t["name"]) for t in tables}
        cols = {r[0] for r in conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                                           "AND attnum > 0", (psycopg.sql.Identifier(names[1], names[0])
                                                              .as_string(conn),))}
        assert cols == set(names)
        assert conn.execute("SELECT obj_description(%s::regclass)", (psycopg.sql.Identifier(
            names[1], names[0]).as_string(conn),)).fetchone()[0] == INJECTION
        setting = conn.execute("SELECT setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
                               "WHERE r.rolname = %s", (names[3],)).fetchone()[0]
        assert f"application_name={INJECTION}" in setting


@covers("hostile_passwords")
@pytest.mark.parametrize("password", ["it's", 'dq"dq', "back\\slash\\\\", "$$; DROP ROLE x; $$",
                                      "'; ALTER ROLE postgres PASSWORD 'x'; --", "ünïcødé ☃ pässwörd", " lead trail "])
def test_passwords_with_quotes_and_backslashes(tmp_path, pg, password):
    role = unique("pw")
    play = [{"name": "pw", "hosts": "dev", "roles": [{"name": role, "login": True, "password": "{{ pw }}"}],
             "vars": {"pw": "{{ env_pw }}"}}]
    before = snapshot(pg.connect, [pg.dbname])
    (tmp_path / "pw.yaml").write_text(yaml.safe_dump({"env_pw": password}, allow_unicode=True))
    from erpprov.load.project import load_project

    root = write_project(tmp_path, _dump(play), server_vars(pg, password_from_env=False), dedent=False)
    targets = load_project(root / PLAYBOOK, root / "inventory.yaml", environ={},
                           extra_vars={"env_pw": password}).targets
    apply_all(targets)
    assert plan_of(targets) == []  # the stored verifier matches: not reset on every run
    psycopg.connect(host=pg.host, port=pg.port, user=role, password=password, dbname="postgres").close()
    pg.connect("postgres").close()  # the admin password was not touched
    changes = diff_snapshots(before, snapshot(pg.connect, [pg.dbname]))
    assert set(changes) == {"roles"} and {r[0] for r in changes["roles"][1]} == {role}


@covers("sql_looking_values")
@pytest.mark.parametrize("field,value", [
    ("valid_until", INJECTION),
    ("extension_version", "1.6'; DROP TABLE canary; --"),
    ("encoding", "UTF8'; DROP TABLE canary; --"),
    ("locale", "C'; DROP TABLE canary; --"),
    ("lc_collate", "C' TEMPLATE template0; DROP TABLE canary; --"),
    ("role_setting_name", "search_path = public; DROP TABLE canary; --"),
])
def test_sql_looking_values_are_data_or_a_clean_error(tmp_path, pg, field, value):
    role = unique("v")
    db = f"{pg.dbname}_v"
    play: dict = {"name": "values", "hosts": "dev", "roles": [{"name": role}]}
    if field == "valid_until":
        play["roles"][0]["valid_until"] = value
    elif field == "role_setting_name":
        play["roles"][0]["settings"] = {value: "x"}
    elif field == "extension_version":
        play["databases"] = [{"name": db, "extensions": [{"name": "citext", "version": value}]}]
    else:
        play["databases"] = [{"name": db, field: value}]
    _canary(pg)
    before = snapshot(pg.connect, [pg.dbname])
    targets = load_targets(tmp_path, pg, _dump([play]))
    with pytest.raises(ErpprovError):
        apply_all(targets)
    _canary_intact(pg)
    changes = diff_snapshots(before, snapshot(pg.connect, [pg.dbname]))
    for gone, _ in changes.values():
        assert not gone, changes
    # What was created before the failing statement is exactly the declared role and database.
    assert {r[0] for r in changes.get("roles", ((), ()))[1]} <= {role}
    assert {r[0] for r in changes.get("databases", ((), ()))[1]} <= {db}


@covers("invalid_identifiers")
@pytest.mark.parametrize("where", ["role", "database", "schema", "table", "column"])
@pytest.mark.parametrize("name", ["", "x" * 64, "é" * 32, "nul\x00byte"])
def test_invalid_names_are_validation_errors(tmp_path, pg, where, name):
    tables = [{"name": name if where == "table" else "t",
               "columns": [{"name": name if where == "column" else "c", "type": "int"}]}]
    play = {"name": "bad names", "hosts": "dev",
            "roles": [{"name": name if where == "role" else "r_ok"}],
            "databases": [{"name": name if where == "database" else "d_ok",
                           "schemas": [{"name": name if where == "schema" else "s_ok"}], "tables": tables}]}
    with pytest.raises(ErpprovError) as caught:
        load_targets(tmp_path, pg, _dump([play]))
    message = caught.value.message
    assert ("empty" in message or "63 bytes" in message or "NUL" in message), message
    assert caught.value.location is not None and caught.value.location.line is not None


@covers("sql_looking_values")
def test_quoted_search_path_converges(tmp_path, pg):
    role = unique("sp")
    targets = load_targets(tmp_path, pg, _dump([{"name": "sp", "hosts": "dev", "roles": [
        {"name": role, "settings": {"search_path": '"$user", public'}}]}]))
    apply_all(targets)
    assert plan_of(targets) == []


@covers("sql_looking_values")
def test_search_path_quoted_as_the_server_quotes_it_converges(tmp_path, pg):
    # The server quotes a `$` inside a name and reserved keywords, not unreserved ones (key).
    role = unique("sq")
    targets = load_targets(tmp_path, pg, _dump([{"name": "sq", "hosts": "dev", "roles": [
        {"name": role, "settings": {"search_path": 'a$b, "user", "select", key, public'}}]}]))
    apply_all(targets)
    assert plan_of(targets) == []


@covers("sql_looking_values")
def test_comma_in_a_scalar_setting(tmp_path, pg):
    role = unique("sc")
    targets = load_targets(tmp_path, pg, _dump([{"name": "sc", "hosts": "dev", "roles": [
        {"name": role, "settings": {"application_name": "x,y"}}]}]))
    apply_all(targets)
    assert plan_of(targets) == []
    with pg.connect() as conn:
        assert conn.execute("SELECT setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
                            "WHERE r.rolname = %s", (role,)).fetchone()[0] == ["application_name=x,y"]
