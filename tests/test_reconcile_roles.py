"""Roles, memberships, databases, schemas, extensions and privileges against a real server.

Every test ends with the convergence check: apply itself re-plans and fails unless the plan is empty,
and the tests plan once more on their own."""

from __future__ import annotations

import psycopg
import pytest
import yaml

from erpprov.core.actions import Hazard
from erpprov.errors import ErpprovError
from tests.helpers import apply_all, count_round_trips, load_targets, plan_of

FULL = """
- name: roles and privileges
  hosts: dev
  roles:
    - {name: app_readers}
    - name: app_owner
      createdb: true
      comment: owns the ERP schema
    - name: app_web
      login: true
      password: "s3cret'with\\\\quotes"
      connection_limit: 20
      valid_until: "2099-12-31 00:00:00+00"
      settings: {statement_timeout: "30s", search_path: "erp, public"}
      member_of: [app_readers, {role: app_owner, admin: true}]
  databases:
    - name: "{{ db }}"
      owner: app_owner
      comment: the ERP database
      grants:
        - {to: app_web, privileges: [CONNECT, TEMPORARY]}
        - {to: PUBLIC, privileges: []}
      extensions:
        - {name: citext, version: "1.6"}
      schemas:
        - name: erp
          owner: app_owner
          comment: business data
          grants:
            - {to: app_readers, privileges: [USAGE]}
            - {to: app_readers, privileges: [SELECT], tables: ALL}
          default_privileges:
            - {for_role: app_owner, on: tables, to: app_readers, privileges: [SELECT]}
      default_privileges:
        - {for_role: app_owner, on: functions, to: PUBLIC, privileges: []}
"""


def _flags(conn: psycopg.Connection, role: str) -> tuple:
    return conn.execute("SELECT rolcanlogin, rolcreatedb, rolconnlimit FROM pg_roles WHERE rolname = %s",
                        (role,)).fetchone()


@pytest.mark.contrib
def test_full_state_applies_and_converges(tmp_path, pg):
    targets = load_targets(tmp_path, pg, FULL.replace("{{ db }}", pg.dbname + "_full"))
    changed = apply_all(targets)
    assert "role.app_web" in changed and f"database.{pg.dbname}_full" in changed
    assert plan_of(targets) == []
    db = pg.dbname + "_full"
    with pg.connect(db) as conn:
        assert _flags(conn, "app_web") == (True, False, 20)
        assert _flags(conn, "app_owner") == (False, True, -1)
        assert conn.execute("SELECT pg_has_role('app_web', 'app_readers', 'MEMBER')").fetchone()[0]
        assert conn.execute("SELECT has_database_privilege('app_web', current_database(), 'CONNECT')").fetchone()[0]
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'citext'").fetchone()[0] == "1.6"
        # Default privileges reach tables that app_owner creates later.
        conn.execute("SET ROLE app_owner")
        conn.execute("CREATE TABLE erp.later (id int)")
        conn.execute("RESET ROLE")
        assert conn.execute("SELECT has_table_privilege('app_readers', 'erp.later', 'SELECT')").fetchone()[0]
    # PUBLIC lost CONNECT: app_readers (no grant of its own) cannot connect.
    with pg.connect("postgres") as conn:
        assert not conn.execute("SELECT has_database_privilege('app_readers', %s, 'CONNECT')", (db,)).fetchone()[0]
    assert plan_of(targets) == []  # the default privileges already granted what `tables: ALL` asks
    with pg.connect(db) as conn:
        conn.execute("CREATE TABLE erp.by_admin (id int)")  # no default privileges for postgres's tables
    assert plan_of(targets) == [(f"grant.{db}.table.erp.by_admin.app_readers", "create")]
    apply_all(targets)
    assert plan_of(targets) == []


@pytest.mark.contrib
def test_drift_shows_exactly_the_drifted_objects_and_apply_repairs_it(tmp_path, pg):
    db = pg.dbname + "_drift"
    playbook = FULL.replace("{{ db }}", db).replace("member_of: [app_readers, {role: app_owner, admin: true}]",
                                                    "member_of: [app_readers, {role: app_owner, admin: true}]\n"
                                                    "      prune: true")
    targets = load_targets(tmp_path, pg, playbook)
    apply_all(targets)
    with pg.connect(db) as conn:
        conn.execute("REVOKE TEMPORARY ON DATABASE " + f'"{db}"' + " FROM app_web")
        conn.execute("ALTER ROLE app_web NOLOGIN")
        conn.execute("ALTER ROLE app_web PASSWORD 'someone-else'")
        conn.execute("CREATE TABLE erp.extra (id int)")
        conn.execute("GRANT SELECT ON erp.extra TO app_web")
    drift = sorted(plan_of(targets))
    assert drift == sorted([
        (f"grant.{db}.database.app_web", "update"),
        ("role.app_web", "update"),
        (f"grant.{db}.table.erp.extra.app_readers", "create"),
        (f"grant.{db}.table.erp.extra.app_web", "delete"),
    ])
    with pytest.raises(ErpprovError, match="revokes_access"):
        apply_all(targets)
    apply_all(targets, allow=frozenset({Hazard.REVOKES_ACCESS}))
    assert plan_of(targets) == []
    with pg.connect(db) as conn:
        assert _flags(conn, "app_web")[0] is True
        grantees = conn.execute("SELECT array_agg(grantee::regrole::text) FROM pg_class, aclexplode(relacl) "
                                "WHERE oid = 'erp.extra'::regclass").fetchone()[0]
        assert "app_web" not in grantees and "app_readers" in grantees
    psycopg.connect(host=pg.host, port=pg.port, user="app_web", password="s3cret'with\\quotes",
                    dbname=db).close()


def test_unchanged_password_is_ok_and_a_changed_one_is_set_once(tmp_path, pg):
    playbook = """
        - name: p
          hosts: all
          roles:
            - {name: pw_user, login: true, password: "{{ pw }}"}
    """
    first = load_targets(tmp_path, pg, playbook.replace("{{ pw }}", "first"))
    apply_all(first)
    assert plan_of(first) == []
    second = load_targets(tmp_path, pg, playbook.replace("{{ pw }}", "second"))
    assert plan_of(second) == [("role.pw_user", "update")]
    apply_all(second)
    assert plan_of(second) == []
    psycopg.connect(host=pg.host, port=pg.port, user="pw_user", password="second", dbname=pg.dbname).close()


def test_md5_stored_password_is_recognised(tmp_path, pg):
    with pg.connect() as conn:
        conn.execute("SET password_encryption = 'md5'")
        conn.execute("CREATE ROLE md5_user LOGIN PASSWORD 'legacy'")
    targets = load_targets(tmp_path, pg, """
        - name: p
          roles: [{name: md5_user, login: true, password: legacy}]
    """)
    assert plan_of(targets) == []


def test_revoking_from_public_converges(tmp_path, pg):
    targets = load_targets(tmp_path, pg, f"""
        - name: p
          databases:
            - name: {pg.dbname}
              grants: [{{to: PUBLIC, privileges: []}}]
              schemas:
                - name: public
                  grants: [{{to: PUBLIC, privileges: []}}]
              default_privileges:
                - {{on: functions, to: PUBLIC, privileges: []}}
                - {{on: types, to: PUBLIC, privileges: []}}
    """)
    assert len(plan_of(targets)) == 4
    apply_all(targets)
    assert plan_of(targets) == []


def test_all_means_every_privilege_of_the_object_type(tmp_path, pg):
    with pg.connect() as conn:
        conn.execute("CREATE ROLE all_user")
        conn.execute("CREATE TABLE t_all (id int)")
        conn.execute("GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON t_all TO all_user")
        conn.execute(f'GRANT CONNECT, CREATE, TEMPORARY ON DATABASE "{pg.dbname}" TO all_user')
    targets = load_targets(tmp_path, pg, f"""
        - name: p
          databases:
            - name: {pg.dbname}
              grants: [{{to: all_user, privileges: [ALL]}}]
              schemas:
                - name: public
                  grants: [{{to: all_user, privileges: [ALL], tables: [t_all]}}]
    """)
    assert plan_of(targets) == []


def _public_grants(tmp_path, pg, grants: list[dict[str, object]], **database: object) -> list:
    """The targets of a play whose database (``database``: its other keys) grants ``grants`` in
    schema public."""
    play = [{"name": "p", "databases": [{"name": pg.dbname, **database,
                                          "schemas": [{"name": "public", "grants": grants}]}]}]
    return load_targets(tmp_path, pg, yaml.safe_dump(play))


def test_grant_option_and_sequences_and_functions(tmp_path, pg):
    with pg.connect() as conn:
        conn.execute("CREATE ROLE fn_user")
        conn.execute("CREATE SEQUENCE counter")
        conn.execute("CREATE FUNCTION add_one(i integer) RETURNS integer LANGUAGE sql AS 'SELECT i + 1'")
        conn.execute("REVOKE EXECUTE ON FUNCTION add_one(integer) FROM PUBLIC")
    targets = _public_grants(tmp_path, pg, [
        {"to": "fn_user", "privileges": ["USAGE"], "with_grant_option": True},
        {"to": "fn_user", "privileges": ["USAGE", "SELECT"], "sequences": ["counter"]},
        {"to": "fn_user", "privileges": ["EXECUTE"], "functions": ["add_one(int4)"]}])
    assert len(plan_of(targets)) == 3
    apply_all(targets)
    assert plan_of(targets) == []
    with pg.connect() as conn:
        assert conn.execute("SELECT has_function_privilege('fn_user', 'add_one(integer)', 'EXECUTE')").fetchone()[0]
        assert conn.execute("SELECT has_schema_privilege('fn_user', 'public', 'USAGE WITH GRANT OPTION')"
                            ).fetchone()[0]


def test_grant_on_a_missing_object_is_a_clear_error(tmp_path, pg):
    targets = _public_grants(tmp_path, pg, [{"to": "PUBLIC", "privileges": ["SELECT"], "tables": ["ghost"]}])
    with pytest.raises(ErpprovError, match=r"table public\.ghost neither exists"):
        plan_of(targets)


STRANGE = ['we"ird', "with space", "dot.ted", "UpperCase", "naïve-ß", "semi;colon--"]


@pytest.mark.parametrize("name", STRANGE)
def test_identifiers_are_quoted_everywhere(tmp_path, pg, name):
    import yaml

    playbook = yaml.safe_dump([{
        "name": "p",
        "roles": [{"name": name, "login": True, "password": "x'; DROP ROLE postgres; --"}],
        "databases": [{"name": name, "owner": name, "grants": [{"to": name, "privileges": ["CONNECT"]}],
                       "schemas": [{"name": name, "owner": name,
                                    "grants": [{"to": name, "privileges": ["USAGE"]}]}]}],
    }], allow_unicode=True)
    targets = load_targets(tmp_path, pg, playbook)
    apply_all(targets)
    assert plan_of(targets) == []
    with pg.connect("postgres") as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname IN (%s, 'postgres')", (name,)
                            ).fetchone()[0] == 2


def test_prune_roles_drops_matching_undeclared_roles_only_when_allowed(tmp_path, pg):
    with pg.connect() as conn:
        conn.execute("CREATE ROLE temp_old")
        conn.execute("CREATE ROLE keep_me")
        conn.execute("CREATE TABLE owned_by_old (id int)")
        conn.execute("ALTER TABLE owned_by_old OWNER TO temp_old")
    targets = load_targets(tmp_path, pg, """
        - name: p
          prune_roles: ["temp_*"]
          roles: [{name: temp_new}]
    """)
    planned = plan_of(targets)
    assert ("role.temp_old", "delete") in planned and ("role.temp_new", "create") in planned
    assert not any(address == "role.keep_me" for address, _ in planned)
    with pytest.raises(ErpprovError, match="drops_role"):
        apply_all(targets)
    apply_all(targets, allow=frozenset({Hazard.DROPS_ROLE}))
    assert plan_of(targets) == []
    with pg.connect() as conn:
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'owned_by_old'").fetchone()[0]
        assert owner == "postgres"


def test_database_settings_fixed_at_creation_are_reported(tmp_path, pg):
    targets = load_targets(tmp_path, pg, f"""
        - name: p
          databases: [{{name: {pg.dbname}, encoding: LATIN1}}]
    """)
    from erpprov.plan.build import plan_target

    plan = plan_target(targets[0])
    assert plan.actions == []
    assert any("encoding is 'UTF8' but the file says 'LATIN1'" in w for w in plan.warnings)


def test_reading_the_live_state_costs_a_fixed_number_of_queries(tmp_path, pg, monkeypatch):
    from erpprov.plan.build import plan_target

    def playbook(count: int) -> str:
        roles = "\n".join(f"    - {{name: q_role_{i}, login: true, password: p{i}}}" for i in range(count))
        grants = "\n".join(f"        - {{to: q_role_{i}, privileges: [CONNECT]}}" for i in range(count))
        return f"- name: p\n  roles:\n{roles}\n  databases:\n    - name: {pg.dbname}\n      grants:\n{grants}\n"

    counts = []
    for size in (3, 30):
        targets = load_targets(tmp_path, pg, playbook(size))
        apply_all(targets)
        with count_round_trips(monkeypatch) as seen:
            assert plan_target(targets[0]).actions == []
        counts.append(seen.count)
    assert counts[0] == counts[1]


def test_non_superuser_reports_what_it_cannot_compare(tmp_path, pg):
    with pg.connect() as conn:
        conn.execute("CREATE ROLE provisioner LOGIN CREATEROLE CREATEDB PASSWORD 'prov'")
        conn.execute("CREATE ROLE managed_pw LOGIN PASSWORD 'old'")
        conn.execute("GRANT managed_pw TO provisioner WITH ADMIN OPTION")
    targets = load_targets(tmp_path, pg, """
        - name: p
          roles:
            - {name: managed_pw, login: true, password: new}
            - {name: wants_super, superuser: true}
    """, pg_user="provisioner", pg_password="prov")
    from erpprov.plan.build import plan_target

    plan = plan_target(targets[0])
    assert "role.managed_pw: the password cannot be compared (pg_authid is not readable); left as it is " \
        "(update_password: on_create)" in plan.warnings
    assert any("need a superuser" in w for w in plan.warnings)
    apply_all(targets)
    with pg.connect() as conn:
        assert not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'wants_super'").fetchone()[0]


def test_pruned_role_loses_what_new_tables_would_give_it_in_the_same_apply(tmp_path, pg):
    """A default privilege hands a pruned role SELECT on every new table; the table created in
    this apply must be revoked in this apply too, or the next plan shows it (no convergence)."""
    with pg.connect() as conn:
        conn.execute("CREATE ROLE pr_reader")
        conn.execute("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO pr_reader")
    targets = load_targets(tmp_path, pg, f"""
        - name: p
          roles: [{{name: pr_reader, prune: true}}]
          databases:
            - name: {pg.dbname}
              tables:
                - name: pr_new
                  columns: [{{name: id, type: integer}}]
    """)
    assert f"grant.{pg.dbname}.table.public.pr_new.pr_reader" in dict(plan_of(targets))
    apply_all(targets, allow=frozenset({Hazard.REVOKES_ACCESS}))
    assert plan_of(targets) == []
    with pg.connect() as conn:
        assert not conn.execute("SELECT has_table_privilege('pr_reader', 'pr_new', 'SELECT')").fetchone()[0]


def test_a_grant_on_a_function_the_same_apply_creates_converges(tmp_path, pg):
    """The grant's spelling (`int`, no argument names) is matched to the declared function's
    canonical signature, although no live function resolves it yet."""
    with pg.connect() as conn:
        conn.execute("CREATE ROLE new_fn_user")
    targets = _public_grants(
        tmp_path, pg, [{"to": "new_fn_user", "privileges": ["EXECUTE"], "functions": ["add_two(int)"]}],
        functions=[{"name": "add_two", "arguments": [{"name": "i", "type": "int"}], "returns": "int",
                    "body": "SELECT i + 2"}])
    apply_all(targets)
    assert plan_of(targets) == []
    with pg.connect() as conn:
        assert conn.execute("SELECT has_function_privilege('new_fn_user', 'add_two(integer)', 'EXECUTE')"
                            ).fetchone() == (True,)


def test_a_grant_on_a_function_of_a_type_the_server_lacks_is_a_clear_error(tmp_path, pg):
    targets = _public_grants(tmp_path, pg, [{"to": "PUBLIC", "privileges": ["EXECUTE"],
                                              "functions": ["lower(no_such_type)"]}])
    with pytest.raises(ErpprovError, match=r"function public\.lower\(no_such_type\) does not exist"):
        plan_of(targets)


def test_a_role_nobody_creates_stops_apply_before_anything_changes(tmp_path, pg):
    """The database and the role would be created first, then the table's owner would fail: apply
    refuses up front instead, naming each unknown role and where; the plan warns."""
    new_db = f"{pg.dbname}_owned"
    targets = load_targets(tmp_path, pg, f"""
        - name: p
          roles: [{{name: real_owner}}]
          databases:
            - name: {new_db}
              owner: real_owner
              grants: [{{to: typo_reader, privileges: [CONNECT]}}]
              tables:
                - {{name: t, owner: ghost_owner, columns: [{{name: id, type: integer}}]}}
    """)
    from erpprov.plan.build import plan_target

    warnings = plan_target(targets[0]).warnings
    assert any("typo_reader" in w and "ghost_owner" in w for w in warnings), warnings
    with pytest.raises(ErpprovError) as caught:
        apply_all(targets)
    message = str(caught.value)
    assert f"ghost_owner (no such role), named by database {new_db}, table public.t (owner)" in message, message
    assert f"typo_reader (no such role), named by database {new_db} (grant)" in message, message
    assert "real_owner" not in message and "nothing was changed" in message
    with pg.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (new_db,)).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'real_owner'").fetchone() == (0,)


def test_a_role_an_earlier_play_creates_may_be_named_by_a_later_one(tmp_path, pg):
    targets = load_targets(tmp_path, pg, f"""
        - name: roles
          roles: [{{name: early_role}}]
        - name: grants
          databases:
            - name: {pg.dbname}
              grants: [{{to: early_role, privileges: [CONNECT]}}]
    """)
    apply_all(targets)
    assert plan_of(targets) == []


def test_grants_nobody_declared_on_declared_objects_are_listed_as_unmanaged(tmp_path, pg):
    """A grant's list is exact for its grantee and leaves the others alone, so a GRANT or a REVOKE
    of a default made by hand on an object the file declares changes nothing in the plan's actions:
    it is listed as unmanaged instead of being invisible. What PostgreSQL grants unasked (the
    owner's, PUBLIC's EXECUTE, USAGE on the public schema), or default privileges the file declares,
    is not listed; a role that prunes gets a revoke; an undeclared object is listed itself."""
    from erpprov.plan.build import plan_target

    playbook = f"""
        - name: p
          roles: [{{name: ug_app}}, {{name: ug_pruned, prune: true}}]
          databases:
            - name: {pg.dbname}
              grants: [{{to: ug_app, privileges: [CONNECT]}}]
              default_privileges:
                - {{on: tables, to: ug_app, privileges: [SELECT]}}
              schemas:
                - name: public
                  grants: [{{to: ug_app, privileges: [USAGE]}}]
              tables:
                - name: orders
                  columns: [{{name: id, type: integer}}]
                - name: audit
                  columns: [{{name: id, type: integer}}]
                  grants: [{{to: ug_app, privileges: [INSERT]}}]
              functions:
                - {{name: total, returns: integer, body: SELECT 1}}
    """
    apply_all(load_targets(tmp_path / "first", pg, playbook))
    # created once the default privileges exist: its SELECT for ug_app comes with them, not by hand
    later = "\n                - {name: later, columns: [{name: id, type: integer}]}"
    targets = load_targets(tmp_path, pg, playbook.replace("tables:", "tables:" + later))
    apply_all(targets)
    with pg.connect() as conn:
        assert conn.execute("SELECT has_table_privilege('ug_app', 'later', 'SELECT')").fetchone() == (True,)
    assert {str(a) for a in plan_target(targets[0]).unmanaged if a.kind == "grant"} == set()
    with pg.connect() as conn:
        conn.execute("DROP ROLE IF EXISTS ug_snoop; CREATE ROLE ug_snoop")
        conn.execute("GRANT SELECT ON orders TO ug_snoop; GRANT USAGE ON SCHEMA public TO ug_snoop")
        conn.execute("REVOKE EXECUTE ON FUNCTION total() FROM PUBLIC; REVOKE SELECT ON audit FROM ug_app")
        conn.execute(f'REVOKE CONNECT ON DATABASE "{pg.dbname}" FROM PUBLIC')
        conn.execute("CREATE TABLE by_hand (id int); GRANT SELECT ON by_hand TO ug_snoop; GRANT SELECT ON orders TO "
                     "ug_pruned")
    try:
        plan = plan_target(targets[0])
        db = pg.dbname
        assert {str(a) for a in plan.unmanaged if a.kind == "grant"} == {
            f"grant.{db}.table.public.orders.ug_snoop", f"grant.{db}.schema.public.ug_snoop",
            f"grant.{db}.function.public.total().PUBLIC", f"grant.{db}.database.PUBLIC"}
        assert f"table.{db}.public.by_hand" in {str(a) for a in plan.unmanaged}
        # audit's grant to ug_app is declared (exact): no SELECT there is its business, not drift
        assert [(str(a.address), a.op.value) for a in plan.actions] == [
            (f"grant.{db}.table.public.orders.ug_pruned", "delete")]
        apply_all(targets, allow=frozenset({Hazard.REVOKES_ACCESS}))
        assert plan_of(targets) == []
    finally:
        with pg.connect() as conn:
            conn.execute("DROP TABLE IF EXISTS by_hand; DROP OWNED BY ug_snoop; DROP ROLE ug_snoop")
