"""The resident process (`erpprov resident start`): a command it serves behaves as the same command
run in a process of its own (output, exit status, environment, directory, stdin, signals), and the
resident is used only when it is safe and runs the very code the client would."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, cli_environ, erpprov, finish, pg_env, server_vars, start_erpprov, write_project

PLAYBOOK = """
- name: resident
  hosts: dev
  roles:
    - {name: "{{ env.RESIDENT_ROLE }}", login: true}
  databases:
    - name: "{{ env.RESIDENT_DB }}"
      tables:
        - {name: t, columns: [{name: id, type: integer, primary_key: true}, {name: note, type: text}]}
"""


def _served(env: dict[str, str], cwd: Path) -> int:
    out = erpprov(cwd, "resident", "status", env=env)
    assert out.returncode == 0, str(out)
    return int(re.search(r"(\d+) commands served", out.stdout).group(1))


def _pid(env: dict[str, str], cwd: Path) -> int:
    out = erpprov(cwd, "resident", "status", env=env)
    return int(re.search(r"pid (\d+)", out.stdout).group(1))


def _gone(pid: int, within: float = 20) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    """A runtime directory of the test's own (the resident's socket goes there, never the user's)."""
    path = tmp_path / "run"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def resident(runtime: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A running resident; the environment of commands that may use it."""
    env = {"XDG_RUNTIME_DIR": str(runtime), "ERPPROV_RESIDENT": "on"}
    started = erpprov(tmp_path, "resident", "start", "--idle", "5", env=env)
    assert started.returncode == 0, str(started)
    assert "resident started: pid" in started.stdout
    pid = _pid(env, tmp_path)
    try:
        yield env
    finally:
        erpprov(tmp_path, "resident", "stop", env=env)
        assert _gone(pid), "the resident did not exit when stopped"
        assert not list(runtime.glob("erpprov/*.sock")), "the resident left its socket behind"


def test_a_served_command_is_the_command_run_here(pg, tmp_path, resident):
    project = write_project(tmp_path / "p", PLAYBOOK, server_vars(pg))
    names = {"RESIDENT_ROLE": f"{pg.dbname}_r", "RESIDENT_DB": pg.dbname}
    here = erpprov(project, "plan", "--detailed-exitcode", env={**names, **pg_env(pg)})
    before = _served(resident, tmp_path)
    served = erpprov(project, "plan", "--detailed-exitcode", env={**resident, **names, **pg_env(pg)})
    assert _served(resident, tmp_path) == before + 1, "the resident did not run the command"
    assert (served.returncode, served.stdout, served.stderr) == (here.returncode, here.stdout, here.stderr)
    assert served.returncode == 2 and f"{pg.dbname}_r" in served.stdout  # the client's environment, not the resident's

    applied = erpprov(project, "apply", env={**resident, **names, **pg_env(pg)})
    assert applied.returncode == 0, str(applied)
    assert _served(resident, tmp_path) == before + 2
    again = erpprov(project, "plan", "--detailed-exitcode", env={**resident, **names, **pg_env(pg)})
    assert again.returncode == 0, str(again)  # converged, seen through the resident
    alone = erpprov(project, "plan", "--detailed-exitcode", env={**names, **pg_env(pg)})
    assert alone.returncode == 0, str(alone)  # and without it


def test_errors_and_relative_paths_are_the_clients(tmp_path, resident):
    project = write_project(tmp_path / "p", "- name: p\n  hosts: all\n  roles:\n    - {name: a, superuesr: true}\n")
    before = _served(resident, tmp_path)
    served = erpprov(project, "validate", "playbooks/dev.yaml", env=resident)
    here = erpprov(project, "validate", "playbooks/dev.yaml")
    assert _served(resident, tmp_path) == before + 1
    assert served.returncode == here.returncode == 1
    assert served.stderr == here.stderr and served.stderr.startswith("error: playbooks/dev.yaml:4:")


def test_ctrl_c_reaches_the_command(tmp_path, resident):
    """SIGINT sent to the client (a terminal's Ctrl-C) interrupts the command in the resident's
    child, which ends as an interrupted command does: exit 130 (once the connection attempt in
    its worker thread gives up, as in a process of its own)."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # accepts, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    silent.settimeout(60)
    try:
        project = write_project(tmp_path / "p", "- name: p\n  hosts: dev\n  roles: [{name: a}]\n",
                                {"pg_host": "127.0.0.1", "pg_port": silent.getsockname()[1], "pg_user": "x",
                                 "pg_password": "y", "pg_connect_timeout": 3})
        proc = start_erpprov(project, "plan", env=resident)
        waiting, _ = silent.accept()  # the command is connecting: it runs
        with waiting:
            proc.send_signal(signal.SIGINT)
            run = finish(proc, timeout=60)
    finally:
        silent.close()
    assert run.returncode == 130, str(run)
    assert "interrupted" in run.stderr


def test_a_resident_of_other_code_is_not_used(tmp_path, runtime):
    """Edit erpprov (or upgrade it) and commands run in their own process again: a resident serves
    only the code it was started with."""
    code = tmp_path / "code"
    shutil.copytree(REPO / "erpprov", code / "erpprov", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**cli_environ({"XDG_RUNTIME_DIR": str(runtime)}), "PYTHONPATH": str(code), "ERPPROV_RESIDENT": "on",
           "NO_COLOR": "1"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "erpprov", *args], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=120)

    assert run("resident", "start", "--idle", "5").returncode == 0
    pid = int(re.search(r"pid (\d+)", run("resident", "status").stdout).group(1))
    try:
        project = write_project(tmp_path / "p", "- name: p\n  hosts: all\n  roles: [{name: a}]\n")
        env_project = dict(env)
        assert subprocess.run([sys.executable, "-m", "erpprov", "validate"], cwd=project, env=env_project,
                              capture_output=True, timeout=120).returncode == 0
        assert "1 commands served" in run("resident", "status").stdout
        plan_py = code / "erpprov" / "cli" / "commands" / "plan.py"
        plan_py.write_text(plan_py.read_text() + "\n# edited\n")
        assert subprocess.run([sys.executable, "-m", "erpprov", "validate"], cwd=project, env=env_project,
                              capture_output=True, timeout=120).returncode == 0
        assert "no resident process runs" in run("resident", "status").stdout  # the edited code has none
    finally:
        os.kill(pid, signal.SIGTERM)
        assert _gone(pid)
    assert not list(runtime.glob("erpprov/*.sock"))


def test_an_unsafe_directory_is_never_used(tmp_path, runtime, resident):
    project = write_project(tmp_path / "p", "- name: p\n  hosts: all\n  roles: [{name: a}]\n")
    before = _served(resident, tmp_path)
    directory = runtime / "erpprov"
    directory.chmod(0o755)  # others could reach the socket
    try:
        out = erpprov(project, "validate", env=resident)
        assert out.returncode == 0, str(out)  # run here instead
        refused = erpprov(tmp_path, "resident", "start", env=resident)
        assert refused.returncode == 1 and "open to other users" in refused.stderr, str(refused)
    finally:
        directory.chmod(0o700)
    assert _served(resident, tmp_path) == before


def test_switched_off_runs_here(tmp_path, resident):
    project = write_project(tmp_path / "p", "- name: p\n  hosts: all\n  roles: [{name: a}]\n")
    before = _served(resident, tmp_path)
    out = erpprov(project, "validate", env={**resident, "ERPPROV_RESIDENT": "off"})
    assert out.returncode == 0, str(out)
    assert _served(resident, tmp_path) == before


def test_the_entry_point_imports_nothing_heavy_before_it_asks_the_resident():
    """The client's whole cost is the interpreter and this module: no click, no erpprov.cli."""
    probe = "import sys, erpprov.launch\nprint(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in " \
            "('click', 'psycopg', 'pydantic', 'yaml', 'jinja2') or m.startswith('erpprov.'))))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO,
                         env=cli_environ())
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["erpprov.launch"]
