"""Generated role/grant states: apply converges in one run, and apply(A) then apply(B) leaves
exactly B in the managed scope (roles named hyp_*, which the play prunes)."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erpprov.core.actions import Hazard
from tests.helpers import apply_all, load_targets, plan_of

ROLES = ["hyp_a", "hyp_b", "hyp_c", "hyp_d"]
DB_PRIVS = ["CONNECT", "CREATE", "TEMPORARY"]
SCHEMA_PRIVS = ["USAGE", "CREATE"]
TABLE_PRIVS = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"]


def subset(items: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(items), unique=True).map(sorted) if items else st.just([])


@st.composite
def desired_states(draw: st.DrawFn) -> dict:
    names = draw(st.lists(st.sampled_from(ROLES), unique=True, min_size=1))
    roles = []
    for name in names:
        role = {"name": name, "prune": True, "login": draw(st.booleans()), "createdb": draw(st.booleans()),
                "inherit": draw(st.booleans()), "connection_limit": draw(st.sampled_from([-1, 3]))}
        if draw(st.booleans()):
            role["password"] = draw(st.sampled_from(["pw-one", "pw'two\\", "pässwörd"]))
        others = [n for n in names if n < name]  # members of earlier roles only: no cycles
        role["member_of"] = [{"role": r, "admin": draw(st.booleans())} for r in draw(subset(others))]
        roles.append(role)
    grantees = st.sampled_from(names)

    def grants(privileges: list[str]) -> list[dict]:
        chosen = draw(st.lists(grantees, unique=True, max_size=len(names)))
        return [{"to": g, "privileges": draw(subset(privileges)), "with_grant_option": draw(st.booleans())}
                for g in chosen]

    return {"roles": roles, "db_grants": grants(DB_PRIVS), "schema_grants": grants(SCHEMA_PRIVS),
            "table_grants": grants(TABLE_PRIVS)}


def playbook(state: dict, dbname: str) -> str:
    return yaml.safe_dump([{
        "name": "generated", "hosts": "all", "prune_roles": ["hyp_*"], "roles": state["roles"],
        "databases": [{
            "name": dbname, "grants": state["db_grants"],
            "schemas": [{"name": "hs", "grants": state["schema_grants"]}],
            "tables": [{"name": "ht", "schema": "hs", "columns": [{"name": "id", "type": "int"}],
                        "grants": state["table_grants"]}],
        }],
    }], allow_unicode=True)


def live_scope(pg) -> dict:  # type: ignore[no-untyped-def]
    """The managed scope as the server holds it, in the playbook's terms."""
    with pg.connect() as conn:
        roles = {}
        for name, login, createdb, inherit, limit in conn.execute(
                "SELECT rolname, rolcanlogin, rolcreatedb, rolinherit, rolconnlimit FROM pg_roles "
                "WHERE rolname LIKE 'hyp\\_%' ORDER BY 1"):
            roles[name] = {"login": login, "createdb": createdb, "inherit": inherit, "connection_limit": limit}
        members = {(m, r, admin) for m, r, admin in conn.execute(
            "SELECT m.rolname, g.rolname, am.admin_option FROM pg_auth_members am JOIN pg_roles m ON m.oid = "
            "am.member JOIN pg_roles g ON g.oid = am.roleid WHERE m.rolname LIKE 'hyp\\_%'")}
        acl = {}
        for kind, query in (
            ("db", "SELECT r.rolname, a.privilege_type, a.is_grantable FROM pg_database d, "
                   "aclexplode(d.datacl) a JOIN pg_roles r ON r.oid = a.grantee "
                   "WHERE d.datname = current_database() AND r.rolname LIKE 'hyp\\_%'"),
            ("schema", "SELECT r.rolname, a.privilege_type, a.is_grantable FROM pg_namespace n, "
                       "aclexplode(n.nspacl) a JOIN pg_roles r ON r.oid = a.grantee "
                       "WHERE n.nspname = 'hs' AND r.rolname LIKE 'hyp\\_%'"),
            ("table", "SELECT r.rolname, a.privilege_type, a.is_grantable FROM pg_class c, "
                      "aclexplode(c.relacl) a JOIN pg_roles r ON r.oid = a.grantee "
                      "WHERE c.oid = 'hs.ht'::regclass AND r.rolname LIKE 'hyp\\_%'"),
        ):
            acl[kind] = set(conn.execute(query).fetchall())
    return {"roles": roles, "members": members, "acl": acl}


def expected_scope(state: dict) -> dict:
    roles = {r["name"]: {k: r[k] for k in ("login", "createdb", "inherit", "connection_limit")}
             for r in state["roles"]}
    members = {(r["name"], m["role"], m["admin"]) for r in state["roles"] for m in r["member_of"]}
    acl = {kind: {(g["to"], p, g["with_grant_option"]) for g in state[f"{kind}_grants"] for p in g["privileges"]}
           for kind in ("db", "schema", "table")}
    return {"roles": roles, "members": members, "acl": acl}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=desired_states(), second=desired_states())
def test_generated_states_converge_and_a_second_state_replaces_the_first(tmp_path, pg, first, second):
    allow = frozenset(Hazard)
    for state in (first, second):
        targets = load_targets(tmp_path, pg, playbook(state, pg.dbname))
        apply_all(targets, allow=allow)  # apply re-plans itself and fails unless the plan is empty
        assert plan_of(targets) == []
        assert live_scope(pg) == expected_scope(state)
