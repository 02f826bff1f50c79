"""The benchmark: erpprov side by side with Ansible's community.postgresql and plain psql.

    python -m bench [--sizes 100,1000] [--runs 5] [--no-ansible] [--out docs/benchmarks.md]
                    [--baseline ../erpprov-old]
    python -m bench --fleet 20 [--fleet-forks 10] [--runs 3]   (bench/fleet.py: erpprov vs Ansible fan-out)
    python -m bench --schema [--runs 5]   (bench/schema.py: views, functions, triggers, enums vs pg_dump)

Every figure is a whole process (interpreter start-up, imports, connecting, work, exit), timed by
wall clock over several runs. See docs/benchmarks.md for what is measured and the latest results.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import report
from bench.installed import installed_python
from bench.measure import CommandFailed, Run, Series, run
from bench.resident import resident
from bench.server import USER, Server, throwaway_server
from bench.workload import DATABASE, LARGE_SIZE, Workload, write_all

_RECAP_CHANGED = re.compile(r"changed=(\d+)")


@dataclass
class Results:
    series: list[Series] = field(default_factory=list)
    checks: list[tuple[int, str, bool, str]] = field(default_factory=list)  # (size, check, passed, detail)
    startup: list[Series] = field(default_factory=list)
    seed: list[Series] = field(default_factory=list)  # bench/seed.py: rows loaded and compared
    dev: list[Series] = field(default_factory=list)  # bench/devplaybook.py: playbooks/dev.yaml
    schema: tuple | None = None  # bench/schema.py: (plans, dumps, first plan, plans with the resident)
    notes: list[str] = field(default_factory=list)

    def check(self, size: int, name: str, passed: bool, detail: str = "") -> None:
        self.checks.append((size, name, passed, detail))

    def get(self, size: int, tool: str, what: str) -> Series | None:
        return next((s for s in self.series if (s.size, s.tool, s.what) == (size, tool, what)), None)


def _changed(result: Run) -> int | None:
    found = _RECAP_CHANGED.findall(result.stdout)
    return sum(int(n) for n in found) if found else None


class Bench:
    def __init__(self, server: Server, workdir: Path, runs: int, log=print, timeout: float = 3600,
                 count: str = "extra", baseline: Path | None = None, large_runs: int = 1, migra=None,
                 resident_env: dict[str, str] | None = None, python: str = sys.executable):
        self.resident_env = resident_env  # the environment of runs measured with the resident process
        self.migra = migra  # bench.migra_env.Migra, or None to leave migra out
        self.large_runs = large_runs
        self.baseline = baseline  # another checkout whose no-op plan is timed beside this one's
        self.count = count  # "extra": statements counted in one more, untimed run; "last": in the last run
        self.server = server
        self.workdir = workdir
        self.runs = runs
        self.log = log
        self.timeout = timeout
        self.results = Results()
        self.python = python  # the interpreter erpprov runs in (bench/installed.py with --installed)

    # --- commands ------------------------------------------------------------------------------

    def erpprov(self, files: dict[str, Path], *args: str) -> list[str]:
        return [self.python, "-m", "erpprov", *args, str(files["erpprov_playbook"]), "-i",
                str(files["erpprov_inventory"])]

    def psql(self, files: dict[str, Path]) -> list[str]:
        return [str(self.server.bindir / "psql"), "-X", "-q", "-f", str(files["sql"])]

    def export(self, files: dict[str, Path], directory: Path) -> list[str]:
        return [self.python, "-m", "erpprov", "export", "-i", str(files["erpprov_inventory"]), "--db", DATABASE,
                "-o", str(directory / "exported.yaml")]

    def pg_dump(self) -> list[str]:
        return [str(self.server.bindir / "pg_dump"), "--schema-only", "-d", DATABASE, "-f", "/dev/null"]

    def _run(self, argv: list[str], cwd: Path, env: dict[str, str] | None, what: str) -> Run:
        result = run(argv, cwd=str(cwd), env=env, timeout=self.timeout)
        return result.check(what)

    def _run_counted(self, series: Series, argv: list[str], cwd: Path, env: dict[str, str] | None,
                     what: str) -> Run:
        """One run with log_statement = 'all'; the statements and connections the server logged
        during it go into `series`."""
        self.server.log_statements(True)
        offset = self.server.log_size()
        try:
            result = self._run(argv, cwd, env, what)
        finally:
            self.server.log_statements(False)
        series.statements, series.connections = self.server.count_since(offset)
        return result

    def measure(self, series: Series, argv: list[str], cwd: Path, *, env: dict[str, str] | None = None,
                reset: bool = False, runs: int | None = None, count: str | None = None,
                validate=None) -> Run:
        """Time `runs` runs; count statements and connections in one more untimed run with
        log_statement = 'all' (count="extra"), or in the last timed run (count="last", for commands
        so slow that logging cannot matter)."""
        large = series.size > LARGE_SIZE  # one run takes minutes: --large-runs, counted in the last
        runs = runs or (self.large_runs if large else self.runs)
        count = count or ("last" if large else self.count)
        last: Run | None = None
        what = f"{series.tool} {series.what} (N={series.size})"
        for index in range(runs):
            if reset:
                self.server.reset()
            if count == "last" and index == runs - 1:
                last = self._run_counted(series, argv, cwd, env, what)
            else:
                last = self._run(argv, cwd, env, what)
            if validate:
                validate(last)
            series.add(last)
        if count == "extra":
            if reset:
                self.server.reset()
            extra = self._run_counted(series, argv, cwd, env, f"{what}, counting")
            if validate:
                validate(extra)
        self.results.series.append(series)
        self.log(f"  {series.tool:<8} {series.what:<16} N={series.size:<5} median {series.median:7.3f}s "
                 f"[{series.low:.3f}-{series.high:.3f}]  statements={series.statements} "
                 f"connections={series.connections}  peak {series.peak_mib:.0f} MiB")
        assert last is not None
        return last

    # --- one size ------------------------------------------------------------------------------

    def size(self, size: int, ansible=None, ansible_runs: int = 1) -> None:
        work = Workload(size)
        directory = self.workdir / f"n{size}"
        files = write_all(work, directory, host=self.server.host, port=self.server.port, user=USER,
                          password=self.server.password, ansible_python=str(ansible.python) if ansible else None)
        self.log(f"N={size}: {work.objects}")
        env = self.server.env()
        no_changes = lambda r: self.results.check(  # noqa: E731
            size, "erpprov plan --detailed-exitcode exits 0 (no changes)", r.returncode == 0)

        # psql -f on an empty database: the floor for creating.
        self.measure(Series("psql", "first apply", size), self.psql(files), directory, env=env, reset=True)
        from_psql = self.server.summary()
        plan = run(self.erpprov(files, "plan", "--detailed-exitcode"), cwd=str(directory), timeout=self.timeout)
        self.results.check(size, "erpprov plan after psql -f: no changes", plan.returncode == 0,
                           "" if plan.returncode == 0 else plan.stdout[-2000:] + plan.stderr[-2000:])

        # erpprov: first apply on an empty database, then a second apply and a plan with nothing to do.
        def applied(result: Run) -> None:
            self.results.check(size, "erpprov first apply reports changes", (_changed(result) or 0) > 0)
        self.measure(Series("erpprov", "first apply", size), self.erpprov(files, "apply", "--no-color"),
                     directory, reset=True, validate=applied)
        from_erpprov = self.server.summary()
        same = from_psql == from_erpprov
        self.results.check(size, "psql -f and erpprov apply create the same objects (catalog summary)", same,
                           "" if same else _summary_diff(from_psql, from_erpprov))

        def converged(result: Run) -> None:
            self.results.check(size, "erpprov second apply: changed=0", _changed(result) == 0,
                               f"changed={_changed(result)}")
        self.measure(Series("erpprov", "second apply", size), self.erpprov(files, "apply", "--no-color"),
                     directory, validate=converged)
        self.measure(Series("erpprov", "no-op plan", size),
                     self.erpprov(files, "plan", "--detailed-exitcode", "--no-color"), directory,
                     validate=no_changes)
        if self.resident_env is not None:
            self.measure(Series("erpprov", "no-op plan, resident", size),
                         self.erpprov(files, "plan", "--detailed-exitcode", "--no-color"), directory,
                         env=self.resident_env, validate=no_changes)
        if self.baseline is not None:
            self.against_baseline(files, directory, size)
        # pg_dump --schema-only of the populated database: the floor for reading.
        self.measure(Series("pg_dump", "schema-only", size), self.pg_dump(), directory, env=env)
        self.measure(Series("erpprov", "export", size), self.export(files, directory), directory)
        if self.migra is not None:
            self.migra_diff(size, directory)

        if ansible is None:
            return
        aenv = ansible.env(self.workdir / "ansible-home")
        argv = [str(ansible.playbook_command), "-i", str(files["ansible_inventory"]), str(files["ansible_playbook"])]
        first = Series("ansible", "first apply", size)
        self.measure(first, argv, directory, env=aenv, reset=True, runs=ansible_runs, count="last")
        from_ansible = self.server.summary()
        same = from_ansible == from_erpprov
        self.results.check(size, "Ansible and erpprov create the same objects (catalog summary)", same,
                           "" if same else _summary_diff(from_erpprov, from_ansible))
        plan = run(self.erpprov(files, "plan", "--detailed-exitcode"), cwd=str(directory), timeout=self.timeout)
        self.results.check(size, "erpprov plan after the Ansible playbook: no changes", plan.returncode == 0,
                           "" if plan.returncode == 0 else plan.stdout[-2000:])
        second = Series("ansible", "second apply", size)
        last = self.measure(second, argv, directory, env=aenv, runs=ansible_runs, count="last")
        second.note = f"changed={_changed(last)}"
        check = Series("ansible", "no-op --check", size)
        last = self.measure(check, argv + ["--check"], directory, env=aenv, runs=ansible_runs, count="last")
        check.note = f"changed={_changed(last)}"

    def migra_diff(self, size: int, directory: Path) -> None:
        """migra between the populated database and a copy of it (CREATE DATABASE ... TEMPLATE): two
        catalogs read and compared, nothing to do, no playbook."""
        from psycopg import sql

        copy = f"{DATABASE}_copy"
        with self.server.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(copy),
                                                                         sql.Identifier(DATABASE)))
        try:
            argv = self.migra.argv(self.server.host, self.server.port, USER, self.server.password, DATABASE, copy)
            result = self.measure(Series("migra", "no-op diff", size), argv, directory)
            self.results.check(size, "migra finds no difference between the database and its copy",
                               not result.stdout.strip(), result.stdout[-2000:])
        finally:
            with self.server.connect() as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(copy)))

    def against_baseline(self, files: dict[str, Path], directory: Path, size: int) -> None:
        """The no-op plan of this checkout and of the baseline's, alternated run by run on the same
        database, so that whatever else the machine does weighs on both alike."""
        import os

        assert self.baseline is not None
        argv = self.erpprov(files, "plan", "--detailed-exitcode", "--no-color")
        ours = Series("erpprov", "no-op plan, interleaved", size)
        theirs = Series("baseline", "no-op plan, interleaved", size)
        env = {**os.environ, "PYTHONPATH": str(self.baseline)}
        for _ in range(self.runs):
            ours.add(self._run(argv, directory, None, f"erpprov no-op plan (N={size})"))
            theirs.add(self._run(argv, directory, env, f"baseline no-op plan (N={size})"))
        theirs.note = f"erpprov at {_commit(self.baseline)}"
        self.results.series += [ours, theirs]
        ratio = ours.median / theirs.median
        self.results.check(size, "no-op plan within 5% of the baseline's (interleaved medians)", ratio <= 1.05,
                           f"{ours.median:.3f}s vs {theirs.median:.3f}s: {ratio:.3f}x")
        self.log(f"  baseline no-op plan N={size}: ours {ours.median:.3f}s, baseline {theirs.median:.3f}s "
                 f"({ratio:.3f}x)")

    def startup(self) -> None:
        """`erpprov --help` against the bare interpreter (and this environment's, when erpprov runs in
        another)."""
        commands = [("python", "-c pass", [self.python, "-c", "pass"]),
                    ("erpprov", "--help", [self.python, "-m", "erpprov", "--help"])]
        if self.python != sys.executable:
            commands.append(("python", "-c pass, this environment", [sys.executable, "-c", "pass"]))
        for tool, what, argv in commands:
            series = Series(tool, what, 0)
            for _ in range(max(self.runs, 5)):
                series.add(self._run(argv, self.workdir, None, f"{tool} start-up"))
            self.results.startup.append(series)
            self.log(f"  start-up {tool:<8} median {series.median:.3f}s [{series.low:.3f}-{series.high:.3f}]")


def _commit(checkout: Path) -> str:
    """The baseline by its commit (not its path, which says nothing to a reader elsewhere)."""
    import subprocess

    out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, check=False)
    return out.stdout.strip() or "an unversioned checkout"


def _summary_diff(a: dict[str, object], b: dict[str, object]) -> str:
    lines = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key), b.get(key)
        if left == right:
            continue
        if isinstance(left, list) and isinstance(right, list):
            only_a = [x for x in left if x not in right][:5]
            only_b = [x for x in right if x not in left][:5]
            lines.append(f"{key}: only in first {only_a}; only in second {only_b}")
        else:
            lines.append(f"{key}: {left!r} != {right!r}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000", help="numbers of tables, comma-separated (default 100,1000)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement (default 5)")
    parser.add_argument("--large-runs", type=int, default=1,
                        help=f"timed runs per measurement above {LARGE_SIZE} tables (default 1)")
    parser.add_argument("--no-migra", action="store_true", help="leave migra out")
    parser.add_argument("--no-ansible", action="store_true", help="leave Ansible out")
    parser.add_argument("--ansible-max-size", type=int, default=100,
                        help="run Ansible only for sizes up to this (default 100; ~1 s per object per run)")
    parser.add_argument("--ansible-sizes", default=None,
                        help="run Ansible exactly for these sizes (overrides --ansible-max-size)")
    parser.add_argument("--ansible-runs", type=int, default=1, help="timed runs per Ansible measurement (default 1)")
    parser.add_argument("--ansible-venv-dir", type=Path, default=None,
                        help="where the Ansible virtualenv is kept (default: the user's cache directory)")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown report here")
    parser.add_argument("--json", type=Path, default=None, help="write the raw figures as JSON here")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds any one command may take")
    parser.add_argument("--keep", action="store_true", help="keep the generated files (printed path)")
    parser.add_argument("--baseline", type=Path, default=None, metavar="CHECKOUT",
                        help="another erpprov checkout (e.g. a `git worktree` of an older commit): its no-op "
                             "plan is timed alternately with this one's, and must be within 5%%")
    parser.add_argument("--seed-rows", type=int, default=100_000,
                        help="rows loaded from CSV and compared by a no-op plan (default 100000; 0: leave out)")
    parser.add_argument("--fleet", type=int, default=None, metavar="HOSTS",
                        help="instead of the sizes: HOSTS throwaway clusters reconciled by erpprov --forks and by "
                             "ansible-playbook -f with the erpprov.postgres.apply module (bench/fleet.py)")
    parser.add_argument("--fleet-forks", type=int, default=10, help="forks of both tools in --fleet (default 10)")
    parser.add_argument("--no-schema", action="store_true",
                        help="leave out the whole-schema plan (1,000 tables with views, functions, triggers, enums)")
    parser.add_argument("--installed", action="store_true",
                        help="run erpprov from a virtualenv of its own, as installed (bench/installed.py), "
                             "not with this environment's interpreter and its start-up hooks")
    parser.add_argument("--no-dev", action="store_true", help="leave out the no-op plan of playbooks/dev.yaml")
    parser.add_argument("--no-resident", action="store_true",
                        help="leave out the runs with the resident process (erpprov resident start)")
    parser.add_argument("--schema", action="store_true",
                        help="instead of the sizes: the no-op plan of 1,000 tables with views, functions, triggers "
                             "and enums beside pg_dump --schema-only (bench/schema.py)")
    args = parser.parse_args(argv)
    if args.fleet is not None and (args.fleet < 1 or args.fleet_forks < 1):
        parser.error("--fleet and --fleet-forks must be at least 1")
    args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if not args.sizes or any(s < 4 for s in args.sizes):
        # the report and its targets compare tools at these sizes: one is needed even for --seed-rows
        parser.error("--sizes needs at least one size, each at least 4 (e.g. --sizes 4 with --seed-rows)")
    if args.runs < 1 or args.ansible_runs < 1 or args.large_runs < 1:
        parser.error("runs must be at least 1")
    if args.ansible_sizes is not None:
        args.ansible_sizes = sorted({int(s) for s in args.ansible_sizes.split(",") if s.strip()})
        args.sizes = sorted(set(args.sizes) | set(args.ansible_sizes))
    else:
        args.ansible_sizes = [s for s in args.sizes if s <= args.ansible_max_size]
    if args.no_ansible:
        args.ansible_sizes = []
    if args.baseline is not None and not (args.baseline / "erpprov" / "__init__.py").is_file():
        parser.error(f"--baseline {args.baseline}: not an erpprov checkout (no erpprov/__init__.py)")
    return args


def compile_erpprov(*checkouts: Path) -> None:
    """Byte-compile erpprov (and a baseline's) as pip does when it installs a package: a checkout run
    with PYTHONDONTWRITEBYTECODE set would otherwise compile every module again in every timed run.

    The package compiled is the one the timed commands import (asked of a child run outside this
    checkout, as they are), not this process's: `python -m bench` puts the current directory first
    on its own path, which PYTHONPATH may point elsewhere."""
    import subprocess

    found = subprocess.run([sys.executable, "-c", "import erpprov; print(erpprov.__file__)"], cwd=tempfile.gettempdir(),
                           capture_output=True, text=True, check=True).stdout.strip()
    for package in [Path(found).parent, *(c / "erpprov" for c in checkouts)]:
        compileall.compile_dir(package, quiet=1)


def fleet_main(args: argparse.Namespace, log) -> int:
    from bench import fleet

    workdir = Path(tempfile.mkdtemp(prefix="erpprov-bench-work-"))
    started = time.monotonic()
    try:
        results = fleet.measure_fleet(args.fleet, args.fleet_forks, args.runs, workdir, args.timeout, log)
    except CommandFailed as exc:
        log(f"benchmark failed: {exc}")
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = fleet.markdown(results, args.runs, time.monotonic() - started)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        log(f"wrote {args.out}")
    failed = [c for c in results.checks if not c[2]]
    for _, name, _, detail in failed:
        log(f"CHECK FAILED: {name}\n{detail}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.schema:
        from bench.schema import schema_main

        return schema_main(args.runs, args.out)
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    compile_erpprov(*([args.baseline] if args.baseline else []))
    if args.fleet is not None:
        return fleet_main(args, log)
    ansible = None
    if args.ansible_sizes:
        from bench.ansible_env import ensure_ansible

        ansible = ensure_ansible(args.ansible_venv_dir, log)
    migra = None
    if not args.no_migra:
        from bench.migra_env import ensure_migra

        migra = ensure_migra(args.ansible_venv_dir, log)
    workdir = Path(tempfile.mkdtemp(prefix="erpprov-bench-work-"))
    started = time.monotonic()
    # Every erpprov run is a process of its own, but those measured "with the resident": a resident
    # the user started must not serve the benchmark.
    os.environ["ERPPROV_RESIDENT"] = "off"
    try:
        with throwaway_server() as server, contextlib.ExitStack() as stack:
            python = installed_python(workdir) if args.installed else sys.executable
            resident_env = None if args.no_resident else stack.enter_context(resident(python, workdir))
            log(f"PostgreSQL {server.version()} on {server.host}:{server.port}")
            bench = Bench(server, workdir, args.runs, log, args.timeout, baseline=args.baseline,
                          large_runs=args.large_runs, migra=migra, resident_env=resident_env, python=python)
            bench.startup()
            for size in args.sizes:
                bench.size(size, ansible if size in args.ansible_sizes else None, args.ansible_runs)
            if not args.no_dev:
                from bench.devplaybook import run_dev

                log("playbooks/dev.yaml")
                bench.results.dev = run_dev(bench, resident_env)
            if not args.no_schema:
                from bench.schema import measure as measure_schema

                log("whole schema")
                directory = workdir / "schema"
                directory.mkdir()
                bench.results.schema = measure_schema(server, directory, args.runs, log, resident_env, python)
            if args.seed_rows:
                from bench.seed import run_seed

                log(f"seed rows: {args.seed_rows}")
                bench.results.seed = run_seed(bench, args.seed_rows)
            env = report.environment(server, ansible, migra)
    except CommandFailed as exc:
        log(f"benchmark failed: {exc}")
        return 1
    finally:
        if args.keep:
            log(f"generated files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    text = report.markdown(bench.results, env, args, elapsed)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        log(f"wrote {args.out}")
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "series": [s.to_json() for s in bench.results.series],
                                         "startup": [s.to_json() for s in bench.results.startup],
                                         "seed": [s.to_json() for s in bench.results.seed],
                                         "dev": [s.to_json() for s in bench.results.dev],
                                         "checks": bench.results.checks}, indent=2) + "\n")
    failed = [c for c in bench.results.checks if not c[2]]
    for size, name, _, detail in failed:
        log(f"CHECK FAILED (N={size}): {name}\n{detail}")
    return 1 if failed else 0
