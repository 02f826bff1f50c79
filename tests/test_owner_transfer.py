"""Changing the owner of an existing schema, table or database together with grants converges in
one apply: ALTER ... OWNER TO rewrites the ACL (the old owner's entries become the new owner's, a
NULL ACL stays NULL and so follows the new owner), and the plan must expect exactly that."""

from __future__ import annotations

import psycopg
import pytest

from tests.helpers import apply_all, load_targets, plan_of

ROLES = "[{name: ot_a}, {name: ot_b}, {name: ot_c}]"

# What each kind's playbook grants after the transfer: the new owner keeps less than everything,
# the old owner keeps one privilege, a third role keeps (or, with a default ACL, gets) one.
SCHEMA_PLAY = """
- name: p
  roles: {roles}
  databases:
    - name: {db}
      schemas:
        - name: s
          owner: {owner}
          grants: {grants}
"""
SCHEMA_GRANTS = """
            - {to: ot_b, privileges: [USAGE]}
            - {to: ot_a, privileges: [USAGE]}
            - {to: ot_c, privileges: [USAGE]}"""

TABLE_PLAY = """
- name: p
  roles: {roles}
  databases:
    - name: {db}
      schemas:
        - name: public
          grants: {sequence_grants}
      tables:
        - name: t
          owner: {owner}
          columns: [{{name: id, type: serial, primary_key: true}}]
          grants: {grants}
"""
TABLE_GRANTS = """
            - {to: ot_b, privileges: [SELECT, INSERT]}
            - {to: ot_a, privileges: [SELECT]}
            - {to: ot_c, privileges: [SELECT]}"""
# ALTER TABLE ... OWNER TO carries the serial column's sequence along, with its ACL.
SEQUENCE_GRANTS = """
            - {to: ot_b, privileges: [USAGE], sequences: ALL}"""

DATABASE_PLAY = """
- name: p
  roles: {roles}
  databases:
    - name: {db}
      owner: {owner}
      grants: {grants}
"""
DATABASE_GRANTS = """
        - {to: ot_b, privileges: [CONNECT, TEMPORARY]}
        - {to: ot_a, privileges: [CONNECT]}
        - {to: ot_c, privileges: [CONNECT]}"""

ACL_QUERY = {
    "schema": "SELECT nspacl FROM pg_namespace WHERE nspname = 's'",
    "table": "SELECT relacl FROM pg_class WHERE oid = 'public.t'::regclass",
    "sequence": "SELECT relacl FROM pg_class WHERE oid = 'public.t_id_seq'::regclass",
    "database": "SELECT datacl FROM pg_database WHERE datname = current_database()",
}


def _acl(conn: psycopg.Connection, kind: str) -> set[tuple[str, str]]:
    """(grantee, privilege) pairs of the object's ACL as stored."""
    return {(grantee, privilege) for grantee, privilege in conn.execute(
        f"SELECT coalesce(r.rolname, 'PUBLIC'), a.privilege_type FROM ({ACL_QUERY[kind]}) o(acl), "
        "aclexplode(o.acl) a LEFT JOIN pg_roles r ON r.oid = a.grantee")}


def _create_roles(pg) -> None:  # type: ignore[no-untyped-def]
    with pg.connect() as conn:
        for role in ("ot_a", "ot_b", "ot_c"):
            conn.execute(f"CREATE ROLE {role}")


@pytest.mark.parametrize("acl", ["explicit", "default"])
def test_schema_owner_transfer_with_grants_converges(tmp_path, pg, acl):
    _create_roles(pg)
    with pg.connect() as conn:
        conn.execute("CREATE SCHEMA s AUTHORIZATION ot_a")
        if acl == "explicit":
            conn.execute("GRANT USAGE ON SCHEMA s TO ot_c")
    targets = load_targets(tmp_path, pg, SCHEMA_PLAY.format(roles=ROLES, db=pg.dbname, owner="ot_b",
                                                            grants=SCHEMA_GRANTS))
    db = pg.dbname
    expected = {(f"schema.{db}.s", "update"),
                (f"grant.{db}.schema.s.ot_b", "update"),  # it receives ot_a's USAGE and CREATE: CREATE goes
                (f"grant.{db}.schema.s.ot_a", "create")}  # its entries moved to ot_b
    if acl == "default":
        expected.add((f"grant.{db}.schema.s.ot_c", "create"))
    assert set(plan_of(targets)) == expected
    apply_all(targets)
    assert plan_of(targets) == []
    with pg.connect() as conn:
        assert conn.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 's'").fetchone()[0] \
            == "ot_b"
        assert _acl(conn, "schema") == {("ot_b", "USAGE"), ("ot_a", "USAGE"), ("ot_c", "USAGE")}


@pytest.mark.parametrize("acl", ["explicit", "default"])
def test_table_owner_transfer_with_grants_converges(tmp_path, pg, acl):
    _create_roles(pg)
    db = pg.dbname
    apply_all(load_targets(tmp_path, pg, TABLE_PLAY.format(roles=ROLES, db=db, owner="ot_a", sequence_grants="[]",
                                                           grants="[]")))
    with pg.connect() as conn:
        assert conn.execute("SELECT relacl FROM pg_class WHERE oid = 't'::regclass").fetchone()[0] is None
        if acl == "explicit":
            conn.execute("GRANT SELECT ON t TO ot_c")
            conn.execute("GRANT USAGE ON SEQUENCE t_id_seq TO ot_c")
    targets = load_targets(tmp_path, pg, TABLE_PLAY.format(roles=ROLES, db=db, owner="ot_b",
                                                           sequence_grants=SEQUENCE_GRANTS, grants=TABLE_GRANTS))
    expected = {(f"table.{db}.public.t", "update"),
                (f"grant.{db}.table.public.t.ot_b", "update"),
                (f"grant.{db}.table.public.t.ot_a", "create"),
                (f"grant.{db}.sequence.public.t_id_seq.ot_b", "update")}
    if acl == "default":
        expected.add((f"grant.{db}.table.public.t.ot_c", "create"))
    assert set(plan_of(targets)) == expected
    apply_all(targets)
    assert plan_of(targets) == []
    with pg.connect() as conn:
        owners = conn.execute("SELECT relowner::regrole::text FROM pg_class "
                              "WHERE oid IN ('t'::regclass, 't_id_seq'::regclass)").fetchall()
        assert owners == [("ot_b",), ("ot_b",)]
        assert _acl(conn, "table") == {("ot_b", "SELECT"), ("ot_b", "INSERT"), ("ot_a", "SELECT"),
                                       ("ot_c", "SELECT")}
        assert _acl(conn, "sequence") == {("ot_b", "USAGE")} | ({("ot_c", "USAGE")} if acl == "explicit" else set())


@pytest.mark.parametrize("acl", ["explicit", "default"])
def test_database_owner_transfer_with_grants_converges(tmp_path, pg, acl):
    _create_roles(pg)
    db = pg.dbname + "_ot"
    with pg.connect() as conn:
        conn.execute(f'CREATE DATABASE "{db}" OWNER ot_a')
        if acl == "explicit":
            conn.execute(f'GRANT CONNECT ON DATABASE "{db}" TO ot_c')
    targets = load_targets(tmp_path, pg, DATABASE_PLAY.format(roles=ROLES, db=db, owner="ot_b",
                                                              grants=DATABASE_GRANTS))
    expected = {(f"database.{db}", "update"),
                (f"grant.{db}.database.ot_b", "update"),  # CREATE, received from ot_a, goes
                (f"grant.{db}.database.ot_a", "create")}
    if acl == "default":
        expected.add((f"grant.{db}.database.ot_c", "create"))
    assert set(plan_of(targets)) == expected
    apply_all(targets)
    assert plan_of(targets) == []
    with pg.connect(db) as conn:
        assert conn.execute("SELECT datdba::regrole::text FROM pg_database WHERE datname = current_database()"
                            ).fetchone()[0] == "ot_b"
        assert _acl(conn, "database") == {("PUBLIC", "CONNECT"), ("PUBLIC", "TEMPORARY"), ("ot_b", "CONNECT"),
                                          ("ot_b", "TEMPORARY"), ("ot_a", "CONNECT"), ("ot_c", "CONNECT")}


def test_new_owner_granted_everything_needs_no_grant_action(tmp_path, pg):
    """What the new owner receives from the old one already is what the file grants it."""
    _create_roles(pg)
    with pg.connect() as conn:
        conn.execute("CREATE SCHEMA s AUTHORIZATION ot_a")
    grants = "\n            - {to: ot_b, privileges: [ALL]}"
    targets = load_targets(tmp_path, pg, SCHEMA_PLAY.format(roles=ROLES, db=pg.dbname, owner="ot_b", grants=grants))
    assert plan_of(targets) == [(f"schema.{pg.dbname}.s", "update")]
    apply_all(targets)
    assert plan_of(targets) == []
    with pg.connect() as conn:
        assert conn.execute("SELECT nspacl FROM pg_namespace WHERE nspname = 's'").fetchone()[0] is None
