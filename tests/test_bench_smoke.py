"""The benchmark, small (N=10, one run, no Ansible), so that it cannot rot: the commands it times
must succeed, the no-op plan must find nothing to do, and the SQL script and the playbook must
create the same objects."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's bench/ package

from bench import report
from bench.run import Bench, main, parse_args
from bench.server import throwaway_server
from bench.workload import (
    Workload,
    ansible_playbook,
    ansible_vars,
    erpprov_playbook,
    sql_script,
)

SIZE = 10


def test_generated_files_describe_one_workload() -> None:
    work = Workload(SIZE)
    play = yaml.safe_load(erpprov_playbook(work))[0]
    database = play["databases"][0]
    assert len(database["tables"]) == SIZE
    assert all(len(t["columns"]) == 9 and len(t["indexes"]) == 2 and len(t["foreign_keys"]) == 1
               for t in database["tables"])
    assert database["tables"][0]["foreign_keys"][0]["references"]["table"] == "t0001"  # the first: itself
    assert database["tables"][5]["foreign_keys"][0]["references"]["table"] == "t0005"
    assert len(play["roles"]) == SIZE // 4 and all(r["login"] and r["password"] for r in play["roles"])
    assert sum(len(t.get("grants", [])) for t in database["tables"]) == 4 * (SIZE // 4)
    script = sql_script(work)
    assert script.count("CREATE TABLE") == SIZE and script.count("CREATE INDEX") == 2 * SIZE
    assert script.count("REFERENCES") == SIZE and script.count("CREATE ROLE") == SIZE // 4
    tasks = yaml.safe_load(ansible_playbook())[0]["tasks"]
    assert [t["name"] for t in tasks] == ["Login roles", "Database", "CONNECT for every role", "Tables", "Indexes",
                                          "Table grants"]
    variables = yaml.safe_load(ansible_vars(work, "127.0.0.1", 5432, "postgres", "pw"))
    assert len(variables["bench_tables"]) == SIZE and len(variables["bench_roles"]) == SIZE // 4


@pytest.fixture
def bench(tmp_path: Path):
    with throwaway_server() as server:
        yield Bench(server, tmp_path, runs=1, log=lambda text: None, timeout=120, count="last")


def test_smoke_run_measures_and_verifies(bench: Bench) -> None:
    from bench.seed import run_seed

    bench.size(SIZE)
    results = bench.results
    failed = [(name, detail) for _, name, passed, detail in results.checks if not passed]
    assert not failed, failed
    names = {name for _, name, _, _ in results.checks}
    assert "erpprov plan --detailed-exitcode exits 0 (no changes)" in names
    assert "psql -f and erpprov apply create the same objects (catalog summary)" in names
    assert "erpprov plan after psql -f: no changes" in names
    measured = {(s.tool, s.what) for s in results.series}
    assert measured == {("psql", "first apply"), ("erpprov", "first apply"), ("erpprov", "second apply"),
                        ("erpprov", "no-op plan"), ("pg_dump", "schema-only"), ("erpprov", "export")}
    for series in results.series:
        assert len(series.seconds) == 1 and series.seconds[0] > 0
        assert series.statements and series.connections, series
        assert series.max_rss_kib[0] > 0
    # The populated database really holds the workload, and a role's password and grants work.
    summary = bench.server.summary()
    assert len({row[0] for row in summary["columns"]}) == SIZE
    assert len(summary["indexes"]) == 3 * SIZE  # the primary keys and the 2 named indexes
    assert sum(1 for row in summary["constraints"] if row[2] == "f") == SIZE
    role = Workload(SIZE).roles[0]
    import psycopg

    with psycopg.connect(host=bench.server.host, port=bench.server.port, user=role.name, password=role.password,
                         dbname="erpbench") as conn:
        assert conn.execute(f"SELECT count(*) FROM {role.tables[0]}").fetchone()[0] == 0
    # The no-op plan reads a fixed number of statements; the first apply sends more.
    plan = results.get(SIZE, "erpprov", "no-op plan")
    first = results.get(SIZE, "erpprov", "first apply")
    assert plan is not None and first is not None and first.statements > plan.statements
    # The report renders with every target listed.
    args = parse_args(["--sizes", str(SIZE), "--runs", "1", "--no-ansible", "--no-migra"])
    text = report.markdown(results, {"python": "x"}, args, 1.0)
    assert "erpprov first apply / psql -f" in text and "erpprov export / pg_dump" in text and "## Targets" in text
    # Seed rows, last (they start from a fresh database): a no-op plan that found changes fails the run.
    results.seed = run_seed(bench, 50)
    assert [s.what for s in results.seed] == ["\\copy 50 rows", "apply 50 rows", "apply, the table alone",
                                              "no-op plan, with data", "no-op plan, no data"]
    assert ("erpprov apply loaded all 50 rows", True) in [(name, ok) for _, name, ok, _ in results.checks]
    assert "apply 50 rows" in report.markdown(results, {"python": "x"}, args, 1.0)
    # The shipped dev playbook, applied and planned with nothing to do, beside pg_dump of its database.
    from bench.devplaybook import run_dev

    results.dev = run_dev(bench, None)
    assert [(s.tool, s.what) for s in results.dev] == [("erpprov", "dev.yaml no-op plan"),
                                                       ("pg_dump", "dev.yaml database schema-only")]
    assert all(len(s.seconds) == bench.runs for s in results.dev)
    dev_checks = [(name, passed) for _, name, passed, _ in results.checks if "dev.yaml" in name]
    assert dev_checks and all(passed for _, passed in dev_checks), dev_checks
    assert "no-op plan of playbooks/dev.yaml ≤ 3× pg_dump" in report.markdown(results, {"python": "x"}, args, 1.0)


def test_cli_rejects_bad_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--sizes", "2"])
    assert "at least 4" in capsys.readouterr().err



def test_fleet_report_from_figures() -> None:
    """`--fleet`'s arithmetic and report, from figures (a fleet run itself takes minutes): the
    overhead per host is the difference of the medians over the hosts, and a RECAP with a change
    fails the no-op check."""
    from bench.fleet import FleetResults, _unchanged, markdown
    from bench.measure import Run, Series

    args = parse_args(["--fleet", "4", "--runs", "1"])
    assert (args.fleet, args.fleet_forks) == (4, 10)
    results = FleetResults(hosts=4, forks=2)
    for tool, what, seconds in (("erpprov", "no-op apply", 1.0), ("ansible", "no-op apply", 5.0),
                                ("erpprov", "no-op plan", 1.0), ("ansible", "no-op --check", 3.0)):
        series = Series(tool, what, 4)
        series.seconds.append(seconds)
        results.series.append(series)
    assert results.overhead_per_host("no-op apply", "no-op apply") == 1.0
    text = markdown(results, runs=1, elapsed=60)
    assert "Ansible adds **1.00 s per host** to a no-op apply and 0.50 s per host" in text
    recap = "h1 : ok=1    changed={}    unreachable=0    failed=0\n"
    assert _unchanged(Run([], 1.0, 0, recap.format(0), "", 0))
    assert not _unchanged(Run([], 1.0, 0, recap.format(0) + recap.format(1), "", 0))
    assert not _unchanged(Run([], 1.0, 0, "no recap at all", "", 0))
