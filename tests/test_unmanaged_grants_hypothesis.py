"""Nothing invisible, for privileges: whatever GRANTs and REVOKEs are made by hand on the objects a
file declares, to grantees it does not name, the plan lists exactly the (object, grantee) pairs
whose privileges now differ from what PostgreSQL gives unasked, and changes nothing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import apply_all, load_targets

HANDS = ["ugh_a", "ugh_b", "PUBLIC"]  # grantees the file never names
# (kind in the address, the object as GRANT names it, its privileges, what PUBLIC holds unasked:
# each of these privilege sets is a state PostgreSQL gives it)
OBJECTS = [
    ("table", "public.t", "TABLE t", ["SELECT", "INSERT", "UPDATE"], [[]]),
    ("function", "public.f()", "FUNCTION f()", ["EXECUTE"], [["EXECUTE"]]),
    # initdb's USAGE (from 15), or none: a `public` schema created again starts from acldefault()
    ("schema", "public", "SCHEMA public", ["USAGE", "CREATE"], [["USAGE"], []]),
    ("database", "", "DATABASE {db}", ["CONNECT", "TEMPORARY", "CREATE"], [["CONNECT", "TEMPORARY"]]),
]


@st.composite
def hand_made(draw: st.DrawFn) -> dict[tuple[int, str], list[str]]:
    """For some (object, grantee) pairs, the privileges the grantee ends up holding by hand."""
    pairs = draw(st.lists(st.tuples(st.integers(0, len(OBJECTS) - 1), st.sampled_from(HANDS)), unique=True,
                          max_size=5))
    return {pair: sorted(draw(st.lists(st.sampled_from(OBJECTS[pair[0]][3]), unique=True))) for pair in pairs}


@pytest.fixture(scope="module")
def declared(tmp_path_factory, pg_cluster):
    """The test server's database with the file's table, function and schema applied once."""
    from tests.conftest import SUPERUSER_PASSWORD, Server

    server = Server(pg_cluster.host, pg_cluster.port, "postgres", SUPERUSER_PASSWORD, "ugh_db")
    with server.connect("postgres") as conn:
        conn.execute("DROP DATABASE IF EXISTS ugh_db")
        conn.execute("DROP ROLE IF EXISTS ugh_a; DROP ROLE IF EXISTS ugh_b; CREATE ROLE ugh_a; CREATE ROLE ugh_b")
    targets = load_targets(tmp_path_factory.mktemp("ugh"), server, """
        - name: p
          databases:
            - name: ugh_db
              schemas: [{name: public}]
              tables: [{name: t, columns: [{name: id, type: integer}]}]
              functions: [{name: f, returns: integer, body: SELECT 1}]
    """)
    apply_all(targets)
    yield server, targets
    with server.connect("postgres") as conn:
        conn.execute("DROP DATABASE ugh_db WITH (FORCE)")
        conn.execute("DROP ROLE ugh_a; DROP ROLE ugh_b")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hands=hand_made())
def test_hand_made_grants_are_listed_exactly(declared, hands):
    from erpprov.plan.build import plan_target

    server, targets = declared
    with server.connect() as conn:
        for _, _, on, _, public in OBJECTS:  # back to what PostgreSQL gives unasked
            target = on.format(db="ugh_db")
            conn.execute(f"REVOKE ALL ON {target} FROM ugh_a, ugh_b, PUBLIC")
            if public[0]:
                conn.execute(f"GRANT {', '.join(public[0])} ON {target} TO PUBLIC")
        for (index, grantee), held in hands.items():
            target = OBJECTS[index][2].format(db="ugh_db")
            conn.execute(f"REVOKE ALL ON {target} FROM {grantee}")
            if held:
                conn.execute(f"GRANT {', '.join(held)} ON {target} TO {grantee}")
    expected = set()
    for (index, grantee), held in hands.items():
        kind, name, _, _, public = OBJECTS[index]
        if held not in ([sorted(p) for p in public] if grantee == "PUBLIC" else [[]]):
            expected.add(".".join(["grant", "ugh_db", kind, *([name] if name else []), grantee]))
    plan = plan_target(targets[0])
    assert plan.actions == []
    assert {str(a) for a in plan.unmanaged if a.kind == "grant"} == expected
