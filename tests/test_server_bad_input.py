"""Input only the server can judge (an extension it has no package for, a template database that is
not there, a role nobody creates): plan and apply stop with erpprov's own one error, saying which
entry is wrong, and nothing else on stderr (no traceback, no library's warning before it)."""

from __future__ import annotations

import pytest
import yaml

from tests.helpers import assert_clean_error, erpprov, pg_env, server_vars, write_project

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
