"""What only the reliability suite uses: many CLI runs at once (forkcli.py), dedicated clusters,
catalog snapshots to prove that nothing else changed, and the bad-input kinds it counts. The CLI
runner and project builders the whole suite shares are in tests/helpers.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from erpprov.drivers.embedded import LocalCluster, free_port
from tests.helpers import MiB, Run, cli_environ, reachable_tempdir


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


def waiting_for_the_lock(server: Any, pids: list[int]) -> set[int]:
    """Which of the erpprov processes ``pids`` are polling for the apply lock in database postgres
    (erpprov tries the advisory lock again and again, so it never shows as an ungranted lock in
    pg_locks). ``server.connect(dbname)`` reaches the server."""
    with server.connect("postgres") as conn:
        rows = conn.execute("""
            SELECT application_name FROM pg_stat_activity
            WHERE datname = 'postgres' AND query LIKE '%%pg_try_advisory_lock%%'
              AND application_name LIKE 'erpprov apply%%'
        """).fetchall()
    return {pid for pid in pids for (name,) in rows if name.startswith(f"erpprov apply pid={pid} ")}
