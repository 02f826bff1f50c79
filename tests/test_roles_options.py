"""Role, database and default-privilege options that no test had applied: role state: absent,
createrole, valid_until: infinity, membership inherit/set; database prune, connection_limit,
lc_ctype, template, extension schema; default privileges on sequences and on schemas.

One playbook declares them all and one `erpprov apply` makes them so: the assertions read the
server's catalogs, then a fresh plan must say nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import yaml

from tests.helpers import assert_clean_error, assert_converged, erpprov, pg_env, server_vars, write_project


@pytest.mark.contrib
def test_role_and_database_options_apply_and_converge(tmp_path: Any, pg: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    creator, gone, tmpl = f"creator_{tag}", f"gone_{tag}", f"{pg.dbname}_tmpl"
    c_db, t_db = f"{pg.dbname}_c", f"{pg.dbname}_t"
    with pg.connect("postgres") as admin:
        admin.execute(f'CREATE ROLE "{gone}"')
        admin.execute(f'CREATE DATABASE "{tmpl}"')
    with pg.connect(tmpl) as conn:  # what every database made from the template starts with
        conn.execute("CREATE TABLE seeded (id int); INSERT INTO seeded VALUES (1), (2)")
    with pg.connect() as conn:  # left over in the pruned database
        conn.execute("CREATE SCHEMA junk; CREATE TABLE junk.old (id int); CREATE TABLE public.legacy (id int)")

    play = [{"name": "p", "hosts": "dev",
             "roles": [{"name": creator, "createrole": True, "login": True, "valid_until": "infinity"},
                       {"name": gone, "state": "absent"}],
             "databases": [
                 {"name": c_db, "template": "template0", "lc_ctype": "C", "connection_limit": 7,
                  "schemas": [{"name": "extras"}],
                  "extensions": [{"name": "pgcrypto", "schema": "extras"}]},
                 {"name": t_db, "template": tmpl},
                 {"name": pg.dbname, "prune": True,
                  "schemas": [{"name": "public"},
                              {"name": "keep", "default_privileges": [
                                  {"on": "sequences", "to": creator, "privileges": ["USAGE"]}]}],
                  "tables": [{"name": "t", "schema": "keep", "columns": [{"name": "id", "type": "integer"}]}],
                  "default_privileges": [{"on": "schemas", "to": creator, "privileges": ["USAGE"]}]}]}]
    root = write_project(tmp_path, yaml.safe_dump(play), server_vars(pg))
    env = pg_env(pg)

    planned = erpprov(root, "plan", env=env, mem=None)
    assert planned.returncode == 0, str(planned)
    for line in (f"- role.{gone}  [drops_role]", f"- schema.{pg.dbname}.junk  [deletes_data]",
                 f"- table.{pg.dbname}.public.legacy  [deletes_data]"):
        assert line in planned.stdout, str(planned)
    refused = erpprov(root, "apply", "--allow-hazard", "drops_role", env=env, mem=None)
    assert_clean_error(refused, "deletes_data")
    applied = erpprov(root, "apply", "--allow-hazard", "drops_role", "--allow-hazard", "deletes_data",
                      env=env, mem=None)
    assert applied.returncode == 0, str(applied)

    with pg.connect("postgres") as admin:
        assert admin.execute("SELECT rolcreaterole, rolcanlogin, rolvaliduntil = 'infinity' FROM pg_roles "
                             "WHERE rolname = %s", (creator,)).fetchone() == (True, True, True)
        assert admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (gone,)).fetchone()[0] == 0
        assert admin.execute("SELECT datconnlimit, datctype FROM pg_database WHERE datname = %s",
                             (c_db,)).fetchone() == (7, "C")
    with pg.connect(c_db) as conn:
        assert conn.execute("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pgcrypto'"
                            ).fetchone() == ("extras",)
        assert conn.execute("SELECT extras.digest('x', 'sha256') IS NOT NULL").fetchone() == (True,)
    with pg.connect(t_db) as conn:
        assert conn.execute("SELECT count(*) FROM seeded").fetchone()[0] == 2  # copied from the template
    with pg.connect() as conn:
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_'")}
        assert "junk" not in schemas and {"public", "keep"} <= schemas
        assert conn.execute("SELECT to_regclass('public.legacy'), to_regclass('keep.t') IS NOT NULL"
                            ).fetchone() == (None, True)
        # The default privileges take effect on objects created later by the admin user.
        conn.execute("CREATE SEQUENCE keep.later_seq; CREATE SCHEMA later_schema")
        assert conn.execute("SELECT has_sequence_privilege(%s, 'keep.later_seq', 'USAGE'), "
                            "has_sequence_privilege(%s, 'keep.later_seq', 'UPDATE'), "
                            "has_schema_privilege(%s, 'later_schema', 'USAGE'), "
                            "has_schema_privilege(%s, 'later_schema', 'CREATE')",
                            (creator,) * 4).fetchone() == (True, False, True, False)
        conn.execute("DROP SCHEMA later_schema; DROP SEQUENCE keep.later_seq")
    assert_converged(root, env)


def _server_major(pg: Any) -> int:
    with pg.connect("postgres") as conn:
        return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000


def test_membership_inherit_and_set(tmp_path: Any, pg: Any) -> None:
    if _server_major(pg) < 16:
        pytest.skip("membership inherit/set are PostgreSQL 16 options; the test cluster is older")
    tag = uuid.uuid4().hex[:8]
    group, member = f"grp_{tag}", f"mem_{tag}"
    play = [{"name": "p", "hosts": "dev", "roles": [
        {"name": group},
        {"name": member, "member_of": [{"role": group, "inherit": False, "set": False}]}]}]
    root = write_project(tmp_path, yaml.safe_dump(play), server_vars(pg))
    env = pg_env(pg)
    applied = erpprov(root, "apply", env=env, mem=None)
    assert applied.returncode == 0, str(applied)
    with pg.connect("postgres") as admin:
        assert admin.execute("SELECT inherit_option, set_option FROM pg_auth_members WHERE roleid = %s::regrole "
                             "AND member = %s::regrole", (group, member)).fetchone() == (False, False)
    assert_converged(root, env)
