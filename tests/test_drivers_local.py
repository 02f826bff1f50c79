"""The data directory rule shared by the local and docker drivers (no server, no Docker engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from erpprov.drivers.base import DEFAULT_DATA_DIR, resolve_data_dir
from erpprov.errors import ErpprovError
from erpprov.loader import Target, load_project


def _target(tmp: Path, **container: Any) -> Target:
    host = {"driver": "local", "pg_host": "127.0.0.1", "pg_port": 5432, "pg_user": "postgres"}
    inventory = tmp / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"dev": {"hosts": {"localhost": host}}}}}))
    (tmp / "playbooks").mkdir(exist_ok=True)
    playbook = tmp / "playbooks" / "site.yaml"
    play = {"name": "data dir test", "hosts": "dev",
            "container": {"name": "db", "image": "postgres:16", **container}}
    playbook.write_text(yaml.safe_dump([play]))
    return load_project(playbook, inventory, environ={}).targets[0]


def _local_driver(target: Target) -> Any:
    from erpprov.cluster import find_bindir

    try:
        find_bindir()
    except ErpprovError:
        pytest.skip("no PostgreSQL binaries for the local driver")
    from erpprov.drivers.local import LocalDriver

    return LocalDriver(target)


def test_local_driver_expands_home(tmp_path: Path) -> None:
    target = _target(tmp_path, data_dir="~/x")
    assert _local_driver(target).cluster.data_dir == (Path.home() / "x").resolve()


def test_local_driver_relative_data_dir_is_under_the_project(tmp_path: Path) -> None:
    target = _target(tmp_path, data_dir="data/pg")
    data_dir = _local_driver(target).cluster.data_dir
    assert data_dir == (tmp_path / "data" / "pg").resolve()
    assert data_dir.is_relative_to(target.project_dir.resolve())


def test_default_data_dir_is_under_the_project(tmp_path: Path) -> None:
    target = _target(tmp_path)
    assert resolve_data_dir(target, None) == (tmp_path / DEFAULT_DATA_DIR).resolve()


@pytest.mark.parametrize("configured", ["~/x", "data/pg", None])
def test_docker_and_local_drivers_agree(tmp_path: Path, configured: str | None) -> None:
    from erpprov.drivers.docker import DockerDriver  # its constructor does not reach the engine

    target = _target(tmp_path, **({"data_dir": configured} if configured else {}))
    assert Path(DockerDriver(target).data_dir()) == _local_driver(target).cluster.data_dir
