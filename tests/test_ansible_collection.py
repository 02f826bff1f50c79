"""The erpprov.postgres collection, built with ansible-galaxy and run by real ansible-playbook over
two hosts of one inventory (ansible_connection: local, each a throwaway PostgreSQL cluster)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from erpprov.drivers.embedded import LocalCluster
from erpprov.errors import ErpprovError
from erpprov.load.project import load_for_host
from erpprov.plan.build import plan_target
from tests.conftest import SUPERUSER_PASSWORD, Server, local_cluster
from tests.helpers import REPO, Run, cli_environ, finish, reachable_tempdir

COLLECTION = REPO / "collections" / "ansible_collections" / "erpprov" / "postgres"
SECOND_PASSWORD = "second-cluster-secret"


@pytest.fixture(scope="module")
def second_cluster() -> Iterator[LocalCluster]:
    with local_cluster(SECOND_PASSWORD) as cluster:
        yield cluster


def ansible(cwd: Path, command: str, *args: str) -> Run:
    env = cli_environ({"ANSIBLE_COLLECTIONS_PATH": str(cwd / "collections"), "ANSIBLE_HOME": str(cwd / ".ansible"),
                       "ANSIBLE_LOCAL_TEMP": str(cwd / ".ansible" / "tmp"),
                       "ANSIBLE_REMOTE_TEMP": str(cwd / ".ansible" / "remote"), "ANSIBLE_NOCOLOR": "1",
                       "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_LOCALHOST_WARNING": "0",
                       "ANSIBLE_DEPRECATION_WARNINGS": "0", "LC_ALL": "C.UTF-8"})
    started = time.monotonic()
    found = shutil.which(command)
    assert found, f"{command} is missing: ansible-core is in the test extras (pip install -e '.[test]')"
    proc = subprocess.Popen([found, *args], cwd=cwd, env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    return finish(proc, timeout=180, started=started)


def recap(run: Run) -> dict[str, dict[str, int]]:
    """PLAY RECAP's counters per host."""
    hosts = {}
    section = run.stdout[run.stdout.rindex("PLAY RECAP"):]
    for line in section.splitlines()[1:]:
        if ":" in line:
            host, _, counters = line.partition(":")
            hosts[host.strip()] = {k: int(v) for k, v in (c.split("=") for c in counters.split())}
    return hosts


def registered(cwd: Path, name: str) -> dict[str, dict]:
    """The task results the playbook saved, by host."""
    return {host: json.loads((cwd / "out" / f"{host}.json").read_text())[name] for host in ("db1", "db2")}


PLAYBOOK = """
- name: The fleet
  hosts: all
  gather_facts: false
  serial: "{{ batch | default(0) | int }}"
  tasks:
    - name: erpprov
      erpprov.postgres.apply:
        host_name: "{{ inventory_hostname }}"
        pg_port: "{{ pg_port }}"
        pg_password: "{{ pg_password }}"
        state: "{{ state }}"
      register: erp
    - name: erpprov adding a table the state does not declare
      erpprov.postgres.apply:
        pg_port: "{{ pg_port }}"
        pg_password: "{{ pg_password }}"
        state: "{{ extra }}"
      when: hazards | default(false)
    - name: erpprov refusing to drop both tables
      erpprov.postgres.apply:
        pg_port: "{{ pg_port }}"
        pg_password: "{{ pg_password }}"
        state: "{{ drop }}"
      register: refused
      ignore_errors: true
      when: hazards | default(false)
    - name: erpprov pruning the extra table, allowed
      erpprov.postgres.apply:
        pg_port: "{{ pg_port }}"
        pg_password: "{{ pg_password }}"
        state: "{{ state }}"
        prune: true
        allow_hazards: [deletes_data]
      register: allowed
      when: hazards | default(false)
    - name: erpprov from an erpprov playbook on the node
      erpprov.postgres.apply:
        playbook: erp.yaml
        vars: {app_password: "{{ state.roles[0].password }}"}
        pg_port: "{{ pg_port }}"
        pg_password: "{{ pg_password }}"
      register: erp_playbook
      when: more | default(false)
    - name: erpprov facts
      erpprov.postgres.facts:
        pg_port: "{{ pg_port }}"
        pg_password: "{{ pg_password }}"
        state: "{{ state }}"
      register: facts
      when: more | default(false)
    - name: erpprov without erpprov
      erpprov.postgres.apply:
        state: "{{ state }}"
        pg_password: "{{ pg_password }}"
      vars: {ansible_python_interpreter: "{{ bare_python }}"}
      environment: {PYTHONPATH: ""}
      register: missing
      ignore_errors: true
      when: more | default(false)
    - name: save what the tasks returned
      copy:
        content: "{{ {'erp': erp, 'playbook': erp_playbook, 'refused': refused, 'allowed': allowed,
                      'missing': missing, 'facts': facts} | to_json }}"
        dest: "out/{{ inventory_hostname }}.json"
      check_mode: false
      changed_when: false
"""


def desired(role: str, database: str, password: str, tables: tuple[str, ...] = ("items",), *,
            prune: bool = False) -> dict:
    """One play's roles and databases: a login role owning a database with ``tables``."""
    columns = [{"name": "id", "type": "bigint", "primary_key": True}, {"name": "label", "type": "text"}]
    return {"roles": [{"name": role, "login": True, "password": password}],
            "databases": [{"name": database, "owner": role, "prune": prune,
                           "tables": [{"name": name, "columns": columns} for name in tables]}]}


@pytest.fixture
def fleet(pg_cluster: LocalCluster, second_cluster: LocalCluster) -> Iterator[tuple[Path, str, str, str]]:
    """A built and installed collection, an inventory of two hosts and the fleet playbook. Yields
    (directory, role, database, the role's password); the role and database go away after."""
    tmp = reachable_tempdir()
    suffix = uuid.uuid4().hex[:8]
    role, database, password = f"app_{suffix}", f"erp_{suffix}", f"app-password-{suffix}"
    built = ansible(tmp, "ansible-galaxy", "collection", "build", str(COLLECTION), "--output-path", str(tmp))
    assert built.returncode == 0, str(built)
    tarball = next(tmp.glob("erpprov-postgres-*.tar.gz"))
    installed = ansible(tmp, "ansible-galaxy", "collection", "install", "--offline", "-p", str(tmp / "collections"),
                        str(tarball))
    assert installed.returncode == 0, str(installed)
    venv.EnvBuilder(with_pip=False, symlinks=True).create(tmp / "bare")  # a Python without erpprov
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "bare_python": str(tmp / "bare" / "bin" / "python")}
    inventory = {"all": {"hosts": {
        "db1": {**host, "pg_port": pg_cluster.port, "pg_password": SUPERUSER_PASSWORD},
        "db2": {**host, "pg_port": second_cluster.port, "pg_password": SECOND_PASSWORD}}}}
    (tmp / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    (tmp / "site.yaml").write_text(PLAYBOOK)
    (tmp / "state.yaml").write_text(yaml.safe_dump({
        "state": desired(role, database, password), "extra": desired(role, database, password, ("items", "scratch")),
        "drop": desired(role, database, password, (), prune=True)}))
    # The same state as an erpprov playbook, its password an erpprov template; `hosts` names no Ansible group.
    play = desired(role, database, "{{ app_password }}")
    (tmp / "erp.yaml").write_text(yaml.safe_dump([{"name": "erp", "hosts": "erp_servers", **play}]))
    (tmp / "out").mkdir()
    try:
        yield tmp, role, database, password
    finally:
        for cluster, secret in ((pg_cluster, SUPERUSER_PASSWORD), (second_cluster, SECOND_PASSWORD)):
            with server(cluster, secret).connect() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        shutil.rmtree(tmp, ignore_errors=True)


def server(cluster: LocalCluster, password: str) -> Server:
    return Server(cluster.host, cluster.port, "postgres", password, "postgres")


def test_a_fleet_of_two_through_ansible_playbook(fleet: tuple[Path, str, str, str], pg_cluster: LocalCluster,
                                                 second_cluster: LocalCluster) -> None:
    tmp, role, database, password = fleet
    clusters = ((pg_cluster, SUPERUSER_PASSWORD), (second_cluster, SECOND_PASSWORD))
    secrets = (password, SUPERUSER_PASSWORD, SECOND_PASSWORD)
    playbook = ("-i", "inventory.yaml", "site.yaml", "-vvv", "-e", "@state.yaml")

    # ansible-doc reads both modules' documentation: each option a description and a type, nothing else
    # (a stray key is a flow mapping that a comma split).
    docs = ansible(tmp, "ansible-doc", "-j", "erpprov.postgres.apply", "erpprov.postgres.facts")
    assert docs.returncode == 0, str(docs)
    for name, module in json.loads(docs.stdout).items():
        for option, spec in module["doc"]["options"].items():
            assert {"description", "type"} <= set(spec) <= {"description", "type", "default", "elements", "choices"}, \
                (name, option, spec)

    # Check mode is erpprov plan: changed on both, nothing created; --diff shows the plan.
    check = ansible(tmp, "ansible-playbook", *playbook, "--check", "--diff")
    assert check.returncode == 0, str(check)
    assert {h: r["changed"] for h, r in recap(check).items()} == {"db1": 1, "db2": 1}, str(check)
    for cluster, secret in clusters:
        with server(cluster, secret).connect() as admin:
            assert admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None
    assert "--- before: live\n+++ after: desired" in check.stdout, str(check)
    assert f"+db1 role.{role} (create): " in check.stdout, str(check)
    assert f"  + table.{database}.public.items\n" in check.stdout, "the plan's text is in the diff"
    planned = registered(tmp, "erp")
    for host, result in planned.items():
        assert result["changed"] and result["plan"]["hosts"][0]["host"] == host
        assert {a["address"] for a in result["actions"]} >= {f"role.{role}", f"database.{database}"}
        assert result["recap"]["add"] >= 3

    # A real run, one host at a time: both converge. Then a table the state leaves out: dropping both
    # tables is a hazard, refused as the CLI refuses it; the module's prune with deletes_data allowed
    # drops the extra one.
    applied = ansible(tmp, "ansible-playbook", *playbook, "-e", '{"batch": 1, "hazards": true}')
    assert applied.returncode == 0, str(applied)
    counters = recap(applied)
    assert all(r["changed"] == 3 and r["ignored"] == 1 for r in counters.values()) and len(counters) == 2, \
        str(applied)
    assert applied.stdout.count("TASK [erpprov]") == 2, "serial: 1 runs the task once per batch of one host"
    for result in registered(tmp, "refused").values():
        assert result["failed"]
        assert "apply refuses 2 hazardous change(s); nothing was changed" in result["msg"]
        assert f"table.{database}.public.items (deletes_data)" in result["msg"]
        assert "allow_hazards: [deletes_data]" in result["msg"]
    for result in registered(tmp, "allowed").values():
        assert result["actions"] == [{"host": "localhost", "address": f"table.{database}.public.scratch",
                                      "operation": "delete", "hazards": ["deletes_data"]}], result
    for cluster, secret in clusters:
        with server(cluster, secret).connect(database) as conn:
            assert conn.execute("SELECT to_regclass('public.items')").fetchone()[0] == "items", "the refusal kept it"
        connection = {"pg_host": cluster.host, "pg_port": cluster.port, "pg_password": secret}
        play = {"name": "check", **desired(role, database, password, prune=True)}
        for target in load_for_host([play], connection, environ={}).targets:
            assert plan_target(target).empty, "a fresh plan after the Ansible run is not empty"

    # Again: nothing to do, from the state or from an erpprov playbook.
    again = ansible(tmp, "ansible-playbook", *playbook, "-e", '{"more": true}')
    assert again.returncode == 0, str(again)
    counters = recap(again)
    assert all(r["changed"] == 0 and r["failed"] == 0 and r["ignored"] == 1 for r in counters.values()), str(again)
    for result in registered(tmp, "erp").values():
        assert not result["changed"] and result["recap"]["ok"] == 3, result
    for result in registered(tmp, "playbook").values():
        assert result["recap"] == {"ok": 3, "changed": 0, "add": 0, "change": 0, "destroy": 0}, result
    for result in registered(tmp, "facts").values():
        facts = result["ansible_facts"]["erpprov"]
        assert facts["server_version"].startswith("15.") and facts["is_superuser"], facts
        assert role in facts["roles"] and facts["databases"][database]["owner"] == role, facts
        assert facts["managed"]["declared"] == 3 and facts["managed"]["pending"] == 0, facts
    for result in registered(tmp, "missing").values():
        assert result["failed"] and "pip install erpprov" in result["msg"], result

    for run in (check, applied, again):
        for secret in secrets:
            assert secret not in run.stdout + run.stderr, f"a password shows in ansible-playbook -vvv: {run}"
    for saved in (tmp / "out").iterdir():
        assert not any(secret in saved.read_text() for secret in secrets), saved.name


def test_inline_state_loads_as_a_playbook_does() -> None:
    """load_for_host, the module's entry point: the play's `hosts` names no inventory group and is
    not matched, erpprov templates render from the variables given, and errors point into the state."""
    play = {"name": "inline", "hosts": "no_such_group", "roles": [{"name": "{{ who }}", "login": True}]}
    project = load_for_host([play], {"pg_port": 6543, "pg_password": "pw-given"}, host="db7",
                            extra_vars={"who": "app"}, environ={})
    (target,) = project.targets
    assert (target.host, target.play.roles[0].name, target.connection.pg_port) == ("db7", "app", 6543)
    with pytest.raises(ErpprovError) as error:
        load_for_host([{"name": "inline", "databases": [{"nmae": "erp"}]}], {}, environ={})
    assert str(error.value).startswith("<state>:3:") and "unknown key 'nmae'" in str(error.value)
