"""The diff is pure: these tests need no server."""

from __future__ import annotations

import json

import pytest

from erpprov.core import model
from erpprov.core.actions import Hazard, Op
from erpprov.core.cluster import DatabaseState, LiveCluster, ObjectRef, RoleState
from erpprov.diff import (
    Canon,
    acl_changes,
    diff_databases,
    diff_roles,
    passwords_to_compare,
)
from erpprov.errors import ErpprovError
from erpprov.postgres.acl import owner_transferred
from erpprov.postgres.scram import (
    executable,
    matching_passwords,
    matching_passwords_started,
    password_matches,
    scram_verifier,
)

PASSWORD = "pa'ss\\word"


def cluster(**roles: RoleState) -> LiveCluster:
    return LiveCluster(server_version=150000, current_user="postgres", is_superuser=True,
                       roles={"postgres": RoleState("postgres", login=True, superuser=True), **roles},
                       passwords={"postgres": None, **{name: None for name in roles}},
                       databases={"postgres": DatabaseState("postgres", "postgres")})


def play(**sections: object) -> model.Play:
    return model.Play.model_validate({"name": "p", **sections})


def test_acl_changes_splits_grants_revokes_and_options():
    want = frozenset({("SELECT", False), ("INSERT", True), ("UPDATE", False)})
    have = frozenset({("SELECT", True), ("DELETE", False), ("UPDATE", False)})
    assert acl_changes(want, have) == {
        "revoke": ["DELETE"], "revoke_option": ["SELECT"], "grant": [], "grant_option": ["INSERT"],
    }
    assert acl_changes(want, want) == {"revoke": [], "revoke_option": [], "grant": [], "grant_option": []}


def test_new_role_sends_a_verifier_and_shows_no_secret():
    result = diff_roles(play(roles=[{"name": "app", "login": True, "password": PASSWORD}]), cluster(), Canon(),
                        login_role="postgres")
    [action] = result.actions
    assert action.op is Op.CREATE and action.address == "role.app"
    [statement] = action.sql
    assert "SCRAM" not in statement.text and PASSWORD not in statement.text and PASSWORD not in repr(action)
    assert statement.display.endswith("PASSWORD '(sensitive)'")
    sent = executable(statement)
    assert sent.startswith(statement.text + "'SCRAM-SHA-256$4096:") and PASSWORD not in sent
    assert "SCRAM" not in json.dumps(action.to_json())
    assert action.after["password"] == "(sensitive)"


def test_matching_password_and_attributes_mean_no_action():
    live = cluster(app=RoleState("app", login=True))
    live.passwords["app"] = scram_verifier(PASSWORD)
    desired = play(roles=[{"name": "app", "login": True, "password": PASSWORD}])
    canon = Canon(passwords=matching_passwords(passwords_to_compare(desired, live)))
    assert canon.passwords == {"app": True}
    assert diff_roles(desired, live, canon, login_role="postgres").actions == []


def test_other_password_is_set_again_and_stays_hidden():
    live = cluster(app=RoleState("app", login=True))
    live.passwords["app"] = scram_verifier("another one")
    desired = play(roles=[{"name": "app", "login": True, "password": PASSWORD}])
    canon = Canon(passwords=matching_passwords(passwords_to_compare(desired, live)))
    [action] = diff_roles(desired, live, canon, login_role="postgres").actions
    assert action.op is Op.UPDATE and action.after == {"password": "(sensitive) (changed)"}
    assert PASSWORD not in action.sql[0].text and "SCRAM-SHA-256$4096:" in executable(action.sql[0])


def test_the_same_inputs_give_the_same_actions_and_each_run_a_fresh_salt():
    """A plan is a function of the files and the live state: the verifier, whose salt is random,
    is computed only when the statement runs."""
    desired = play(roles=[{"name": "app", "login": True, "password": PASSWORD}])
    first, second = (diff_roles(desired, cluster(), Canon(), login_role="postgres").actions for _ in range(2))
    assert first == second
    sent = [executable(first[0].sql[0]).rsplit("PASSWORD ", 1)[1].strip("'") for _ in range(2)]
    assert sent[0] != sent[1]  # a fresh salt each time
    assert all(password_matches(PASSWORD, verifier, "app") for verifier in sent)


def test_changed_attribute_shows_before_and_after_only_for_it():
    live = cluster(app=RoleState("app", login=False, connection_limit=3))
    result = diff_roles(play(roles=[{"name": "app", "login": True, "connection_limit": 3}]), live, Canon(),
                        login_role="postgres")
    [action] = result.actions
    assert (action.before, action.after) == ({"login": False}, {"login": True})
    assert action.sql[0].text == 'ALTER ROLE "app" WITH LOGIN'


def test_lowering_an_access_attribute_is_a_revokes_access_hazard():
    live = cluster(app=RoleState("app", login=True, createdb=True, createrole=True, connection_limit=3))
    desired = play(roles=[{"name": "app", "createrole": True, "connection_limit": 4}])
    [action] = diff_roles(desired, live, Canon(), login_role="postgres").actions
    assert action.hazards == (Hazard.REVOKES_ACCESS,)
    assert action.note == "app loses LOGIN, CREATEDB"
    assert (action.before, action.after) == ({"login": True, "createdb": True, "connection_limit": 3},
                                             {"login": False, "createdb": False, "connection_limit": 4})


@pytest.mark.parametrize("attribute", ["superuser", "createrole", "createdb", "replication", "bypassrls", "login"])
def test_each_access_attribute_is_hazardous_to_take_and_safe_to_give(attribute):
    lowered = diff_roles(play(roles=[{"name": "app"}]), cluster(app=RoleState("app", **{attribute: True})),
                         Canon(), login_role="postgres").actions
    assert [a.hazards for a in lowered] == [(Hazard.REVOKES_ACCESS,)]
    raised = diff_roles(play(roles=[{"name": "app", attribute: True}]), cluster(app=RoleState("app")),
                        Canon(), login_role="postgres").actions
    assert [a.hazards for a in raised] == [()]


@pytest.mark.parametrize("connected_as", ["session", "current"])
def test_the_role_erpprov_connects_as_keeps_its_access(connected_as):
    """Whether it is the role in the inventory or the one the session runs as (a `role` setting)."""
    live = cluster(admin=RoleState("admin", login=True, createrole=True))
    login_role = "admin" if connected_as == "session" else "postgres"
    if connected_as == "current":
        live.current_user = "admin"
    with pytest.raises(ErpprovError) as refused:
        diff_roles(play(roles=[{"name": "admin", "createrole": True}]), live, Canon(), login_role=login_role)
    assert "admin" in refused.value.message and "LOGIN" in refused.value.message
    assert "CREATEROLE" not in refused.value.message
    assert "login: true" in refused.value.hint and "pg_user" in refused.value.hint
    with pytest.raises(ErpprovError, match="state: absent") as dropped:
        diff_roles(play(roles=[{"name": "admin", "state": "absent"}]), live, Canon(), login_role=login_role)
    assert "admin" in dropped.value.message and "pg_user" in dropped.value.hint
    kept = diff_roles(play(roles=[{"name": "admin", "login": True, "createrole": True}]), live, Canon(),
                      login_role=login_role)
    assert kept.actions == []


def test_prune_roles_never_drops_the_role_erpprov_connects_as():
    live = cluster(admin=RoleState("admin", login=True), alice=RoleState("alice"))
    result = diff_roles(play(prune_roles=["*"]), live, Canon(), login_role="admin")
    assert {a.address for a in result.actions} == {"role.alice"}


def test_undeclared_roles_are_listed_as_unmanaged_not_dropped():
    live = cluster(alice=RoleState("alice"))
    result = diff_roles(play(), live, Canon(), login_role="postgres")
    assert result.actions == [] and result.unmanaged == ["role.alice"]


def test_existing_database_with_other_encoding_is_reported():
    live = cluster()
    live.databases["erp"] = DatabaseState("erp", "postgres", encoding="UTF8")
    result = diff_databases(play(databases=[{"name": "erp", "encoding": "LATIN1"}]), live)
    assert result.actions == []
    assert "encoding is 'UTF8' but the file says 'LATIN1'" in result.warnings[0]


def test_new_database_is_created_outside_a_transaction():
    result = diff_databases(play(databases=[{"name": "erp", "owner": "app"}]), cluster())
    [action] = result.actions
    assert not action.transactional
    assert action.sql[0].text == 'CREATE DATABASE "erp" OWNER "app"'


def test_pruned_owner_of_a_new_database_is_planned_as_after_creation():
    """What a new database's owner holds implicitly is revoked in the same apply, or the plan
    after it would show the revoke and apply would not converge."""
    desired = play(roles=[{"name": "app", "prune": True}], databases=[{"name": "erp", "owner": "app"}])
    live = cluster(app=RoleState("app"))
    addresses = [a.address for a in diff_databases(desired, live).actions]
    assert addresses == ["database.erp", "grant.erp.database.app"]


def test_new_owner_receives_the_old_owners_acl_entries_merged_with_its_own():
    ref = ObjectRef("table", "public", "t")
    acl = {(ref, "a"): frozenset({("SELECT", False), ("UPDATE", False)}),
           (ref, "b"): frozenset({("SELECT", True)}), (ref, "c"): frozenset({("SELECT", False)})}
    assert owner_transferred(acl, {ref: ("a", "b")}) == {
        (ref, "b"): frozenset({("SELECT", True), ("UPDATE", False)}), (ref, "c"): frozenset({("SELECT", False)})}


def test_pruned_new_owner_of_a_database_loses_what_the_transfer_hands_it():
    """ALTER DATABASE ... OWNER TO gives it the old owner's CREATE, CONNECT and TEMPORARY: a pruned
    role without a grant must lose them in the same apply."""
    desired = play(roles=[{"name": "b", "prune": True}], databases=[{"name": "erp", "owner": "b"}])
    live = cluster(a=RoleState("a"), b=RoleState("b"))
    live.databases["erp"] = DatabaseState("erp", "a")
    live.database_acl[("erp", "a")] = frozenset({("CREATE", False), ("CONNECT", False), ("TEMPORARY", False)})
    live.database_acl[("erp", "PUBLIC")] = frozenset({("CONNECT", False), ("TEMPORARY", False)})
    actions = diff_databases(desired, live).actions
    assert [(a.address, a.op, a.hazards) for a in actions] == [
        ("database.erp", Op.UPDATE, ()), ("grant.erp.database.b", Op.DELETE, (Hazard.REVOKES_ACCESS,))]
    assert actions[1].sql[0].text == 'REVOKE CONNECT, CREATE, TEMPORARY ON DATABASE "erp" FROM "b"'


def test_password_checks_run_below_the_callers_priority(monkeypatch):
    """They share the cores with the catalog reads the plan waits for: ten steps below the caller,
    whatever the caller's own nice value, which it keeps. Once the caller waits, the checks it
    runs itself run at its own priority."""
    import os
    import sys
    import threading

    from erpprov.postgres import scram

    seen: list[tuple[bool, int]] = []  # (on the caller's thread, nice value) per check
    worked = threading.Event()
    real = scram.password_matches
    caller_thread: list[threading.Thread] = []

    def recording(password: str, stored: str, role: str) -> bool:
        here = threading.current_thread() in caller_thread
        if sys.platform.startswith("linux"):
            seen.append((here, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        if not here:
            worked.set()
        return real(password, stored, role)

    monkeypatch.setattr(scram, "password_matches", recording)
    verifier = scram_verifier(PASSWORD)
    outcome: dict[str, object] = {}

    def caller() -> None:  # a thread of its own at nice 3 (new threads inherit it), so the test leaves ours alone
        caller_thread.append(threading.current_thread())
        if sys.platform.startswith("linux"):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 3)
        candidates = {f"r{i}": (PASSWORD if i % 2 else "other", verifier) for i in range(6)}
        with matching_passwords_started(candidates) as found:
            worked.wait(60)  # the caller goes on with its work while a worker checks
            outcome["found"] = found()
        if sys.platform.startswith("linux"):
            outcome["after"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    thread = threading.Thread(target=caller)
    thread.start()
    thread.join(60)
    assert outcome["found"] == {f"r{i}": bool(i % 2) for i in range(6)}
    if sys.platform.startswith("linux"):
        assert outcome["after"] == 3
        assert len(seen) == 6
        assert (False, 13) in seen
        assert all(nice == (3 if here else 13) for here, nice in seen), seen


def test_a_waiting_caller_runs_the_checks_not_yet_begun(monkeypatch):
    """On a busy machine the lowered workers may hardly run: the caller, once it waits, does the
    checks they have not begun instead of waiting for them. Here the workers are held in their
    first checks until the caller has done all the others."""
    import os
    import threading

    from erpprov.postgres import scram

    candidates = {f"r{i}": (PASSWORD if i % 2 else "other", scram_verifier(PASSWORD)) for i in range(8)}
    caller: list[threading.Thread] = []
    by_caller: list[str] = []
    started, release = threading.Semaphore(0), threading.Event()
    real = scram.password_matches

    def held(password: str, stored: str, role: str) -> bool:
        if threading.current_thread() in caller:
            by_caller.append(role)
            if len(by_caller) == len(candidates) - workers:
                release.set()
        else:
            started.release()
            release.wait(60)
        return real(password, stored, role)

    monkeypatch.setattr(scram, "password_matches", held)
    with matching_passwords_started(candidates) as found:
        # as many as the pool has: one per core
        workers = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
                      len(candidates))
        for _ in range(workers):
            assert started.acquire(timeout=60)  # every worker is inside a check it cannot finish yet
        caller.append(threading.current_thread())
        result = found()
    assert result == {f"r{i}": bool(i % 2) for i in range(8)}
    assert list(result) == list(candidates)
    assert len(by_caller) == len(candidates) - workers and release.is_set()


@pytest.mark.parametrize("option, role_inherits, warned", [
    ({"inherit": False}, True, True),   # the role attribute still makes it inherit: say so
    ({"inherit": False}, False, False),  # the role attribute already stops it
    ({"inherit": True}, True, False),
    ({"set": False}, True, True),        # no SET option before 16: SET ROLE stays possible
])
def test_membership_options_postgresql_15_cannot_hold_are_warned(option, role_inherits, warned):
    live = cluster(group=RoleState("group"), app=RoleState("app", inherit=role_inherits))
    member = {"role": "group", **option}
    result = diff_roles(play(roles=[{"name": "group"}, {"name": "app", "inherit": role_inherits,
                                                        "member_of": [member]}]),
                        live, Canon(), login_role="postgres")
    said = [w for w in result.warnings if "membership app in group" in w]
    assert bool(said) == warned, result.warnings
    if warned:
        assert "PostgreSQL 16" in said[0] and next(iter(option)) in said[0]
