"""Docker Compose, for real: the play's server as a service of the team's Compose file (brought up
by Compose, with its project and labels, so Compose's own `ps` and `down -v` still work), a
container made by someone else refused with both ways forward named or adopted on request, and
`erpprov compose` writing a file that Compose itself reads.

The Compose program is the machine's: the compose plugin (`docker compose`) or `docker-compose`.
Debian's docker-compose 1.29 is a Python program that breaks on the newer docker SDK that pip puts
on the system interpreter's path; `_compose_on_path` then runs it with its own packages only."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from erpprov.drivers.embedded import free_port
from tests.dockerenv import needs_engine
from tests.helpers import assert_clean_error, assert_converged, erpprov, remove_container, write_project

pytestmark = needs_engine
PASSWORD = f"pw-{uuid.uuid4().hex}"


def _compose_on_path(bin_dir: Path) -> dict[str, str]:
    """PATH for the CLI runs: with a `docker-compose` that works, or the test is skipped."""
    import os

    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return {}
    legacy = shutil.which("docker-compose")
    if legacy is None:
        pytest.skip("Docker Compose is not installed (the compose plugin or docker-compose)")
    # `version` works either way: only a command that talks to the engine shows the breakage.
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "probe.yml").write_text("services:\n  probe: {image: none}\n")
    probe = [legacy, "-f", str(bin_dir / "probe.yml"), "-p", "erpprovprobe", "ps"]
    if subprocess.run(probe, capture_output=True, check=False, timeout=120).returncode == 0:
        return {}
    interpreter = Path(legacy).read_text().splitlines()[0].removeprefix("#!").split()[0]
    own = subprocess.run([interpreter, "-c", "import site, sys; print(':'.join(p for p in site.getsitepackages() "
                          "if not p.startswith(sys.prefix + '/local')))"], capture_output=True, text=True,
                         check=True).stdout.strip()
    shim = bin_dir / "docker-compose"
    shim.write_text(f'#!/bin/sh\nexec env PYTHONPATH={own} {interpreter} -S {legacy} "$@"\n')
    shim.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def _compose(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    program = ["docker", "compose"] if not env and shutil.which("docker-compose") is None else ["docker-compose"]
    return subprocess.run([*program, *args], cwd=cwd, env={**dict(__import__("os").environ), **env},
                          capture_output=True, text=True, timeout=300, check=False)


SERVICE = """\
services:
  postgres:
    image: {image}
    profiles: [all]
    environment:
      POSTGRES_PASSWORD: {password}
{extra}    ports: ["127.0.0.1:{port}:5432"]
    volumes: [pgdata:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -q -h 127.0.0.1 -U postgres"]
      interval: 0.5s
      retries: 60
volumes:
  pgdata:
"""

PLAY = """\
- name: shop
  hosts: all
  container: {container}
  roles:
    - {{name: shop_app, login: true}}
  databases:
    - {{name: shop, owner: shop_app}}
"""


@pytest.fixture
def compose_project(tmp_path: Path, engine: Any, test_image: str) -> Iterator[tuple[Path, dict[str, str], int]]:
    root = tmp_path / f"shop-{uuid.uuid4().hex[:10]}"  # Compose's project: the directory's name
    env = _compose_on_path(tmp_path / "bin")
    port = free_port()
    root.mkdir()
    (root / "docker-compose.yml").write_text(SERVICE.format(image=test_image, password=PASSWORD, port=port, extra=""))
    try:
        yield root, env, port
    finally:
        _compose(env, root, "--profile", "all", "down", "-v")


def test_a_compose_service_is_brought_up_by_compose_and_recreated_only_when_allowed(
        compose_project: tuple[Path, dict[str, str], int], engine: Any, test_image: str) -> None:
    root, env, port = compose_project
    write_project(root, PLAY.format(container="{compose: docker-compose.yml, service: postgres, profile: all}"),
                  {"driver": "docker", "pg_host": "127.0.0.1", "pg_port": port, "pg_password": PASSWORD})
    applied = erpprov(root, "apply", env=env)  # apply's own re-plan must come back empty
    assert applied.returncode == 0 and f"changed: [localhost] container {root.name}/postgres" in applied.stdout, \
        str(applied)
    (container,) = engine.containers.list(filters={"label": [f"com.docker.compose.project={root.name}"]})
    assert container.labels["com.docker.compose.service"] == "postgres"
    listed = _compose(env, root, "--profile", "all", "ps")
    assert listed.returncode == 0 and container.name in listed.stdout, listed
    status = erpprov(root, "status", env=env)
    assert f"by Docker Compose (project {root.name}, service postgres)" in status.stdout, str(status)

    (root / "docker-compose.yml").write_text(SERVICE.format(image=test_image, password=PASSWORD, port=port,
                                                            extra="      TZ: UTC\n"))
    refused = erpprov(root, "apply", env=env)
    assert refused.returncode == 1, str(refused)
    assert f"container.{root.name}/postgres (recreates_container): docker compose up --force-recreate postgres: " \
           "the container is made anew (env changed)" in refused.stderr, str(refused)
    assert engine.containers.get(container.id).status == "running"
    allowed = erpprov(root, "apply", "--allow-hazard", "recreates_container", env=env)
    assert allowed.returncode == 0, str(allowed)
    (recreated,) = engine.containers.list(filters={"label": [f"com.docker.compose.project={root.name}"]})
    assert recreated.id != container.id
    assert_converged(root, env)  # the role and database lived on in Compose's volume

    down = _compose(env, root, "--profile", "all", "down", "-v")
    assert down.returncode == 0, down
    assert not engine.containers.list(all=True, filters={"label": [f"com.docker.compose.project={root.name}"]})
    assert not engine.volumes.list(filters={"name": f"{root.name}_pgdata"})


def test_someone_elses_container_is_refused_naming_both_ways_or_adopted(tmp_path: Path, engine: Any,
                                                                        test_image: str) -> None:
    name = f"erpprov-test-{uuid.uuid4().hex[:12]}"
    engine.containers.create(test_image, name=name, command=["--version"], labels={
        "com.docker.compose.project": "shop", "com.docker.compose.service": "db",
        "com.docker.compose.project.config_files": "compose.yaml"})
    try:
        container = f"{{name: {name}, image: {test_image}, ports: ['127.0.0.1:{free_port()}:5432']}}"
        write_project(tmp_path, PLAY.format(container=container), {"driver": "docker", "pg_password": PASSWORD})
        assert_clean_error(erpprov(tmp_path, "plan"), "erpprov did not create it", "project shop, service db",
                           "container: {compose: compose.yaml, service: db}", "adopt: true")
        adopted = container.replace("}", ", adopt: true}")
        write_project(tmp_path, PLAY.format(container=adopted), {"driver": "docker", "pg_password": PASSWORD})
        refused = erpprov(tmp_path, "apply")
        assert refused.returncode == 1 and f"container.{name} (recreates_container)" in refused.stderr, str(refused)
        assert engine.containers.get(name).labels.get("com.docker.compose.project") == "shop"
    finally:
        remove_container(engine, name)


def test_erpprov_compose_writes_a_file_compose_reads_without_the_secret(tmp_path: Path) -> None:
    env = _compose_on_path(tmp_path / "bin")
    container = ("{name: shop-db, image: postgres:16, ports: ['127.0.0.1:5433:5432'], volume: shop-data, "
                 "env: {POSTGRES_PASSWORD: '{{ env.SHOP_PG_PASSWORD }}', TZ: 'a$b'}}")
    write_project(tmp_path, PLAY.format(container=container), {"driver": "docker"})
    run = erpprov(tmp_path, "compose", "-o", "docker-compose.yml", env={**env, "SHOP_PG_PASSWORD": PASSWORD})
    assert run.returncode == 0 and "POSTGRES_PASSWORD" in run.stderr, str(run)
    text = (tmp_path / "docker-compose.yml").read_text()
    assert PASSWORD not in text
    config = _compose({**env, "POSTGRES_PASSWORD": "from-env"}, tmp_path, "config")
    assert config.returncode == 0, config
    service = yaml.safe_load(config.stdout)["services"]["postgres"]
    # `config` prints the file back with a literal $ escaped again, as Compose's files write it
    assert service["environment"] == {"POSTGRES_PASSWORD": "from-env", "TZ": "a$$b"}
    assert service["container_name"] == "shop-db" and service["image"] == "postgres:16"


def test_a_service_erpprov_cannot_read_is_a_clear_error(tmp_path: Path, test_image: str) -> None:
    env = _compose_on_path(tmp_path / "bin")
    root = tmp_path / "proj"
    write_project(root, PLAY.format(container="{compose: docker-compose.yml, service: db}"), {"driver": "docker"})
    (root / "docker-compose.yml").write_text(f"services:\n  db:\n    image: {test_image}\n"
                                             "    ports: ['127.0.0.1:5432:5432/udp']\n")
    assert_clean_error(erpprov(root, "plan", env=env), "the service db of", "ports.0", "[ip:]host:container")
