"""Seed rows (`data:`) at scale: loading ROWS rows from a CSV into an empty table, erpprov apply
against `psql \\copy` of the same file; and the no-op plan of a table holding those rows, with its
`data:` entry against without it (the cost of comparing the rows on the server).

Targets (issue #18): loading costs at most 1.5x psql's \\copy; the no-op plan with data at most
1 s more than without.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.measure import Series
from bench.workload import DATABASE

TABLE = "seed_rows"


def write_files(directory: Path, rows: int, *, host: str, port: int, user: str, password: str) -> dict[str, Path]:
    playbooks = directory / "playbooks"
    playbooks.mkdir(parents=True, exist_ok=True)
    csv = playbooks / "rows.csv"
    with csv.open("w", encoding="utf-8") as out:
        out.write("id,code,amount,created_at,note\n")
        for i in range(1, rows + 1):
            out.write(f"{i},C{i:07d},{i % 9973}.{i % 100:02d},2024-01-{1 + i % 28:02d} 10:00:00+00,"
                      f"\"row {i}, with a comma\"\n")
    table: dict[str, Any] = {"name": TABLE, "columns": [
        {"name": "id", "type": "bigint", "primary_key": True},
        {"name": "code", "type": "varchar(20)", "nullable": False},
        {"name": "amount", "type": "numeric(12,2)"},
        {"name": "created_at", "type": "timestamptz"},
        {"name": "note", "type": "text"}]}
    files = {"csv": csv}
    for name, data in (("with_data", {"from": "rows.csv"}), ("without_data", None)):
        spec = dict(table, data=data) if data else table
        play = [{"name": "seed", "hosts": "all", "databases": [{"name": DATABASE, "tables": [spec]}]}]
        files[name] = playbooks / f"{name}.yaml"
        files[name].write_text(yaml.safe_dump(play, sort_keys=False))
    inventory = {"all": {"hosts": {"bench": {"driver": "external", "pg_host": host, "pg_port": port,
                                             "pg_user": user, "pg_password": password}}}}
    files["inventory"] = directory / "inventory.yaml"
    files["inventory"].write_text(yaml.safe_dump(inventory))
    columns = ("id bigint PRIMARY KEY, code varchar(20) NOT NULL, amount numeric(12,2), created_at timestamptz, "
               "note text")
    files["sql"] = directory / "copy.sql"
    files["sql"].write_text(f"CREATE TABLE {TABLE} ({columns});\n"
                            f"\\copy {TABLE} FROM '{csv}' WITH (FORMAT csv, HEADER)\n")
    return files


def run_seed(bench: Any, rows: int) -> list[Series]:
    """The four measurements, with their checks in ``bench.results``."""
    directory = bench.workdir / f"seed{rows}"
    server = bench.server
    files = write_files(directory, rows, host=server.host, port=server.port, user="postgres",
                        password=server.password)

    def erpprov(playbook: str, *args: str) -> list[str]:
        return [bench.python, "-m", "erpprov", *args, str(files[playbook]), "-i", str(files["inventory"])]

    def fresh_database() -> None:
        server.reset()
        with server.connect() as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")

    psql = Series("psql", f"\\copy {rows} rows", rows)
    load = Series("erpprov", f"apply {rows} rows", rows)
    # The same apply without the rows: what the rows add is the difference (the fixed cost of a run,
    # start-up, catalog reads and the table itself, is the rest).
    bare = Series("erpprov", "apply, the table alone", rows)
    for _ in range(bench.runs):  # alternated, so whatever else the machine does weighs on all alike
        fresh_database()
        psql.add(bench._run([str(server.bindir / "psql"), "-X", "-q", "-d", DATABASE, "-f", str(files["sql"])],
                            directory, server.env(), "psql \\copy"))
        fresh_database()
        load.add(bench._run(erpprov("with_data", "apply", "--no-color"), directory, None, "erpprov apply rows"))
        fresh_database()
        bare.add(bench._run(erpprov("without_data", "apply", "--no-color"), directory, None, "erpprov apply table"))
    fresh_database()  # the table the plans below read: loaded once more, untimed
    bench._run(erpprov("with_data", "apply", "--no-color"), directory, None, "erpprov apply rows")
    with server.connect(DATABASE) as conn:
        loaded = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
    bench.results.check(rows, f"erpprov apply loaded all {rows} rows", loaded == rows, f"{loaded} rows")
    plan_data = Series("erpprov", "no-op plan, with data", rows)
    plan_bare = Series("erpprov", "no-op plan, no data", rows)
    for _ in range(bench.runs):
        for series, playbook in ((plan_data, "with_data"), (plan_bare, "without_data")):
            result = bench._run(erpprov(playbook, "plan", "--detailed-exitcode", "--no-color"), directory, None,
                                f"erpprov {series.what}")
            series.add(result)
    ratio = load.median / psql.median
    bench.results.check(rows, "loading rows costs at most 1.5x psql \\copy", ratio <= 1.5,
                        f"{load.median:.2f}s vs {psql.median:.2f}s: {ratio:.2f}x")
    extra = plan_data.median - plan_bare.median
    bench.results.check(rows, "no-op plan over the seeded rows costs at most 1 s more than without data",
                        extra <= 1.0, f"{plan_data.median:.2f}s vs {plan_bare.median:.2f}s: +{extra:.2f}s")
    bench.log(f"  the rows add {load.median - bare.median:.2f}s to an apply (psql's whole run: {psql.median:.2f}s)")
    measured = [psql, load, bare, plan_data, plan_bare]
    for series in measured:
        bench.log(f"  {series.tool:<8} {series.what:<26} median {series.median:7.3f}s "
                  f"[{series.low:.3f}-{series.high:.3f}]  peak {series.peak_mib:.0f} MiB")
    return measured
