"""Thousands of tables on a server with few lock slots: the scratch build, the reprint check and
the apply run in batches that fit the server's lock table. The cluster here has the smallest
max_locks_per_transaction PostgreSQL allows and few connections, so a single transaction
overflows its lock table ("out of shared memory") after some 400 scratch tables: the test needs
hundreds of tables where a default server would need thousands."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import psycopg
import pytest

from erpprov.core.tables import CHECK, TablesState
from erpprov.postgres.locks import batched, lock_budget
from erpprov.state import canon
from erpprov.state.table_catalog import inspect_tables
from tests.conftest import local_cluster
from tests.tables.tablekit import apply, plan, tables

PASSWORD = "small-lock-table"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Callable[[str], psycopg.Connection]]:
    """Connections to a cluster with a small lock table, by database."""
    settings = ("max_locks_per_transaction = 10\nmax_connections = 8\n"
                "fsync = off\nsynchronous_commit = off\n")  # the split apply commits often
    with local_cluster(PASSWORD, settings) as server:
        yield lambda dbname: psycopg.connect(host=server.host, port=server.port, user="postgres", password=PASSWORD,
                                             dbname=dbname, autocommit=True)


@pytest.fixture(scope="module")
def small(cluster: Callable[[str], psycopg.Connection]) -> Iterator[psycopg.Connection]:
    with cluster("postgres") as conn:
        yield conn


def test_the_budget_is_a_share_of_the_servers_lock_table(small):
    assert lock_budget(small) == 10 * 8 // 4
    assert list(batched([3, 3, 3, 9, 1], lambda n: n, 6)) == [[3, 3], [3], [9], [1]]


def test_more_tables_than_the_lock_table_holds_plan_apply_and_converge(small, cluster):
    declared = tables("\n".join(
        f"- name: t{i}\n  columns: [{{name: a, type: integer}}, {{name: b, type: text}}]\n"
        f"  checks: [{{expression: a > {i}}}]\n"
        + ("  indexes: [{columns: [lower(b)], unique: true}]\n" if i % 100 == 0 else "")
        for i in range(500)))
    small.execute("CREATE DATABASE scale_apply")  # dropped whole: dropping its tables one by one would overflow
    with cluster("scale_apply") as conn:
        warnings: list[str] = []
        apply(conn, plan(conn, declared).actions, warnings.append)  # one transaction would overflow
        assert len(warnings) == 1 and "transactions, in order" in warnings[0]
        assert not plan(conn, declared).actions  # its scratch build, too, is larger than the lock table
        live = inspect_tables(conn)
    small.execute("DROP DATABASE scale_apply")
    assert len(live.tables) == 500
    checks = [c for c in live.tables[("public", "t499")].constraints if c.kind == CHECK]
    assert [(c.name, c.definition) for c in checks] == [("t499_a_check", "CHECK ((a > 499))")]
    assert [i.name for i in live.tables[("public", "t400")].indexes] == ["t400_lower_idx"]


def test_reprints_of_more_tables_than_the_lock_table_holds_settle(small):
    declared = tables("\n".join(
        f"- name: r{i}\n  columns: [{{name: a, type: integer}}, {{name: b, type: text}}]\n"
        f"  checks: [{{name: r{i}_positive, expression: a > 0}}]"
        for i in range(150)))
    for batch in batched(range(150), lambda _: 1, 40):  # the live tables, in transactions that fit
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
