"""The data directory rule shared by the local and docker drivers (no server, no Docker engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from erpprov.core.target import Target
from erpprov.drivers.base import DEFAULT_DATA_DIR, resolve_data_dir
from erpprov.errors import ErpprovError
from erpprov.load.project import load_project
from tests.helpers import PLAYBOOK, write_project


def _target(tmp: Path, **container: Any) -> Target:
    host = {"driver": "local", "pg_host": "127.0.0.1", "pg_port": 5432, "pg_user": "postgres"}
    play = {"name": "data dir test", "hosts": "dev",
            "container": {"name": "db", "image": "postgres:16", **container}}
    write_project(tmp, yaml.safe_dump([play]), host)
    return load_project(tmp / PLAYBOOK, tmp / "inventory.yaml", environ={}).targets[0]


@pytest.mark.parametrize(("configured", "expected"), [
    ("~/x", lambda tmp: Path.home() / "x"),  # home expanded
    ("data/pg", lambda tmp: tmp / "data" / "pg"),  # relative: under the project
    (None, lambda tmp: tmp / DEFAULT_DATA_DIR),  # the default: under the project
])
def test_the_rule_and_both_drivers_agree_on_the_data_dir(tmp_path: Path, configured: str | None, expected: Any) -> None:
    from erpprov.drivers.docker import (
        DockerDriver,  # its constructor does not reach the engine
    )

    target = _target(tmp_path, **({"data_dir": configured} if configured else {}))
    want = expected(tmp_path).resolve()
    assert resolve_data_dir(target, configured) == want
    assert Path(DockerDriver(target).data_dir()) == want
    from erpprov.drivers.local import LocalDriver

    try:
        local = LocalDriver(target)
    except ErpprovError:
        pytest.skip("no PostgreSQL binaries for the local driver")
    assert local.cluster.data_dir == want


def test_the_server_gets_a_minimal_environment(server_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets in erpprov's environment (POSTGRES_PASSWORD, a cloud token) never reach the server
    process, whose environment any superuser SQL session could read (pg_read_file, COPY PROGRAM)."""
    from erpprov.drivers.embedded import free_port
    from erpprov.drivers.local import LocalDriver

    monkeypatch.setenv("POSTGRES_PASSWORD", "secret-in-the-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "another-secret")
    host = {"driver": "local", "pg_host": "127.0.0.1", "pg_port": free_port(), "pg_user": "postgres",
            "pg_password": "cluster-password"}
    play = {"name": "environment", "hosts": "dev",
            "container": {"name": "db", "image": "postgres:16", "data_dir": str(server_tmp / "data")}}
    write_project(server_tmp, yaml.safe_dump([play]), host)
    driver = LocalDriver(load_project(server_tmp / PLAYBOOK, server_tmp / "inventory.yaml", environ={}).targets[0])
    try:
        driver.ensure(lambda line: None)
        postmaster = int((driver.cluster.data_dir / "postmaster.pid").read_text().split()[0])
        environ = dict(entry.split("=", 1) for entry in
                       Path(f"/proc/{postmaster}/environ").read_bytes().decode().split("\0") if "=" in entry)
    finally:
        driver.cluster.stop()
    assert "secret-in-the-environment" not in environ.values()
    assert "another-secret" not in environ.values()
    assert not {"POSTGRES_PASSWORD", "AWS_SECRET_ACCESS_KEY", "PYTHONPATH"} & set(environ)
    assert environ.get("LC_ALL") == "C.UTF-8"
