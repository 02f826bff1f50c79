"""The shipped playbooks/dev.yaml: its no-op plan beside `pg_dump --schema-only` of its database.

The playbook and its templates are copied as they are; the inventory points its `dev` group at the
benchmark's server with the external driver (the container is Docker's business, not measured
here). It is applied once, then the plan without and with the resident process and the dump are
timed alternately, run by run (issue #22's target: the plan at most 3x the dump).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from bench.measure import Series, run
from bench.workload import DATABASE as WORKLOAD_DATABASE

REPO = Path(__file__).resolve().parent.parent
DATABASE = "erp"  # the playbook's own


def run_dev(bench: Any, resident_env: dict[str, str] | None) -> list[Series]:
    directory = bench.workdir / "dev"
    directory.mkdir(parents=True, exist_ok=True)
    for folder in ("playbooks", "templates"):
        shutil.copytree(REPO / folder, directory / folder, dirs_exist_ok=True)
    server = bench.server
    host = {"driver": "external", "pg_host": server.host, "pg_port": server.port, "pg_user": "postgres",
            "pg_password": server.password}
    (directory / "inventory.yaml").write_text(yaml.safe_dump({"all": {"children": {"dev": {"hosts": {
        "bench": host}}}}}))
    server.reset((WORKLOAD_DATABASE, DATABASE))
    erpprov = [bench.python, "-m", "erpprov"]
    playbook = ["playbooks/dev.yaml", "-i", "inventory.yaml"]
    from bench.resident import alone

    run([*erpprov, "apply", "--no-color", *playbook], cwd=str(directory), env=alone()).check("erpprov apply dev.yaml")
    plan = [*erpprov, "plan", "--detailed-exitcode", "--no-color", *playbook]
    dump = [str(server.bindir / "pg_dump"), "--schema-only", "-d", DATABASE, "-f", "/dev/null"]
    measured = [(Series("erpprov", "dev.yaml no-op plan", 0), plan, alone())]
    if resident_env is not None:
        measured.append((Series("erpprov", "dev.yaml no-op plan, resident", 0), plan, resident_env))
    measured.append((Series("pg_dump", "dev.yaml database schema-only", 0), dump, server.env()))
    for _ in range(bench.runs):
        for series, argv, env in measured:
            result = run(argv, cwd=str(directory), env=env, timeout=bench.timeout)
            bench.results.check(0, f"{series.tool} {series.what} exits 0", result.returncode == 0,
                                (result.stdout + result.stderr)[-2000:])
            series.add(result)
    for series, _, _ in measured:
        bench.log(f"  {series.tool:<8} {series.what:<32} median {series.median:7.3f}s "
                  f"[{series.low:.3f}-{series.high:.3f}]  peak {series.peak_mib:.0f} MiB")
    server.reset((WORKLOAD_DATABASE, DATABASE))
    return [series for series, _, _ in measured]
