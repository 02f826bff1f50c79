"""Input only the server can judge (an extension it has no package for, a template database that is
not there, a role nobody creates): plan and apply stop with erpprov's own one error, saying which
entry is wrong, and nothing else on stderr (no traceback, no library's warning before it)."""

from __future__ import annotations

import pytest
import yaml

from tests.helpers import assert_clean_error, assert_converged, erpprov, pg_env, server_vars, write_project

TABLE = {"name": "t", "columns": [{"name": "id", "type": "integer"}]}
CASES = {
    "extension": ({"extensions": [{"name": "no_such_extension"}], "tables": [TABLE]},
                  ["the server has no extension no_such_extension", "install the package"]),
    "template": ({"template": "no_such_template", "tables": [TABLE]},
                 ["its template no_such_template cannot be read", "`template`"]),
    "owner": ({"owner": "no_such_owner"}, ["no_such_owner (no such role)", "(owner)"]),
    # a play of types alone has no table build to name it: it was a traceback from the type build
    "domain": ({"types": [{"name": "d", "base_type": "no_such_base"}]},
               ['declared type (CREATE DOMAIN "public"."d" AS no_such_base)', 'type "no_such_base" does not exist']),
    # added after the function stand-ins it calls, and still named (a build of types alone ignored it)
    "domain default": ({"types": [{"name": "d", "base_type": "int", "default": "f(1)"}],
                        "functions": [{"name": "f", "returns": "int", "body": "SELECT 1"}]},
                       ['declared type (ALTER DOMAIN "public"."d" SET DEFAULT (f(1)))', "f(integer) does not exist"]),
    # the stand-in of a function over a type of the same apply is there: a wrong call is still named
    "wrong call": ({"types": [{"name": "mood", "enum": ["ok"]}],
                    "functions": [{"name": "label", "arguments": [{"name": "m", "type": "mood"}], "returns": "text",
                                   "body": "SELECT m::text"}],
                    "tables": [{"name": "t", "columns": [{"name": "x", "type": "text", "default": "label(1)"}]}]},
                   ["column public.t.x (text)", "function label(integer) does not exist"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_server_input_is_one_clean_error(tmp_path, pg, case):
    database, fragments = CASES[case]
    play = [{"name": "p", "hosts": "dev", "databases": [{"name": f"{pg.dbname}_new", **database}]}]
    project = write_project(tmp_path, yaml.safe_dump(play), server_vars(pg))
    for command in ("plan", "apply") if case != "owner" else ("apply",):  # a plan only warns of a role
        run = erpprov(project, command, env=pg_env(pg))
        assert_clean_error(run, *fragments)
        assert run.stderr.count("error:") == 1 and run.stderr.startswith("error:"), str(run)
    with pg.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                            (f"{pg.dbname}_new",)).fetchone() == (0,), "apply changed something"


def test_a_database_the_failed_apply_created_is_dropped_again(tmp_path, pg):
    """CREATE DATABASE cannot share the transaction of what goes into the database: when that
    fails (here a view over a table nobody creates, which only the apply finds out), the new,
    empty database is dropped again instead of outliving the failed apply."""
    new_db = f"{pg.dbname}_new"
    play = [{"name": "p", "hosts": "dev", "databases": [{"name": new_db, "views": [
        {"name": "v", "query": "SELECT * FROM no_such_table"}]}]}]
    project = write_project(tmp_path, yaml.safe_dump(play), server_vars(pg))
    run = erpprov(project, "apply", env=pg_env(pg))
    assert_clean_error(run, 'relation "no_such_table" does not exist')
    assert f"undone: [localhost] database {new_db}" in run.stdout, str(run)
    assert "changed=0" in run.stdout, str(run)  # the recap counts only what stays
    with pg.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (new_db,)).fetchone() == (0,)


def _roles(pg, *names: str) -> dict[str, int]:
    """Which of ``names`` exist, with their connection limit."""
    with pg.connect() as conn:
        return dict(conn.execute("SELECT rolname, rolconnlimit FROM pg_roles WHERE rolname = ANY(%s)",
                                 (list(names),)).fetchall())


def test_roles_the_failed_apply_created_are_dropped_again(tmp_path, pg):
    """Roles commit on their own, before any database's changes: when those fail, a role this apply
    created goes again (with its memberships), and the recap counts only what stays. A role that was
    there before keeps what the failed apply altered: its old state (a password) is not known."""
    new_db, new_role, old_role = f"{pg.dbname}_new", f"{pg.dbname}_app", f"{pg.dbname}_old"
    with pg.connect() as conn:
        conn.execute(f'CREATE ROLE "{old_role}"')
    view = {"name": "v", "query": "SELECT * FROM no_such_table"}
    play = [{"name": "p", "hosts": "dev",
             "roles": [{"name": new_role, "member_of": [old_role]}, {"name": old_role, "connection_limit": 5}],
             "databases": [{"name": new_db, "owner": new_role, "views": [view]}]}]
    project = write_project(tmp_path, yaml.safe_dump(play), server_vars(pg))
    run = erpprov(project, "apply", env=pg_env(pg))
    assert_clean_error(run, 'relation "no_such_table" does not exist')
    for undone in (f"database {new_db}", f"role {new_role}", f"membership {new_role}.{old_role}"):
        assert f"undone: [localhost] {undone}\n" in run.stdout, str(run)
    assert f"role {old_role}" not in run.stdout.split("undone:", 1)[1], str(run)
    assert "changed=1 " in run.stdout, str(run)  # the ALTER ROLE, committed and kept
    assert _roles(pg, new_role, old_role) == {old_role: 5}
    with pg.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (new_db,)).fetchone() == (0,)
    view["query"] = "SELECT 1 AS one"
    project = write_project(tmp_path, yaml.safe_dump(play), server_vars(pg))
    assert erpprov(project, "apply", env=pg_env(pg)).returncode == 0
    assert_converged(project, pg_env(pg))


def test_a_created_role_a_committed_database_uses_stays(tmp_path, pg):
    """A role that an earlier database's committed transaction gave privileges cannot be dropped
    (DROP ROLE refuses): it stays, and the error reported is still the one that failed the apply."""
    new_db, new_role = f"{pg.dbname}_new", f"{pg.dbname}_reader"  # the test's database runs first
    table = {"name": "t", "columns": [{"name": "id", "type": "integer"}],
             "grants": [{"to": new_role, "privileges": ["SELECT"]}]}
    view = {"name": "v", "query": "SELECT * FROM no_such_table"}
    play = [{"name": "p", "hosts": "dev", "roles": [{"name": new_role}],
             "databases": [{"name": pg.dbname, "tables": [table]}, {"name": new_db, "views": [view]}]}]
    project = write_project(tmp_path, yaml.safe_dump(play), server_vars(pg))
    run = erpprov(project, "apply", env=pg_env(pg))
    assert_clean_error(run, f'{new_db}.public.v: relation "no_such_table" does not exist')
    assert f"undone: [localhost] database {new_db}\n" in run.stdout, str(run)
    assert f"undone: [localhost] role {new_role}" not in run.stdout, str(run)
    assert f"role.{new_role}: created by this apply and kept, as it could not be dropped again: role " \
           f'"{new_role}" cannot be dropped because some objects depend on it' in run.stdout + run.stderr, str(run)
    assert _roles(pg, new_role) == {new_role: -1}
    view["query"] = "SELECT 1 AS one"
    project = write_project(tmp_path, yaml.safe_dump(play), server_vars(pg))
    assert erpprov(project, "apply", env=pg_env(pg)).returncode == 0
    assert_converged(project, pg_env(pg))


def test_roles_go_again_when_a_cluster_wide_statement_fails_after_them(tmp_path, pg):
    """The failure need not be in a database's transaction: here CREATE DATABASE, which runs alone
    after the roles committed, finds its template in use (a session the test holds open)."""
    new_db, new_role = f"{pg.dbname}_new", f"{pg.dbname}_app"
    play = [{"name": "p", "hosts": "dev", "roles": [{"name": new_role}],
             "databases": [{"name": new_db, "owner": new_role, "template": pg.dbname}]}]
    project = write_project(tmp_path, yaml.safe_dump(play), server_vars(pg))
    with pg.connect():
        run = erpprov(project, "apply", env=pg_env(pg))
    assert_clean_error(run, f'source database "{pg.dbname}" is being accessed by other users')
    assert f"undone: [localhost] role {new_role}\n" in run.stdout and "changed=0 " in run.stdout, str(run)
    assert _roles(pg, new_role) == {}
    assert erpprov(project, "apply", env=pg_env(pg)).returncode == 0
    assert_converged(project, pg_env(pg))
