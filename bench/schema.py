"""The whole-schema workload: erpprov's no-op plan beside `pg_dump --schema-only` of the same database.

    python -m bench --schema [--runs 5] [--out FILE]      (or python -m bench.schema)

The benchmark's 1,000 tables (bench/workload.py, created by `psql -f`), and in the same database
20 enum types, 200 functions (100 SQL functions, 100 PL/pgSQL trigger functions), 200 views (each
reading a table and calling a function) and 100 triggers. `erpprov export` writes the playbook;
a no-op `plan` of it must exit 0. Then the plan and the dump are timed alternately, run by run, so
that whatever else the machine does weighs on both alike: the ratio of the medians is the figure
(target at most 3×, goal 2×).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import Run, run
from bench.server import USER, Server, throwaway_server
from bench.workload import DATABASE, Workload, erpprov_inventory, sql_script

TABLES, VIEWS, FUNCTIONS, TRIGGERS, ENUMS = 1000, 200, 200, 100, 20
TARGET, GOAL = 3.0, 2.0


def schema_sql(work: Workload) -> str:
    """The views, functions, triggers and enums, over the workload's tables."""
    tables = work.tables
    lines = [f"\\connect {DATABASE}", "BEGIN;"]
    lines += [f"CREATE TYPE state_{i:02d} AS ENUM ('new', 'open', 'closed', 'v{i}');" for i in range(ENUMS)]
    plain = FUNCTIONS - TRIGGERS
    lines += [f"CREATE FUNCTION f{i:03d}(x integer, y integer DEFAULT {i}) RETURNS integer "
              f"LANGUAGE sql IMMUTABLE AS 'SELECT x + y';" for i in range(plain)]
    lines += [f"CREATE FUNCTION touch_{i:03d}() RETURNS trigger LANGUAGE plpgsql AS "
              f"$$BEGIN NEW.quantity := NEW.quantity + {i}; RETURN NEW; END$$;" for i in range(TRIGGERS)]
    lines += [f"CREATE VIEW v{i:03d} AS SELECT id, code, f{i % plain:03d}(quantity) AS q, "
              f"'new'::state_{i % ENUMS:02d} AS state FROM {tables[i % len(tables)]} WHERE active;"
              for i in range(VIEWS)]
    lines += [f"CREATE TRIGGER keep_{i:03d} BEFORE INSERT OR UPDATE OF quantity ON {tables[i * 7 % len(tables)]} "
              f"FOR EACH ROW WHEN (NEW.quantity >= 0) EXECUTE FUNCTION touch_{i:03d}();" for i in range(TRIGGERS)]
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def measure(server: Server, directory: Path, runs: int, log, resident_env: dict[str, str] | None = None,
            python: str = sys.executable) -> tuple[list[Run], list[Run], Run, list[Run]]:
    """(plan runs, dump runs, the untimed first plan of the export, plan runs with the resident)."""
    from bench.resident import alone

    server.reset()
    work = Workload(TABLES)
    (directory / "inventory.yaml").write_text(erpprov_inventory(server.host, server.port, USER, server.password))
    (directory / "workload.sql").write_text(sql_script(work) + schema_sql(work))
    env = server.env()
    run([str(server.bindir / "psql"), "-X", "-q", "-f", "workload.sql"], cwd=str(directory), env=env).check("psql -f")
    erpprov = [python, "-m", "erpprov"]
    run([*erpprov, "export", "-i", "inventory.yaml", "--db", DATABASE, "-o", "exported.yaml"],
        cwd=str(directory), env=alone()).check("erpprov export")
    plan = [*erpprov, "plan", "--detailed-exitcode", "--no-color", "exported.yaml", "-i", "inventory.yaml"]
    dump = [str(server.bindir / "pg_dump"), "--schema-only", "-d", DATABASE, "-f", "/dev/null"]
    first = run(plan, cwd=str(directory), env=alone())  # also warms the caches both read
    log(f"  first no-op plan of the export: exit {first.returncode}, {first.seconds:.2f}s")
    plans: list[Run] = []
    dumps: list[Run] = []
    resident: list[Run] = []
    for index in range(runs):
        plans.append(run(plan, cwd=str(directory), env=alone()))
        if resident_env is not None:
            resident.append(run(plan, cwd=str(directory), env=resident_env))
        dumps.append(run(dump, cwd=str(directory), env=env).check("pg_dump --schema-only"))
        log(f"  run {index + 1}: plan {plans[-1].seconds:.2f}s (exit {plans[-1].returncode})"
            + (f", with the resident {resident[-1].seconds:.2f}s (exit {resident[-1].returncode})" if resident else "")
            + f", pg_dump {dumps[-1].seconds:.2f}s")
    server.reset()
    return plans, dumps, first, resident


def _row(what: str, runs: list[Run]) -> str:
    seconds = [r.seconds for r in runs]
    return (f"| {what} | {statistics.median(seconds):.2f} | {min(seconds):.2f}-{max(seconds):.2f} | "
            f"{max(r.max_rss_kib for r in runs) / 1024:.0f} MiB |")


def verdicts(plans: list[Run], dumps: list[Run], resident: list[Run]) -> list[tuple[str, float]]:
    """(how the plan ran, its ratio to pg_dump) for each way it was measured."""
    dump = statistics.median(r.seconds for r in dumps)
    found = [("in a process of its own", statistics.median(r.seconds for r in plans) / dump)]
    if resident:
        found.append(("with the resident (the default from a machine's second command on)",
                      statistics.median(r.seconds for r in resident) / dump))
    return found


def markdown(plans: list[Run], dumps: list[Run], first: Run, resident: list[Run], heading: str = "") -> str:
    exits = sorted({first.returncode, *(r.returncode for r in plans + resident)})
    lines = [heading, "",
             f"Workload: {TABLES} tables, {VIEWS} views, {FUNCTIONS} functions, {TRIGGERS} triggers, {ENUMS} enums; "
             f"the playbook is `erpprov export` of it; {len(plans)} alternated runs.", "",
             "| command | median s | range s | peak RSS |", "|---|---|---|---|",
             _row("erpprov no-op plan of the export", plans)]
    if resident:
        lines.append(_row("erpprov no-op plan of the export, resident process", resident))
    lines += [_row("pg_dump --schema-only", dumps), ""]
    for how, ratio in verdicts(plans, dumps, resident):
        verdict = "goal met" if ratio <= GOAL else ("target met" if ratio <= TARGET else "target MISSED")
        lines.append(f"- plan {how} / pg_dump: **{ratio:.2f}×** (target ≤ {TARGET:.0f}×, goal {GOAL:.0f}×): {verdict}")
    lines += [f"- plan exit codes {exits} (0: no changes)", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.schema", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="alternated runs of each (default 5)")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown report here")
    args = parser.parse_args(argv)
    return schema_main(args.runs, args.out)


def schema_main(runs: int, out: Path | None) -> int:
    from bench.run import compile_erpprov

    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    from bench.resident import resident as resident_process

    compile_erpprov()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="erpprov-bench-schema-") as workdir, throwaway_server() as server, \
            resident_process(sys.executable, Path(workdir)) as resident_env:
        log(f"PostgreSQL {server.version()}: {TABLES} tables, {VIEWS} views, {FUNCTIONS} functions, "
            f"{TRIGGERS} triggers, {ENUMS} enums")
        plans, dumps, first, resident = measure(server, Path(workdir), runs, log, resident_env)
        text = markdown(plans, dumps, first, resident, f"Whole-schema no-op plan, PostgreSQL {server.version()}, "
                        f"{(time.monotonic() - started) / 60:.1f} min in all.")
    print(text)
    if out:
        out.write_text(text, encoding="utf-8")
    met = verdicts(plans, dumps, [])[0][1] <= TARGET
    return 0 if met and all(r.returncode == 0 for r in [first, *plans, *resident]) else 1


if __name__ == "__main__":
    sys.exit(main())
