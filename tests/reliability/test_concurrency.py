"""Two, then ten, concurrent applies of the same playbook on one server: they take turns (the
advisory lock), none fails except with the lock-wait message, and the final state is right."""

from __future__ import annotations

import pytest
import yaml

from .conftest import assert_converged, finish, pg_env, server_vars, start_erpprov, unique, write_project


@pytest.mark.parametrize("count", [2, 10])
def test_concurrent_applies_take_turns(tmp_path, pg, count):
    role = unique("conc")
    databases = [f"{pg.dbname}_c{i}" for i in range(2)]
    play = [{"name": "concurrent", "hosts": "dev", "roles": [{"name": role, "login": True}],
             "databases": [{"name": db, "grants": [{"to": role, "privileges": ["CONNECT"]}],
                            "tables": [{"name": f"t{i}", "columns": [{"name": "id", "type": "serial",
                                                                      "primary_key": True}],
                                        "grants": [{"to": role, "privileges": ["SELECT"]}]} for i in range(5)]}
                           for db in databases]}]
    root = write_project(tmp_path, yaml.safe_dump(play), server_vars(pg))
    runs = [start_erpprov(root, "apply", "--lock-wait", "90", env=pg_env(pg)) for _ in range(count)]
    results = [finish(proc, timeout=150) for proc in runs]
    for run in results:
        assert not run.timed_out and "Traceback" not in run.stderr, str(run)
        assert run.returncode == 0 or "another erpprov apply holds the lock" in run.stderr, str(run)
    succeeded = [r for r in results if r.returncode == 0]
    assert succeeded, "no apply succeeded"
    # Exactly one of them created the objects; the others found them done.
    assert sum(f"changed: [localhost] role {role}" in r.stdout for r in results) == 1
    assert sum(f"changed: [localhost] table {databases[0]}.public.t0" in r.stdout for r in results) == 1
    assert_converged(root, pg_env(pg))
