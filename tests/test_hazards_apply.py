"""Every hazard kind: `apply` refuses it without permission, names it (the CLI says how to allow it), changes
nothing; with permission it goes ahead and the next plan is empty."""

from __future__ import annotations

import pytest

from erpprov.apply.hazards import HazardsRefused
from erpprov.apply.host import HostFailed
from erpprov.core.actions import Hazard
from erpprov.errors import ErpprovError
from erpprov.plan.build import plan_target
from tests.helpers import apply_all, erpprov, load_targets, plan_of

TABLE = """
- name: p
  databases:
    - name: {db}
      schemas: [{{name: public, prune: {prune}}}]
      tables:
        - name: items
          columns:
            - {{name: id, type: integer}}
            - {{name: label, type: {label_type}, nullable: {nullable}}}
"""

SCENARIOS = {
    # name: (setup SQL, playbook changes, hazard that must be refused)
    "drop_table": ("CREATE TABLE legacy (id int); INSERT INTO legacy VALUES (1)",
                   {"prune": "true"}, Hazard.DELETES_DATA),
    "narrow_type": ("", {"label_type": "varchar(2)"}, Hazard.DELETES_DATA),
    "rewrite_type": ("", {"label_type": "integer"}, Hazard.REWRITES_TABLE),
    "not_null": ("", {"nullable": "false"}, Hazard.VALIDATES_DATA),
    "lock": ("", {"nullable": "false"}, Hazard.LOCKS_TABLE),
}


def _playbook(db: str, **changes: str) -> str:
    values = {"db": db, "prune": "false", "label_type": "text", "nullable": "true", **changes}
    return TABLE.format(**values)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_apply_refuses_each_hazard_until_allowed(tmp_path, pg, scenario):
    setup, changes, hazard = SCENARIOS[scenario]
    apply_all(load_targets(tmp_path, pg, _playbook(pg.dbname)))
    with pg.connect() as conn:
        conn.execute("INSERT INTO items VALUES (1, '7'), (2, '42')")
        if setup:
            conn.execute(setup)
    targets = load_targets(tmp_path, pg, _playbook(pg.dbname, **changes))
    planned = {h for a in plan_target(targets[0]).actions for h in a.hazards}
    assert hazard in planned
    before = plan_of(targets)
    with pytest.raises(HostFailed) as refused:
        apply_all(targets, allow=frozenset(planned - {hazard}))
    assert isinstance(refused.value.cause, HazardsRefused) and hazard.value in refused.value.message
    assert hazard in refused.value.cause.hazards and all(h in a.hazards for a, h in refused.value.cause.refused)
    assert plan_of(targets) == before  # nothing was changed
    apply_all(targets, allow=frozenset(planned))
    assert plan_of(targets) == []
    with pg.connect() as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 2


def _role_flags(pg, role: str) -> tuple[bool, ...]:  # type: ignore[no-untyped-def]
    with pg.connect() as conn:
        return conn.execute("SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                            "WHERE rolname = %s", (role,)).fetchone()


def test_taking_login_or_an_attribute_away_is_refused_until_allowed(tmp_path, pg):
    with pg.connect() as conn:
        conn.execute("CREATE ROLE hz_app LOGIN CREATEDB CREATEROLE")
    targets = load_targets(tmp_path, pg, "- name: p\n  roles: [{name: hz_app, createrole: true}]\n")
    assert plan_of(targets) == [("role.hz_app", "update")]
    shown = erpprov(tmp_path, "plan")
    assert shown.returncode == 0, shown.stderr
    assert "~ role.hz_app  [revokes_access]" in shown.stdout and "# hz_app loses LOGIN, CREATEDB" in shown.stdout
    with pytest.raises(ErpprovError) as refused:
        apply_all(targets)
    assert "role.hz_app (revokes_access): hz_app loses LOGIN, CREATEDB" in refused.value.message
    assert _role_flags(pg, "hz_app") == (True, False, True, True)
    apply_all(targets, allow=frozenset({Hazard.REVOKES_ACCESS}))
    assert plan_of(targets) == []
    assert _role_flags(pg, "hz_app") == (False, False, False, True)


@pytest.mark.parametrize("declared,named", [
    ("{name: hz_admin, login: true, createrole: true}", "SUPERUSER"),
    ("{name: hz_admin}", "LOGIN, SUPERUSER, CREATEROLE"),
    ("{name: hz_admin, state: absent}", "state: absent"),
])
def test_the_role_erpprov_connects_as_keeps_its_access_even_when_hazards_are_allowed(tmp_path, pg, declared, named):
    """Apply would otherwise lock itself out: the next plan could not log in, or do its work."""
    with pg.connect() as conn:
        conn.execute("CREATE ROLE hz_admin LOGIN SUPERUSER CREATEROLE PASSWORD 'hz-admin-pw'")
    own = {"pg_user": "hz_admin", "pg_password": "hz-admin-pw"}
    targets = load_targets(tmp_path, pg, f"- name: p\n  roles: [{declared}]\n", **own)
    for attempt in (lambda: plan_of(targets), lambda: apply_all(targets, allow=frozenset(Hazard))):
        with pytest.raises(ErpprovError) as refused:
            attempt()
        assert "hz_admin" in refused.value.message and named in refused.value.message
        assert "pg_user" in refused.value.hint
    applied = erpprov(tmp_path, "apply", "--allow-destructive")
    assert applied.returncode == 1 and named in applied.stderr and "Traceback" not in applied.stderr
    assert _role_flags(pg, "hz_admin") == (True, True, False, True)
    fixed = load_targets(tmp_path, pg, "- name: p\n  roles: [{name: hz_admin, login: true, superuser: true, "
                                       "createrole: true}]\n", **own)
    assert plan_of(fixed) == []
