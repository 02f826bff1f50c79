"""The resident process (`erpprov resident start`): a command it serves behaves as the same command
run in a process of its own (output, exit status, environment, directory, stdin, signals), and the
resident is used only when it is safe and runs the very code the client would."""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    REPO,
    cli_environ,
    erpprov,
    finish,
    pg_env,
    server_vars,
    silent_server,
    start_erpprov,
    write_project,
)

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
    with silent_server() as (silent, host):
        project = write_project(tmp_path / "p", "- name: p\n  hosts: dev\n  roles: [{name: a}]\n",
                                {**host, "pg_connect_timeout": 3})
        proc = start_erpprov(project, "plan", env=resident)
        waiting, _ = silent.accept()  # the command is connecting: it runs
        with waiting:
            proc.send_signal(signal.SIGINT)
            run = finish(proc, timeout=60)
    assert run.returncode == 130, str(run)
    assert "interrupted" in run.stderr


def _answering(status: Callable[[], subprocess.CompletedProcess[str]], within: float = 60) -> int:
    """The pid of the resident ``status`` asks about once it answers (a detached start takes a moment)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        out = status()
        if out.returncode == 0:
            return int(re.search(r"pid (\d+)", out.stdout).group(1))
        time.sleep(0.1)
    raise AssertionError("no resident answered")


def test_a_resident_of_other_code_is_not_used(tmp_path, runtime):
    """Edit erpprov (or upgrade it) and the next command runs in its own process: a resident serves
    only the code it was started with. That command starts a resident of the new code, which stops
    the old one (nobody of this installation can reach it any more)."""
    code = tmp_path / "code"
    shutil.copytree(REPO / "erpprov", code / "erpprov", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**cli_environ({"XDG_RUNTIME_DIR": str(runtime)}), "PYTHONPATH": str(code), "ERPPROV_RESIDENT": "auto",
           "NO_COLOR": "1"}

    def run(*args: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "erpprov", *args], cwd=cwd, env=env, text=True,
                              capture_output=True, timeout=120)

    assert run("resident", "start", "--idle", "5").returncode == 0
    old = int(re.search(r"pid (\d+)", run("resident", "status").stdout).group(1))
    new = None
    try:
        project = write_project(tmp_path / "p", "- name: p\n  hosts: all\n  roles: [{name: a}]\n")
        assert run("validate", cwd=project).returncode == 0
        assert "1 commands served" in run("resident", "status").stdout
        plan_py = code / "erpprov" / "cli" / "commands" / "plan.py"
        plan_py.write_text(plan_py.read_text() + "\n# edited\n")
        assert run("validate", cwd=project).returncode == 0
        new = _answering(lambda: run("resident", "status"))
        assert new != old
        assert "0 commands served" in run("resident", "status").stdout  # the edited code ran in its own process
        assert _gone(old), "the resident of the old code was not stopped"
    finally:
        for pid in (old, new):
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                assert _gone(pid)
    assert not list(runtime.glob("erpprov/*.sock"))


def test_a_command_starts_a_resident_for_the_next_without_its_secrets(tmp_path, runtime):
    """With no resident running, a command runs in its own process and starts one, detached, that
    serves the next command; the resident keeps nothing of the first command's environment but
    what decides the code it imports (a password there would outlive the command)."""
    env = {"XDG_RUNTIME_DIR": str(runtime), "ERPPROV_RESIDENT": "auto", "PGPASSWORD": "resident-must-not-keep-this"}
    project = write_project(tmp_path / "p", "- name: p\n  hosts: all\n  roles: [{name: a}]\n")
    first = erpprov(project, "validate", env=env)
    assert first.returncode == 0, str(first)
    pid = _answering(lambda: erpprov(tmp_path, "resident", "status", env=env))
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"XDG_RUNTIME_DIR=" in environ and b"resident-must-not-keep-this" not in environ
        second = erpprov(project, "validate", env=env)
        assert _served(env, tmp_path) == 1, "the next command was not served"
        assert (second.returncode, second.stdout, second.stderr) == (first.returncode, first.stdout, first.stderr)
        manual = erpprov(project, "validate", env={**env, "ERPPROV_RESIDENT": "manual"})
        assert manual.returncode == 0 and _served(env, tmp_path) == 2  # manual uses a running one
    finally:
        erpprov(tmp_path, "resident", "stop", env=env)
        assert _gone(pid)


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


def test_a_message_that_is_no_message_is_dropped_and_serving_goes_on(tmp_path, runtime, resident):
    """Bytes that are no message (a stray client of the same user, a truncated write) end that
    connection only: the resident neither dies nor stops answering."""
    import socket
    import struct

    from erpprov.launch import connect

    served = _served(resident, tmp_path)
    (path,) = runtime.glob("erpprov/*.sock")
    for body, announced in ((b"\xff\x00garbage", 9), (b"[" * 64, 64), (b"", 0), (b"\xe9", 5)):
        sock = connect(str(path), timeout=10)
        assert sock is not None
        with sock:
            sock.sendall(struct.pack("!I", announced) + body)  # the last: fewer bytes than announced
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""  # closed without an answer
    assert _served(resident, tmp_path) == served  # still answering, nothing run


def test_the_entry_point_imports_nothing_heavy_before_it_asks_the_resident():
    """The client's whole cost is the interpreter and this module: no click, no erpprov.cli."""
    probe = "import sys, erpprov.launch\nprint(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in " \
            "('click', 'psycopg', 'pydantic', 'yaml', 'jinja2') or m.startswith('erpprov.'))))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO,
                         env=cli_environ())
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["erpprov.launch"]


def test_a_killed_client_ends_its_command(tmp_path, resident):
    """Kill the client (SIGKILL: nothing to pass on) and its command ends too, as it would in the
    client's own process, instead of running on unseen. Here the command is stuck writing to a
    pipe nobody reads; its end shows as the pipe losing its last writer."""
    read_end, write_end = os.pipe()
    before = _served(resident, tmp_path)
    try:
        client = subprocess.Popen([sys.executable, "-m", "erpprov", "schema"], cwd=tmp_path,
                                  env={**cli_environ(resident), "NO_COLOR": "1"}, stdin=subprocess.DEVNULL,
                                  stdout=write_end, stderr=subprocess.DEVNULL)
        os.close(write_end)
        deadline = time.monotonic() + 60
        while _served(resident, tmp_path) == before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _served(resident, tmp_path) == before + 1, "the resident did not take the command"
        poller = select.poll()
        poller.register(read_end, select.POLLHUP)
        assert not any(event & select.POLLHUP for _, event in poller.poll(1000)), \
            "the command should be blocked on its full pipe"
        client.kill()
        client.wait(timeout=30)
        hung_up = any(event & select.POLLHUP for _, event in poller.poll(30_000))
        assert hung_up, "the command went on after its client was killed"
    finally:
        os.close(read_end)


def test_starts_at_the_same_moment_leave_one_resident(tmp_path, runtime):
    """Several commands at once each start a resident when none runs (a Makefile's -j, a CI
    matrix on one machine): one resident comes up, and every start reports that one."""
    env = {**cli_environ({"XDG_RUNTIME_DIR": str(runtime)}), "ERPPROV_RESIDENT": "manual"}
    starts = [subprocess.Popen([sys.executable, "-m", "erpprov", "resident", "start", "--idle", "5"], cwd=tmp_path,
                               env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
              for _ in range(4)]
    said = [finish(start, timeout=120) for start in starts]
    pids = set()
    try:
        for out in said:
            assert out.returncode == 0, str(out)
            pids.add(int(re.search(r"pid (\d+)", out.stdout).group(1)))
        assert len(pids) == 1, said
        assert len(list(runtime.glob("erpprov/*.sock"))) == 1
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
            assert _gone(pid)
