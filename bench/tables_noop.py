"""Benchmark: the no-op plan of the table reconciler at N tables, against pg_dump --schema-only.

    python bench/tables_noop.py [N] [--checks] [--runs 5]

Starts its own throwaway cluster (bench.server.throwaway_server), creates N tables of 9 columns,
2 indexes and 1 foreign key each (with --checks, also one CHECK per table, which puts every table
into the scratch build), then times inspect_tables + canonicalize + diff_tables when nothing
differs (median of --runs), counts the SQL statements sent, and times the cluster's own
`pg_dump --schema-only` of the same database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.server import throwaway_server
from erpprov.core import model
from erpprov.diff.tables import diff_tables
from erpprov.state.canon import canonicalize
from erpprov.state.table_catalog import inspect_tables


def make_tables(n: int, checks: bool) -> list[model.Table]:
    result = []
    for i in range(n):
        spec = {
            "name": f"t{i:05d}",
            "columns": [
                {"name": "id", "type": "bigserial", "primary_key": True},
                {"name": "parent_id", "type": "bigint"},
                {"name": "code", "type": "varchar(40)", "nullable": False},
                {"name": "title", "type": "text"},
                {"name": "amount", "type": "numeric(12,2)", "default": "0"},
                {"name": "status", "type": "varchar(20)", "nullable": False, "default": "'new'"},
                {"name": "active", "type": "boolean", "default": "true"},
                {"name": "created_at", "type": "timestamptz", "default": "now()"},
                {"name": "data", "type": "jsonb"},
            ],
            "foreign_keys": [{"columns": ["parent_id"], "references": {"table": f"t{(i - 1) % n:05d}"}}],
            "indexes": [{"columns": ["parent_id"]}, {"columns": ["status", "created_at DESC"]}],
        }
        if checks:
            spec["checks"] = [{"expression": "status IN ('new', 'open', 'closed')"}]
        result.append(model.Table.model_validate(spec))
    return result


class Counter:
    """Counts statements: psycopg sends every query through Cursor.execute."""

    def __init__(self) -> None:
        self.count = 0
        self._original = psycopg.Cursor.execute

    def __enter__(self) -> Counter:
        original = self._original

        def execute(cursor, *args, **kwargs):
            self.count += 1
            return original(cursor, *args, **kwargs)

        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        psycopg.Cursor.execute = self._original  # type: ignore[method-assign]


def setup(conn: psycopg.Connection, tables: list[model.Table]) -> None:
    live = inspect_tables(conn)
    diff = diff_tables(canonicalize(conn, tables, live), live, database=conn.info.dbname)
    # one transaction per phase keeps the setup quick; the benchmark is the no-op that follows
    actions = sorted(diff.actions, key=lambda a: a.phase)
    for phase in sorted({a.phase for a in actions}):
        with conn.transaction():
            for action in actions:
                if action.phase == phase:
                    for statement in action.sql:
                        conn.execute(statement.text)
    conn.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=1000)
    parser.add_argument("--checks", action="store_true", help="one CHECK per table (all in the scratch build)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with throwaway_server() as server:
        with server.connect() as admin:
            admin.execute("CREATE DATABASE bench")
        tables = make_tables(args.n, args.checks)
        with server.connect("bench") as conn:
            started = time.perf_counter()
            setup(conn, tables)
            print(f"setup: {args.n} tables created in {time.perf_counter() - started:.1f}s")

            timings: dict[str, list[float]] = {"inspect": [], "canonicalize": [], "diff": [], "total": []}
            for _ in range(args.runs):
                with Counter() as counter:
                    t0 = time.perf_counter()
                    live = inspect_tables(conn)
                    t1 = time.perf_counter()
                    desired = canonicalize(conn, tables, live)
                    t2 = time.perf_counter()
                    diff = diff_tables(desired, live, database="bench")
                    t3 = time.perf_counter()
                assert not diff.actions, f"not a no-op: {len(diff.actions)} actions"
                for key, value in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                    timings[key].append(value)
            with Counter() as only_inspect:
                inspect_tables(conn)

        dump = [str(server.bindir / "pg_dump"), "--schema-only", "-d", "bench", "-f", os.devnull]
        dumps = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run(dump, env=server.env(), check=True)
            dumps.append(time.perf_counter() - t0)

        print(f"no-op plan of {args.n} tables (9 columns, 2 indexes, 1 FK each{', 1 CHECK' if args.checks else ''}), "
              f"median of {args.runs}:")
        for key, values in timings.items():
            print(f"  {key:<13} {statistics.median(values) * 1000:8.1f} ms")
        print(f"  statements sent: {counter.count} per plan ({only_inspect.count} for inspect_tables)")
        print(f"  pg_dump --schema-only: {statistics.median(dumps) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
