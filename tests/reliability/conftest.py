"""Helpers shared by the reliability suite: the CLI in a bounded subprocess, throwaway projects,
dedicated clusters, and catalog snapshots to prove that nothing else changed."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from erpprov.drivers.embedded import LocalCluster, free_port
from tests.helpers import reachable_tempdir

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
TIMED_OUT = -999  # returncode of a run that was killed at its timeout


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.returncode == TIMED_OUT

    def __str__(self) -> str:  # shown by failed asserts
        return (f"rc={self.returncode} ({self.seconds:.1f}s)\nstdout: {self.stdout[-1500:]}\n"
                f"stderr: {self.stderr[-1500:]}")


def _limits(mem: int | None, umask: int | None = None):  # type: ignore[no-untyped-def]
    def apply() -> None:
        if umask is not None:
            os.umask(umask)
        os.setsid()  # its own process group, so a timeout kills it and anything it started
        if mem is not None:
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    return apply


def cli_environ(env: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of a CLI run: ours, ``env`` over it, without ``drop``, this checkout importable."""
    environ = {**os.environ, **(env or {})}
    for key in drop:
        environ.pop(key, None)
    environ["PYTHONPATH"] = str(REPO) + os.pathsep + environ.get("PYTHONPATH", "")
    return environ


def erpprov(cwd: Path, *args: str, timeout: float = 60, mem: int | None = 1024 * MiB,
            env: dict[str, str] | None = None, drop_env: tuple[str, ...] = (), umask: int | None = None) -> Run:
    """`python -m erpprov ARGS` in ``cwd``, killed after ``timeout`` seconds, address space capped."""
    environ = cli_environ(env, drop_env)
    environ.setdefault("NO_COLOR", "1")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "erpprov", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environ, preexec_fn=_limits(mem, umask))
    return finish(proc, timeout, started=started)


def erpprov_many(jobs: list[tuple[Path, tuple[str, ...], float]], mem: int = 1024 * MiB, parallel: int = 3,
                 env: dict[str, str] | None = None) -> list[Run]:
    """Many CLI runs through forkcli.py (one import, one fork per run); each run is bounded by its
    timeout and ``mem``. The whole batch is bounded too."""
    import json

    request = {"parallel": parallel,
               "jobs": [{"cwd": str(cwd), "args": list(args), "timeout": timeout, "mem": mem}
                        for cwd, args, timeout in jobs]}
    hang_timeout = sum(t for _, _, t in jobs) / parallel + max(t for _, _, t in jobs) + 60
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("forkcli.py"))], input=json.dumps(request),
                         capture_output=True, text=True, timeout=hang_timeout, env=cli_environ(env), check=True)
    return [Run(r["returncode"], r["stdout"], r["stderr"], r["seconds"]) for r in json.loads(out.stdout)]


def assert_clean_error(run: Run, *fragments: str) -> None:
    """erpprov's own error: exit 1, `error: ...` first on stderr, no traceback, before its hang timeout."""
    assert not run.timed_out, f"erpprov did not finish in time: {run}"
    assert run.returncode == 1, str(run)
    assert run.stderr.startswith("error: "), str(run)
    assert "Traceback" not in run.stderr + run.stdout, str(run)
    first = run.stderr.splitlines()[0]
    for fragment in fragments:
        assert fragment.lower() in run.stderr.lower(), f"{fragment!r} not in: {run}"
    assert len(first) < 2000, "the first line of the error is not a readable one-liner"


def write_project(root: Path, playbook: str | bytes, host_vars: dict[str, Any] | None = None,
                  env_file: str | None = None, dedent: bool = True) -> Path:
    """A project directory: inventory.yaml (one host `localhost` in group `dev`) + playbooks/dev.yaml."""
    root.mkdir(parents=True, exist_ok=True)
    host = {"driver": "external", **(host_vars or {})}
    (root / "inventory.yaml").write_text(yaml.safe_dump({"all": {"children": {"dev": {"hosts": {"localhost": host}}}}}))
    (root / "playbooks").mkdir(exist_ok=True)
    path = root / "playbooks" / "dev.yaml"
    if isinstance(playbook, bytes):
        path.write_bytes(playbook)
    else:
        path.write_text(textwrap.dedent(playbook) if dedent else playbook, encoding="utf-8")
    if env_file is not None:
        (root / ".env").write_text(env_file)
    return root


def server_vars(pg: Any, password_from_env: bool = True) -> dict[str, Any]:
    """Host variables reaching the test server ``pg``; the password comes from the environment."""
    return {"driver": "external", "pg_host": pg.host, "pg_port": pg.port, "pg_user": pg.user,
            "pg_password": "{{ env.RELIABILITY_PG_PASSWORD }}" if password_from_env else pg.password,
            "pg_connect_timeout": 5}


def pg_env(pg: Any) -> dict[str, str]:
    return {"RELIABILITY_PG_PASSWORD": pg.password}


def unique(prefix: str = "r") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# --- catalog snapshots ---------------------------------------------------------------------------

CLUSTER_SNAPSHOT = {
    "roles": "SELECT rolname, rolsuper, rolcanlogin, rolcreatedb, rolcreaterole, rolconnlimit, "
             "rolvaliduntil::text FROM pg_roles ORDER BY 1",
    "databases": "SELECT datname, pg_get_userbyid(datdba), datconnlimit, datacl::text FROM pg_database ORDER BY 1",
    "members": "SELECT roleid::regrole::text, member::regrole::text, admin_option FROM pg_auth_members ORDER BY 1, 2",
    "role_settings": "SELECT setdatabase, setrole, setconfig::text FROM pg_db_role_setting ORDER BY 1, 2",
    "shdescriptions": "SELECT objoid, classoid::regclass::text, description FROM pg_shdescription ORDER BY 1, 2",
}
DATABASE_SNAPSHOT = {
    "namespaces": "SELECT nspname, pg_get_userbyid(nspowner), nspacl::text FROM pg_namespace ORDER BY 1",
    "classes": "SELECT n.nspname, c.relname, c.relkind, c.relacl::text FROM pg_class c "
               "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname !~ '^pg_toast' ORDER BY 1, 2",
    "attributes": "SELECT a.attrelid::regclass::text, a.attname, format_type(a.atttypid, a.atttypmod) "
                  "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n "
                  "ON n.oid = c.relnamespace WHERE a.attnum > 0 AND NOT a.attisdropped AND n.nspname !~ '^pg_' "
                  "AND n.nspname <> 'information_schema' ORDER BY 1, 2",
    "extensions": "SELECT extname, extversion FROM pg_extension ORDER BY 1",
    "functions": "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                 "WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ORDER BY 1",
    "descriptions": "SELECT classoid::regclass::text, objsubid, description FROM pg_description "
                    "WHERE objoid >= 16384 ORDER BY 1, 2, 3",
}


def snapshot(connect: Any, databases: list[str]) -> dict[str, Any]:
    """Everything a hostile value could have touched: cluster catalogs, and each database's objects."""
    result: dict[str, Any] = {}
    with connect("postgres") as conn:
        for key, query in CLUSTER_SNAPSHOT.items():
            result[key] = [tuple(r) for r in conn.execute(query)]
        existing = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    for db in databases:
        if db not in existing:
            continue
        with connect(db) as conn:
            for key, query in DATABASE_SNAPSHOT.items():
                result[f"{db}:{key}"] = [tuple(r) for r in conn.execute(query)]
    return result


def diff_snapshots(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[set[Any], set[Any]]]:
    """Per catalog: (rows that disappeared, rows that appeared)."""
    changes = {}
    for key in sorted(set(before) | set(after)):
        old, new = set(before.get(key, [])), set(after.get(key, []))
        if old != new:
            changes[key] = (old - new, new - old)
    return changes


# --- dedicated clusters --------------------------------------------------------------------------

class OwnCluster:
    """A LocalCluster that belongs to one test (never the session's `pg_cluster`)."""

    def __init__(self, password: str = "own-cluster-secret", conf: str = "") -> None:
        self.base = reachable_tempdir("erpprov-rel-")
        self.password = password
        self.cluster = LocalCluster(self.base / "data", free_port())
        self.cluster.init(password)
        if conf:
            with open(self.cluster.data_dir / "postgresql.conf", "a", encoding="utf-8") as handle:
                handle.write("\n" + conf + "\n")

    @property
    def port(self) -> int:
        return self.cluster.port

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", password=self.password,
                               dbname=dbname, autocommit=True, connect_timeout=5, **kwargs)

    def host_vars(self, **extra: Any) -> dict[str, Any]:
        return {"driver": "external", "pg_host": "127.0.0.1", "pg_port": self.port, "pg_user": "postgres",
                "pg_password": "{{ env.OWN_PG_PASSWORD }}", "pg_connect_timeout": 3, **extra}

    @property
    def env(self) -> dict[str, str]:
        return {"OWN_PG_PASSWORD": self.password}

    def close(self) -> None:
        try:
            self.cluster.stop()
        except Exception:  # cleanup must go on
            pass
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def own_cluster() -> Iterator[OwnCluster]:
    own = OwnCluster()
    try:
        own.cluster.start()
        yield own
    finally:
        own.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers",
                            "bad_input(*kinds): the bad-input kinds (tests/reliability/kinds.py) a test covers")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    kinds = {k for item in getattr(terminalreporter.config, "_reliability_items", [])
             for mark in item.iter_markers("bad_input") for k in mark.args}
    if kinds:
        terminalreporter.write_line(f"reliability: {len(kinds)} kinds of bad input covered by the collected tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    config._reliability_items = list(items)  # type: ignore[attr-defined]


def start_erpprov(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`erpprov ARGS` started in the background, in its own process group (so we kill only it)."""
    return subprocess.Popen([sys.executable, "-m", "erpprov", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**cli_environ(env), "NO_COLOR": "1"},
                            start_new_session=True)


def finish(proc: subprocess.Popen[str], timeout: float = 120, started: float | None = None) -> Run:
    """Wait for ``proc`` at most ``timeout`` seconds, then SIGKILL its process group (TIMED_OUT).
    ``seconds`` counts from ``started`` (a time.monotonic() value), or from now."""
    if started is None:
        started = time.monotonic()
    try:
        out, err = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        code = TIMED_OUT
    return Run(code, out, err, time.monotonic() - started)


def assert_converged(cwd: Path, env: dict[str, str] | None = None, *args: str) -> None:
    """The convergence check: `plan --detailed-exitcode` exits 0 (no changes)."""
    run = erpprov(cwd, "plan", "--detailed-exitcode", *args, env=env, mem=None)
    assert run.returncode == 0, f"the plan is not empty: {run}"
