"""Command-line options that had never been run: logs, psql, --limit/--host, schema -o, plan --forks,
colour, and hazards refused or allowed by `apply` flags. Each goes through the real `erpprov`
process against a real server, as a user meets it."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from erpprov.drivers.embedded import free_port
from tests.helpers import (
    Run,
    assert_clean_error,
    assert_converged,
    cli_environ,
    erpprov,
    finish,
    pg_env,
    reachable_tempdir,
    server_vars,
    start_erpprov,
    write_project,
)


def _ok(run: Run) -> Run:
    assert run.returncode == 0, str(run)
    return run


# --- the local driver: logs and psql -------------------------------------------------------------

LOCAL_PASSWORD = "local-driver-secret"


@pytest.fixture(scope="module")
def local_project() -> Iterator[Path]:
    """A project whose embedded cluster `erpprov apply` created (driver: local), shared by the
    logs and psql tests: initdb is the slow part, the tests only read from it."""
    root = reachable_tempdir("erpprov-cli-local-")
    host = {"driver": "local", "pg_host": "127.0.0.1", "pg_port": free_port(), "pg_user": "postgres",
            "pg_password": "{{ env.LOCAL_PW }}"}
    play = [{"name": "local", "hosts": "dev", "container": {"name": "clidb", "data_dir": "data/pg"},
             "databases": [{"name": "clidb"}]}]
    write_project(root, yaml.safe_dump(play), host)
    env = {"LOCAL_PW": LOCAL_PASSWORD}
    try:
        _ok(erpprov(root, "apply", env=env, timeout=180, mem=None))
        assert_converged(root, env)
        yield root
    finally:
        erpprov(root, "destroy", "--volumes", "--yes", env=env, timeout=120, mem=None)
        shutil.rmtree(root, ignore_errors=True)


def _local_env() -> dict[str, str]:
    return {"LOCAL_PW": LOCAL_PASSWORD}


def test_logs_tail_prints_exactly_the_last_lines(local_project: Path) -> None:
    logged = (local_project / "data" / "pg" / "log" / "server.log").read_text().splitlines()
    one = _ok(erpprov(local_project, "logs", "-n", "1", env=_local_env()))
    three = _ok(erpprov(local_project, "logs", "--tail", "3", env=_local_env()))
    assert len(one.stdout.splitlines()) == 1 and len(three.stdout.splitlines()) == 3, (one, three)
    assert three.stdout.splitlines()[-1] == one.stdout.splitlines()[0]  # both end at the log's end
    everything = _ok(erpprov(local_project, "logs", "-n", "1000", env=_local_env()))
    assert "database system is ready to accept connections" in everything.stdout
    assert everything.stdout.splitlines() == logged[-1000:]


def test_logs_follow_prints_new_lines_until_stopped(local_project: Path) -> None:
    proc = start_erpprov(local_project, "logs", "-f", "-n", "2", env=_local_env())
    try:
        seen = _read_until(proc, "", 60)  # the two tail lines come first
        assert seen, "logs -f printed nothing"
        # Something new for the server to log: a failed login (marker as the user name).
        marker = f"follow_{uuid.uuid4().hex[:8]}"
        port = yaml.safe_load((local_project / "inventory.yaml").read_text())["all"]["children"]["dev"]["hosts"][
            "localhost"]["pg_port"]
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host="127.0.0.1", port=port, user=marker, password="wrong", dbname="postgres",
                            connect_timeout=5)
        seen += _read_until(proc, marker, 60)
        assert marker in seen, seen
        assert proc.poll() is None, "logs -f exited on its own"
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
        run = finish(proc, timeout=30)
    assert not run.timed_out and run.returncode == 130, str(run)
    assert "Traceback" not in run.stderr, str(run)


def _read_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> str:
    """Lines of ``proc``'s stdout until one holds ``needle`` (any line for ""), at most ``timeout`` s."""
    assert proc.stdout is not None
    got = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break  # it exited
            got += line
            if needle in line:
                return got
    return got


def test_psql_runs_what_stdin_feeds_it_on_the_local_cluster(local_project: Path) -> None:
    run = erpprov(local_project, "psql", env=_local_env(),
                  input="SELECT current_database() || '/' || current_user || '/' || 40 + 2;\n")
    assert run.returncode == 0, run.stderr
    assert "clidb/postgres/42" in run.stdout  # the play's first database, the admin user
    failing = erpprov(local_project, "psql", "--db", "postgres", env=_local_env(),
                      input="\\set ON_ERROR_STOP on\nSELECT nonsense_column;\n")
    assert failing.returncode == 3 and "nonsense_column" in failing.stderr, failing  # psql's own exit code


def test_psql_on_an_external_server_with_db_and_user(tmp_path: Path, pg: Any) -> None:
    role = f"psql_{uuid.uuid4().hex[:8]}"
    play = [{"name": "p", "hosts": "dev", "roles": [{"name": role, "login": True, "password": "{{ env.ROLE_PW }}"}],
             "databases": [{"name": pg.dbname, "grants": [{"to": role, "privileges": ["CONNECT"]}]}]}]
    root = write_project(tmp_path, yaml.safe_dump(play), server_vars(pg))
    env = {**pg_env(pg), "ROLE_PW": "role-pw-1"}
    _ok(erpprov(root, "apply", env=env, mem=None))
    query = "SELECT 'who=' || current_user || ' db=' || current_database();\n"
    run = erpprov(root, "psql", "--user", role, env={**env, "PGPASSWORD": "role-pw-1"}, input=query)
    # Connecting as another role must not send the admin's password: the role's own comes from
    # the user's environment (or ~/.pgpass, or psql's prompt on a terminal).
    assert run.returncode == 0 and f"who={role} db={pg.dbname}" in run.stdout, run
    admin = erpprov(root, "psql", "--db", "postgres", env=env, input=query)
    assert admin.returncode == 0 and "who=postgres db=postgres" in admin.stdout, admin
    assert_converged(root, env)


# --- choosing hosts: -l/--limit and --host ---------------------------------------------------------

def _two_host_project(root: Path, pg: Any, play: list[dict[str, Any]]) -> Path:
    """Hosts `a` (the test server) and `b` (a port nothing listens on), both in group dev."""
    write_project(root, yaml.safe_dump(play), server_vars(pg))
    hosts = {"a": server_vars(pg), "b": {**server_vars(pg), "pg_port": free_port()}}
    (root / "inventory.yaml").write_text(yaml.safe_dump({"all": {"children": {"dev": {"hosts": hosts}}}}))
    return root


def test_limit_and_host_choose_one_of_several_hosts(tmp_path: Path, pg: Any) -> None:
    play = [{"name": "p", "hosts": "dev", "databases": [{"name": pg.dbname, "tables": [
        {"name": "items", "columns": [{"name": "id", "type": "integer"}]}]}]}]
    root = _two_host_project(tmp_path, pg, play)
    env = pg_env(pg)

    everyone = erpprov(root, "plan", env=env, mem=None)
    assert everyone.returncode == 1 and "error: [b] cannot connect" in everyone.stderr, str(everyone)
    limited = erpprov(root, "plan", "-l", "a", "--detailed-exitcode", env=env, mem=None)
    assert limited.returncode == 2, str(limited)
    assert "a (driver: external)" in limited.stdout and "b (driver" not in limited.stdout
    assert f"+ table.{pg.dbname}.public.items" in limited.stdout
    _ok(erpprov(root, "apply", "--limit", "a:!b", env=env, mem=None))
    with pg.connect() as conn:
        conn.execute("INSERT INTO items SELECT generate_series(1, 5)")

    # One host at a time for the single-host commands: naming none is refused, clearly.
    restore_args = ("restore", str(tmp_path / "a.sql"), "--into", f"{pg.dbname}_copy")
    for args in (("backup",), ("export",), restore_args):
        assert_clean_error(erpprov(root, *args, env=env, mem=None), "several hosts match (a, b)", "--host")
    assert_clean_error(erpprov(root, "backup", "--host", "c", env=env, mem=None), "no play targets host 'c'")

    backup = _ok(erpprov(root, "backup", "--host", "a", "-o", str(tmp_path / "a.sql"), env=env, mem=None))
    assert f"backed up {pg.dbname} on a to" in backup.stdout
    exported = _ok(erpprov(root, "export", "--host", "a", "--db", pg.dbname, env=env, mem=None))
    assert exported.stdout.startswith("# Exported by erpprov from a.\n")
    assert [t["name"] for t in yaml.safe_load(exported.stdout)[0]["databases"][0]["tables"]] == ["items"]
    restored = _ok(erpprov(root, *restore_args[:2], "--host", "a", *restore_args[2:], env=env, mem=None))
    assert f"into the new database {pg.dbname}_copy on a" in restored.stdout
    with pg.connect(f"{pg.dbname}_copy") as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 5
    # -l narrows the single-host commands as well
    again = _ok(erpprov(root, "backup", "-l", "a", "-o", str(tmp_path / "b.sql"), env=env, mem=None))
    assert "on a to" in again.stdout
    assert_converged(root, env, "-l", "a")


# --- schema -o ------------------------------------------------------------------------------------

def test_schema_output_writes_the_same_schema_as_stdout(tmp_path: Path) -> None:
    printed = _ok(erpprov(tmp_path, "schema"))
    written = _ok(erpprov(tmp_path, "schema", "-o", "schema.json"))
    assert written.stdout == ""
    document = json.loads((tmp_path / "schema.json").read_text())
    assert (tmp_path / "schema.json").read_text() == printed.stdout
    assert "container" in json.dumps(document) and document.get("type") == "array"


# --- plan --forks ---------------------------------------------------------------------------------

class RefusingServer:
    """A loopback listener that keeps each connection waiting ``hold`` seconds, then refuses it with
    a PostgreSQL error, counting how many connections it held at once: hosts planned in parallel
    are waiting on it at the same time."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.open = 0
        self.most = 0
        self.lock = threading.Lock()
        self.workers: list[threading.Thread] = []
        self.server = threading.Thread(target=self._serve, daemon=True)
        self.server.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with self.lock:
                self.open += 1
                self.most = max(self.most, self.open)
            worker = threading.Thread(target=self._refuse, args=(conn,), daemon=True)
            self.workers.append(worker)
            worker.start()

    def _refuse(self, conn: socket.socket) -> None:
        fields = b"SFATAL\0C53300\0Mheld and refused by the test\0\0"
        with conn:
            try:
                conn.settimeout(30)
                conn.recv(4096)  # the startup packet
                time.sleep(self.hold)
                waited = True
            except OSError:
                waited = False
            with self.lock:  # before the refusal: the client moves on only once it has it
                self.open -= 1
            if waited:
                with contextlib.suppress(OSError):
                    conn.sendall(b"E" + struct.pack("!I", len(fields) + 4) + fields)

    def close(self) -> None:
        # close() alone does not wake a thread blocked in accept() on Linux; shutdown() does. A
        # thread left behind would stop later tests that need a process with one thread (prefetch).
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for thread in [self.server, *self.workers]:
            thread.join(timeout=40)


@pytest.mark.parametrize("forks", [1, 2])
def test_plan_forks_bounds_the_hosts_planned_at_once(tmp_path: Path, forks: int) -> None:
    refusing = RefusingServer(hold=1.5)
    try:
        hosts = {f"h{i}": {"driver": "external", "pg_host": "127.0.0.1", "pg_port": refusing.port,
                           "pg_password": "x", "pg_connect_timeout": 30, "pg_sslmode": "disable"} for i in range(2)}
        root = write_project(tmp_path, yaml.safe_dump([{"name": "p", "hosts": "dev",
                                                        "databases": [{"name": "x"}]}]))
        (root / "inventory.yaml").write_text(yaml.safe_dump({"all": {"children": {"dev": {"hosts": hosts}}}}))
        run = erpprov(root, "plan", "--forks", str(forks), timeout=120, mem=None)
    finally:
        refusing.close()
    assert run.returncode == 1, str(run)
    assert all(f"error: [h{i}] cannot connect" in run.stderr and "held and refused by the test" in run.stderr
               for i in range(2)), str(run)
    # Each host waits 1.5 s on its connection: with --forks 2 both wait together, with --forks 1
    # the second connects only once the first was refused.
    assert refusing.most == forks, (refusing.most, str(run))


# --- colour ---------------------------------------------------------------------------------------

def _on_terminal(cwd: Path, *args: str, env: dict[str, str]) -> tuple[int, str]:
    """`erpprov ARGS` with its stdout on a pseudo-terminal, as in an interactive shell."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "erpprov", *args], cwd=cwd, stdout=slave,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the other end closed
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(master)
    return code, out.decode(errors="replace")


def test_colour_only_on_a_terminal_and_never_with_no_color(tmp_path: Path, pg: Any) -> None:
    role = f"colour_{uuid.uuid4().hex[:8]}"
    root = write_project(tmp_path, yaml.safe_dump([{"name": "p", "hosts": "dev", "roles": [{"name": role}]}]),
                         server_vars(pg))
    env = cli_environ(pg_env(pg), drop=("NO_COLOR",))
    code, coloured = _on_terminal(root, "plan", env=env)
    assert code == 0 and f"+ role.{role}" in coloured and "\x1b[" in coloured, coloured
    code, plain = _on_terminal(root, "plan", "--no-color", env=env)
    assert code == 0 and f"+ role.{role}" in plain and "\x1b[" not in plain, plain
    code, plain = _on_terminal(root, "plan", env={**env, "NO_COLOR": "1"})
    assert code == 0 and f"+ role.{role}" in plain and "\x1b[" not in plain, plain
    code, applied = _on_terminal(root, "apply", "--no-color", env=env)
    assert code == 0 and f"changed: [localhost] role {role}" in applied and "\x1b[" not in applied, applied
    piped = subprocess.run([sys.executable, "-m", "erpprov", "plan"], cwd=root, capture_output=True, text=True,
                           timeout=120, env=env, stdin=subprocess.DEVNULL, check=False)
    assert piped.returncode == 0 and "No changes." in piped.stdout and "\x1b[" not in piped.stdout + piped.stderr
    assert_converged(root, pg_env(pg))


# --- hazards refused by apply, then allowed by its flags ----------------------------------------

def test_drops_role_and_revokes_access_refused_then_allowed(tmp_path: Path, pg: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    group, member, doomed = f"grp_{tag}", f"mem_{tag}", f"doomed_{tag}"

    def play(after: bool) -> list[dict[str, Any]]:
        roles = [{"name": group}, {"name": member, "member_of": [] if after else [group], "prune": after},
                 {"name": doomed, "state": "absent" if after else "present"}]
        return [{"name": "p", "hosts": "dev", "roles": roles}]

    root = write_project(tmp_path, yaml.safe_dump(play(False)), server_vars(pg))
    env = pg_env(pg)
    _ok(erpprov(root, "apply", env=env, mem=None))
    write_project(root, yaml.safe_dump(play(True)), server_vars(pg))

    def live() -> tuple[bool, bool]:
        with pg.connect("postgres") as conn:
            exists = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (doomed,)).fetchone()[0]
            member_of = conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (member, group)).fetchone()[0]
        return bool(exists), bool(member_of)

    planned = erpprov(root, "plan", env=env, mem=None)
    assert f"- role.{doomed}  [drops_role]" in planned.stdout, str(planned)
    assert f"- membership.{member}.{group}  [revokes_access]" in planned.stdout, str(planned)
    refused = erpprov(root, "apply", env=env, mem=None)
    assert_clean_error(refused, "apply refuses", "nothing was changed", f"role.{doomed} (drops_role)",
                       f"membership.{member}.{group} (revokes_access)",
                       "--allow-hazard drops_role --allow-hazard revokes_access")
    assert live() == (True, True)
    half = erpprov(root, "apply", "--allow-hazard", "drops_role", env=env, mem=None)
    assert_clean_error(half, "apply refuses 1 hazardous change(s)", "--allow-hazard revokes_access")
    assert "(drops_role)" not in half.stderr and live() == (True, True)
    assert_clean_error(erpprov(root, "apply", "--allow-hazard", "drops_everything", env=env, mem=None),
                       "drops_everything", "hazards: deletes_data")
    _ok(erpprov(root, "apply", "--allow-hazard", "drops_role", "--allow-hazard", "revokes_access", env=env, mem=None))
    assert live() == (False, False)
    assert_converged(root, env)

    # --allow-destructive allows every kind at once.
    with pg.connect("postgres") as conn:
        conn.execute(f'CREATE ROLE "{doomed}"; GRANT "{group}" TO "{member}"')
    assert_clean_error(erpprov(root, "apply", env=env, mem=None), "apply refuses", "(drops_role)", "(revokes_access)")
    assert live() == (True, True)
    _ok(erpprov(root, "apply", "--allow-destructive", env=env, mem=None))
    assert live() == (False, False)
    assert_converged(root, env)
