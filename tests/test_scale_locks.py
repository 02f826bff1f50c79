"""Thousands of tables on a server with few lock slots: the scratch build and the reprint check
run in batches that fit the server's lock table. The cluster here has the smallest
max_locks_per_transaction PostgreSQL allows and few connections, so a single transaction
overflows its lock table ("out of shared memory") after some 570 scratch tables: the test needs
hundreds of tables where a default server would need thousands."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest

from erpprov.core.tables import CHECK, TablesState
from erpprov.drivers.embedded import LocalCluster, free_port
from erpprov.postgres.locks import batched, lock_budget
from erpprov.state import canon
from erpprov.state.table_catalog import inspect_tables
from tests.helpers import reachable_tempdir
from tests.tables.tablekit import plan, tables

PASSWORD = "small-lock-table"


@pytest.fixture(scope="module")
def small() -> Iterator[psycopg.Connection]:
    base = reachable_tempdir()
    cluster = LocalCluster(base / "data", free_port())
    try:
        cluster.init(PASSWORD, durable=False)
        with open(cluster.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("max_locks_per_transaction = 10\nmax_connections = 20\n")
        cluster.start()
        with psycopg.connect(host=cluster.host, port=cluster.port, user="postgres", password=PASSWORD,
                             dbname="postgres", autocommit=True) as conn:
            yield conn
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)


def test_the_budget_is_a_share_of_the_servers_lock_table(small):
    assert lock_budget(small) == 10 * 20 // 4
    assert list(batched([3, 3, 3, 9, 1], lambda n: n, 6)) == [[3, 3], [3], [9], [1]]


def test_a_scratch_build_larger_than_the_lock_table_runs_in_batches(small):
    declared = tables("\n".join(
        f"- name: t{i}\n  columns: [{{name: a, type: integer}}, {{name: b, type: text}}]\n"
        f"  checks: [{{expression: a > {i}}}]\n"
        + ("  indexes: [{columns: [lower(b)], unique: true}]\n" if i % 100 == 0 else "")
        for i in range(800)))
    desired = canon.canonicalize(small, declared)
    assert len(desired.tables) == 800
    checks = [c for c in desired.tables[("public", "t799")].constraints if c.kind == CHECK]
    assert [(c.name, c.definition) for c in checks] == [("t799_a_check", "CHECK ((a > 799))")]
    assert [i.name for i in desired.tables[("public", "t700")].indexes] == ["t700_lower_idx"]
    assert not small.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'erpprov_scratch%'").fetchone()[0]


def test_reprints_of_more_tables_than_the_lock_table_holds_settle(small):
    declared = tables("\n".join(
        f"- name: r{i}\n  columns: [{{name: a, type: integer}}, {{name: b, type: text}}]\n"
        f"  checks: [{{name: r{i}_positive, expression: a > 0}}]"
        for i in range(250)))
    for batch in batched(range(250), lambda _: 1, 40):  # the live tables, in transactions that fit
        with small.transaction():
            for i in batch:
                small.execute(f"CREATE TABLE r{i} (a integer CONSTRAINT r{i}_positive CHECK (a > 0), b text)")
    live = inspect_tables(small)
    # the desired text as a server could print it differently ('a > 0' for '(a > 0)'): only the
    # reprint on a copy of each live table shows they are the same
    desired = canon.canonicalize(small, declared, live)
    respelled = TablesState({key: replace(table, constraints=tuple(
        replace(c, definition="CHECK (a > 0)") if c.kind == CHECK else c for c in table.constraints))
        for key, table in desired.tables.items()})
    settled = canon._settle_reprints(small, respelled, live, lock_budget(small))
    assert settled == desired
    assert not plan(small, declared).actions  # converged
