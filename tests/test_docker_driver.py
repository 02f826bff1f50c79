"""The docker driver, end to end against the real Docker engine (never mocks), plus unit tests of its
pure spec/compare half (those run without an engine).

Without an engine the docker tests are skipped, except under CI (CI=true) or with
ERPPROV_REQUIRE_DOCKER=1, where a missing engine fails the run. Every container a test creates has
a unique name and is removed by a fixture finalizer, pass or fail.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from erpprov.core.actions import Hazard, Op, Phase
from erpprov.core.model import Container
from erpprov.core.target import Target
from erpprov.drivers.docker_spec import (
    DEFAULT_SHM_SIZE,
    SENSITIVE,
    SENSITIVE_CHANGED,
    compare,
    desired_state,
    live_state,
    major_from_tag,
    major_from_version_output,
    parse_port,
    spec_hash,
)
from erpprov.drivers.embedded import free_port
from erpprov.errors import ErpprovError
from erpprov.load.project import load_project
from tests.dockerenv import needs_engine
from tests.helpers import remove_container

# --- unit tests of the pure half (no engine) ----------------------------------------------------

IMAGE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PGDATA": "/var/lib/postgresql/data"}


def _spec(**changes: Any) -> Container:
    base: dict[str, Any] = {"name": "db", "image": "postgres:16", "ports": ["127.0.0.1:5433:5432"],
                            "env": {"POSTGRES_PASSWORD": "hunter2", "POSTGRES_DB": "erp"},
                            "healthcheck": {"test": "pg_isready", "interval": "2s", "retries": 5}}
    return Container.model_validate({**base, **changes})


def _inspect(desired: dict[str, Any], image_env: dict[str, str], extra_env: dict[str, str]) -> dict[str, Any]:
    """What `docker inspect` shows for a container created from ``desired`` (image env merged in)."""
    env = {**image_env, **desired["env"], **extra_env}
    check = desired["healthcheck"]
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in desired["ports"]:
        ip, host, inside = port.rsplit(":", 2)
        bindings.setdefault(f"{inside}/tcp", []).append({"HostIp": ip, "HostPort": host})
    mounts = [dict(zip(("Type", "Source", "Destination"), m.split(":"), strict=True)) for m in desired["mounts"]]
    return {
        "Config": {"Image": desired["image"], "Env": [f"{k}={v}" for k, v in env.items()], "Cmd": desired["command"],
                   "Labels": {"erpprov.managed": "true", "org.opencontainers.image.title": "pg"},
                   "Healthcheck": {"Test": check["test"], "Interval": check["interval"],
                                   "Timeout": check["timeout"], "Retries": check["retries"]}},
        "HostConfig": {"PortBindings": bindings, "RestartPolicy": {"Name": desired["restart"]},
                       "ShmSize": desired["shm_size"]},
        "Mounts": mounts + [{"Type": "volume", "Name": "a" * 64, "Destination": "/anon"}],
    }


def test_live_container_made_from_spec_shows_no_drift_despite_image_env() -> None:
    desired = desired_state(_spec(), data_dir="/srv/pg", image_env=IMAGE_ENV, image_labels={})
    attrs = _inspect(desired, IMAGE_ENV, {})
    live = live_state(attrs, image_env=IMAGE_ENV, image_labels={"org.opencontainers.image.title": "pg"})
    assert compare(live, desired) == ({}, {})
    assert desired["command"] == ["postgres"] and desired["shm_size"] == DEFAULT_SHM_SIZE
    assert desired["healthcheck"]["test"] == ["CMD-SHELL", "pg_isready"]
    assert desired["healthcheck"]["interval"] == 2_000_000_000
    assert desired["mounts"] == ["bind:/srv/pg:/var/lib/postgresql/data"]


def test_compare_reports_only_changed_attributes_and_hides_secrets() -> None:
    old = desired_state(_spec(env={"POSTGRES_PASSWORD": "hunter2", "EXTRA": "1", "API_TOKEN": "t0k"}),
                        data_dir="/srv/pg", image_env=IMAGE_ENV, image_labels={})
    live = live_state(_inspect(old, IMAGE_ENV, {}), image_env=IMAGE_ENV,
                      image_labels={"org.opencontainers.image.title": "pg"})
    new = desired_state(_spec(env={"POSTGRES_PASSWORD": "changed!", "API_TOKEN": "t0k"}, command=["-c", "x=1"]),
                        data_dir="/srv/pg", image_env=IMAGE_ENV, image_labels={})
    before, after = compare(live, new)
    assert set(after) == {"env", "command"}
    assert before["env"] == {"EXTRA": "1", "POSTGRES_PASSWORD": SENSITIVE}
    assert after["env"] == {"EXTRA": None, "POSTGRES_PASSWORD": SENSITIVE_CHANGED}
    assert after["command"] == ["postgres", "-c", "x=1"]
    blob = json.dumps([before, after, spec_hash(new)])
    assert "hunter2" not in blob and "changed!" not in blob and "t0k" not in blob


def test_small_parsers() -> None:
    assert parse_port("5432:5432") == ("", 5432, 5432)
    assert parse_port("127.0.0.1:6000:5432") == ("127.0.0.1", 6000, 5432)
    assert parse_port("[::1]:6000:5432/tcp") == ("::1", 6000, 5432)
    assert major_from_tag("postgres:16") == "16" and major_from_tag("x/postgres:15.4-alpine") == "15"
    assert major_from_tag("postgres") is None and major_from_tag("postgres:latest") is None
    assert major_from_version_output("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)") == "15"
    assert major_from_version_output("postgres (PostgreSQL) 9.6.24") == "9.6"


def test_sizes_labels_and_disabled_healthcheck_read_back_equal() -> None:
    spec = _spec(shm_size="256m", labels={"team": "erp", "org.opencontainers.image.title": "pg"},
                 healthcheck={"test": ["NONE"]}, restart="always", volume="pgdata")
    desired = desired_state(spec, data_dir=None, image_env=IMAGE_ENV,
                            image_labels={"org.opencontainers.image.title": "pg"})
    assert desired["shm_size"] == 256 * 1024 * 1024 and desired["labels"] == {"team": "erp"}
    assert desired["mounts"] == ["volume:pgdata:/var/lib/postgresql/data"]
    attrs = _inspect(desired, IMAGE_ENV, {})
    attrs["Config"]["Labels"]["team"] = "erp"
    attrs["Config"]["Healthcheck"] = {"Test": ["NONE"]}
    attrs["Mounts"] = [{"Type": "volume", "Name": "pgdata", "Destination": "/var/lib/postgresql/data"}]
    live = live_state(attrs, image_env=IMAGE_ENV, image_labels={"org.opencontainers.image.title": "pg"})
    assert compare(live, desired) == ({}, {})
    attrs["HostConfig"]["ShmSize"] = DEFAULT_SHM_SIZE
    live = live_state(attrs, image_env=IMAGE_ENV, image_labels={"org.opencontainers.image.title": "pg"})
    assert compare(live, desired) == ({"shm_size": "64m"}, {"shm_size": "256m"})


def test_pull_progress_counts_layers_and_bytes_and_raises_stream_errors() -> None:
    from erpprov.drivers.docker import follow_pull

    events = [{"id": "a", "status": "Downloading", "progressDetail": {"current": 1_000_000, "total": 4_000_000}},
              {"id": "b", "status": "Downloading", "progressDetail": {"current": 500_000, "total": 1_000_000}},
              {"id": "b", "status": "Pull complete", "progressDetail": {}}]
    lines: list[str] = []
    follow_pull("postgres:16", events, lines.append, every=0)
    assert lines[-1] == "pulling postgres:16: 1/2 layers done, 1.5/5.0 MB"
    with pytest.raises(ErpprovError, match="toomanyrequests"):
        follow_pull("postgres:16", [{"error": "toomanyrequests: rate limit"}], lines.append)


def test_unreachable_engine_is_a_clear_error(tmp_path: Path) -> None:
    from erpprov.drivers.docker import connect_engine

    with pytest.raises(ErpprovError) as caught:
        connect_engine(f"unix://{tmp_path}/no-such.sock")
    assert caught.value.message.startswith(f"cannot reach the Docker engine at unix://{tmp_path}/no-such.sock")
    assert "driver: local" in (caught.value.hint or "")


# --- the engine-backed tests ---------------------------------------------------------------------


@dataclass
class Project:
    """A temp project (inventory + playbook) for one test's container; `target()` reloads it."""

    tmp: Path
    image: str
    name: str = field(default_factory=lambda: f"erpprov-test-{uuid.uuid4().hex[:12]}")
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: f"pw-{uuid.uuid4().hex}")
    host_vars: dict[str, Any] = field(default_factory=dict)  # extra inventory variables (docker_host)

    def container(self, **changes: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "ports": [f"127.0.0.1:{self.port}:5432"],
            "data_dir": "data/pg",
            "env": {"POSTGRES_PASSWORD": "{{ pg_password }}"},
            # over TCP: the entrypoint's init server listens on the socket only, so healthy means done
            "healthcheck": {"test": "pg_isready -q -h 127.0.0.1 -U postgres", "interval": "0.5s",
                            "timeout": "3s", "retries": 60},
            "restart": "no",
            "wait_timeout": 60,
        }
        spec.update(changes)
        return spec

    def target(self, **changes: Any) -> Target:
        host = {"driver": "docker", "pg_host": "127.0.0.1", "pg_port": self.port, "pg_user": "postgres",
                "pg_password": self.password, "pg_connect_timeout": 3, **self.host_vars}
        inventory = self.tmp / "inventory.yaml"
        inventory.write_text(yaml.safe_dump({"all": {"children": {"dev": {"hosts": {"localhost": host}}}}}))
        (self.tmp / "playbooks").mkdir(exist_ok=True)
        playbook = self.tmp / "playbooks" / "site.yaml"
        play = {"name": "docker driver test", "hosts": "dev", "container": self.container(**changes)}
        playbook.write_text(yaml.safe_dump([play]))
        return load_project(playbook, inventory, environ={}).targets[0]

    def driver(self, **changes: Any) -> Any:
        from erpprov.drivers.docker import DockerDriver

        return DockerDriver(self.target(**changes))

    @property
    def data_dir(self) -> Path:
        return self.tmp / "data" / "pg"

    def connect(self, port: int | None = None) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=port or self.port, user="postgres", password=self.password,
                               dbname="postgres", autocommit=True, connect_timeout=5)


@pytest.fixture
def project(tmp_path: Path, engine: Any, test_image: str) -> Iterator[Project]:
    created = Project(tmp_path, test_image)
    try:
        yield created
    finally:
        remove_container(engine, created.name)
        if os.geteuid() != 0 and created.data_dir.exists():  # files of the container's uid: delete inside
            engine.containers.run(test_image, entrypoint=["find"], command=["/d", "-mindepth", "1", "-delete"],
                                  user="0", volumes={str(created.data_dir): {"bind": "/d"}}, remove=True)


def _quiet(_line: str) -> None:
    pass


def _collect() -> tuple[list[str], Callable[[str], None]]:
    lines: list[str] = []
    return lines, lines.append


def _secret_free(actions: list[Any], *secrets: str) -> None:
    blob = json.dumps([a.to_json() for a in actions])
    for secret in secrets:
        assert secret not in blob


@pytest.mark.usefixtures("test_image")
class TestEngine:
    pytestmark = needs_engine

    def test_fresh_ensure_then_no_changes_status_logs_exec_destroy(self, project: Project, engine: Any,
                                                                   capfd: pytest.CaptureFixture[str]) -> None:
        # every attribute set, so that each one is shown to read back without drift
        spec = {"shm_size": "128m", "labels": {"team": "erp"}, "restart": "unless-stopped",
                "command": ["-c", "max_connections=50"],
                "env": {"POSTGRES_PASSWORD": "{{ pg_password }}", "POSTGRES_DB": "erp", "LANG": "C.UTF-8"}}
        driver = project.driver(**spec)
        actions = driver.plan()
        assert [(a.address, a.op, a.phase) for a in actions] == [(f"container.{project.name}", Op.CREATE,
                                                                   Phase.CONTAINER)]
        assert actions[0].after["env"]["POSTGRES_PASSWORD"] == SENSITIVE
        _secret_free(actions, project.password)

        lines, progress = _collect()
        driver.ensure(progress)
        assert any("healthy and accepting connections" in line for line in lines)
        with project.connect() as conn:
            assert conn.execute("select 1 + 1").fetchone() == (2,)
        assert project.data_dir.joinpath("PG_VERSION").read_text().strip() == "15"
        labels = engine.containers.get(project.name).labels
        assert labels["erpprov.managed"] == "true" and len(labels["erpprov.spec-hash"]) == 64

        assert project.driver(**spec).plan() == []
        driver.ensure(_quiet)  # idempotent: nothing to do, still checks it answers

        status = driver.status()
        assert (status.exists, status.running, status.healthy) == (True, True, True)
        assert status.facts["health"] == "healthy" and status.facts["image"] == project.image
        assert status.facts["ports"] == f"127.0.0.1:{project.port}:5432" and status.facts["spec"] == "in sync"
        assert any("ready to accept connections" in line for line in driver.logs(tail=50, follow=False))

        capfd.readouterr()
        assert driver.exec(["psql", "-U", "postgres", "-c", "select 1"]) == 0
        assert "(1 row)" in capfd.readouterr().out
        assert driver.exec(["psql", "-U", "postgres", "-c", "select nonsense"]) != 0
        assert driver.exec(["psql", "-U", "postgres", "-c", "select 1"], interactive=True) == 0

        lines, progress = _collect()
        driver.destroy(volumes=True, progress=progress)
        assert not project.data_dir.exists()
        assert driver.status().exists is False
        assert driver.plan()[0].op is Op.CREATE

    def test_docker_host_variable_selects_the_engine(self, project: Project) -> None:
        socket_path = Path("/var/run/docker.sock")
        if not socket_path.exists():
            pytest.skip("the engine does not listen on the default unix socket")
        project.host_vars["docker_host"] = f"unix://{socket_path}"
        assert [a.op for a in project.driver().plan()] == [Op.CREATE]
        project.host_vars["docker_host"] = f"unix://{project.tmp}/none.sock"
        with pytest.raises(ErpprovError, match="cannot reach the Docker engine"):
            project.driver().plan()

    def test_port_change_recreates_and_keeps_rows(self, project: Project) -> None:
        project.driver().ensure(_quiet)
        with project.connect() as conn:
            conn.execute("create table kept (v text); insert into kept values ('before')")
        old_port, project.port = project.port, free_port()
        driver = project.driver()
        actions = driver.plan()
        assert len(actions) == 1
        action = actions[0]
        assert action.op is Op.REPLACE and action.hazards == (Hazard.RECREATES_CONTAINER,)
        assert action.before == {"ports": [f"127.0.0.1:{old_port}:5432"]}
        assert action.after == {"ports": [f"127.0.0.1:{project.port}:5432"]}
        assert "survives" in (action.note or "")
        lines, progress = _collect()
        driver.ensure(progress)
        assert any(line.startswith("recreating") for line in lines)
        with project.connect() as conn:
            assert conn.execute("select v from kept").fetchall() == [("before",)]
        assert project.driver().plan() == []

    def test_command_change_recreates_with_the_setting(self, project: Project) -> None:
        project.driver().ensure(_quiet)
        driver = project.driver(command=["-c", "max_connections=123"])
        (action,) = driver.plan()
        assert action.op is Op.REPLACE
        assert action.before == {"command": ["postgres"]}
        assert action.after == {"command": ["postgres", "-c", "max_connections=123"]}
        driver.ensure(_quiet)
        with project.connect() as conn:
            assert conn.execute("show max_connections").fetchone() == ("123",)
        assert driver.plan() == []

    def test_env_removal_is_a_change_and_secrets_never_show(self, project: Project) -> None:
        token = f"tok-{uuid.uuid4().hex}"
        env = {"POSTGRES_PASSWORD": "{{ pg_password }}", "EXTRA_SETTING": "1", "APP_TOKEN": token}
        project.driver(env=env).ensure(_quiet)
        assert project.driver(env=env).plan() == []

        (action,) = project.driver(env={k: v for k, v in env.items() if k != "EXTRA_SETTING"}).plan()
        assert action.op is Op.REPLACE
        assert action.before == {"env": {"EXTRA_SETTING": "1"}} and action.after == {"env": {"EXTRA_SETTING": None}}

        new_token = f"tok-{uuid.uuid4().hex}"
        (action,) = project.driver(env={**env, "APP_TOKEN": new_token}).plan()
        assert action.before == {"env": {"APP_TOKEN": SENSITIVE}}
        assert action.after == {"env": {"APP_TOKEN": SENSITIVE_CHANGED}}
        _secret_free([action], token, new_token, project.password)

    def test_removed_container_comes_back_with_its_data(self, project: Project, engine: Any) -> None:
        project.driver().ensure(_quiet)
        with project.connect() as conn:
            conn.execute("create table kept (v int); insert into kept values (42)")
        remove_container(engine, project.name)  # what `docker rm -f` does
        driver = project.driver()
        assert [a.op for a in driver.plan()] == [Op.CREATE]
        driver.ensure(_quiet)
        with project.connect() as conn:
            assert conn.execute("select v from kept").fetchall() == [(42,)]

    def test_stopped_container_is_started(self, project: Project, engine: Any) -> None:
        project.driver().ensure(_quiet)
        engine.containers.get(project.name).stop(timeout=10)
        driver = project.driver()
        (action,) = driver.plan()
        assert action.op is Op.UPDATE
        assert action.before == {"state": "exited"} and action.after == {"state": "running"}
        assert driver.status().running is False
        driver.ensure(_quiet)
        assert driver.plan() == [] and driver.status().healthy

    def test_missing_image_and_bad_image_name(self, project: Project, engine: Any) -> None:
        for image in ("erpprov-test/does-not-exist:0", "Not A Valid Image!!"):
            with pytest.raises(ErpprovError) as caught:
                project.driver(image=image).ensure(_quiet)
            assert f"image {image} is not present locally and cannot be pulled: " in caught.value.message
            assert "docker load" in (caught.value.hint or "")
        assert project.driver().status().exists is False

    def test_port_already_in_use(self, project: Project) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", project.port))
            sock.listen()
            with pytest.raises(ErpprovError) as caught:
                project.driver().ensure(_quiet)
        assert caught.value.message.startswith(f"port {project.port} on 127.0.0.1 is already in use")
        # nothing half-made is left: the next plan says create again
        assert [a.op for a in project.driver().plan()] == [Op.CREATE]

    def test_never_healthy_fails_with_the_log(self, project: Project) -> None:
        driver = project.driver(healthcheck={"test": "exit 1", "interval": "0.5s", "retries": 2},
                                wait_timeout=20)
        with pytest.raises(ErpprovError) as caught:
            driver.ensure(_quiet)
        message = caught.value.message
        assert f"the container {project.name} is unhealthy" in message
        assert "lines of its log:" in message and "entrypoint" in message  # the log itself is included

    def test_slow_health_times_out_with_the_log(self, project: Project) -> None:
        driver = project.driver(healthcheck={"test": "exit 1", "interval": "30s", "retries": 3},
                                wait_timeout=3)
        lines, progress = _collect()
        with pytest.raises(ErpprovError) as caught:
            driver.ensure(progress)
        assert "did not become healthy within 3s" in caught.value.message
        assert "lines of its log:" in caught.value.message
        assert any(line.startswith(f"waiting for {project.name} to become healthy") for line in lines)

    def test_foreign_container_is_refused_and_left_alone(self, project: Project, engine: Any) -> None:
        foreign = engine.containers.create(project.image, name=project.name, command=["--version"])
        driver = project.driver()
        for attempt in (driver.plan, lambda: driver.ensure(_quiet), lambda: driver.destroy(True, _quiet)):
            with pytest.raises(ErpprovError, match="erpprov did not create it"):
                attempt()
        foreign.reload()
        assert foreign.status == "created" and engine.containers.get(project.name).id == foreign.id

    def test_data_of_another_major_is_refused(self, project: Project) -> None:
        project.data_dir.mkdir(parents=True)
        project.data_dir.joinpath("PG_VERSION").write_text("14\n")
        driver = project.driver()
        for attempt in (driver.plan, lambda: driver.ensure(_quiet)):
            with pytest.raises(ErpprovError) as caught:
                attempt()
            assert "holds a PostgreSQL 14 cluster" in caught.value.message
            assert "runs PostgreSQL 15" in caught.value.message
            assert "pg_upgrade" in (caught.value.hint or "")
        assert driver.status().exists is False
        assert project.data_dir.joinpath("PG_VERSION").read_text() == "14\n"
