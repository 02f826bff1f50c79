"""Container options no test had given the real Docker engine: healthcheck.start_period,
restart: on-failure and a named volume, read back through the Docker SDK; and the
recreates_container hazard, refused by a real `erpprov apply` until --allow-hazard allows it."""

from __future__ import annotations

import contextlib
from typing import Any

import docker
import pytest

from tests.dockerenv import needs_engine
from tests.helpers import Run, assert_clean_error, erpprov, remove_container
from tests.test_docker_driver import Project, project  # noqa: F401 - the fixture

pytestmark = needs_engine

PGDATA = "/var/lib/postgresql/data"
PLAYBOOK = "playbooks/site.yaml"  # where Project.target() writes it


def _cli(created: Project, *args: str) -> Run:
    return erpprov(created.tmp, *args, PLAYBOOK, timeout=240, mem=None)


@pytest.mark.usefixtures("test_image")
def test_start_period_on_failure_and_volume_then_recreate_only_when_allowed(project: Project,  # noqa: F811
                                                                           engine: Any) -> None:
    volume = f"{project.name}-data"
    base = {"data_dir": None, "volume": volume, "restart": "on-failure",
            "healthcheck": {**project.container()["healthcheck"], "start_period": "7s"}}
    try:
        project.target(**base)  # writes the inventory and the playbook
        applied = _cli(project, "apply")
        assert applied.returncode == 0, str(applied)
        attrs = engine.containers.get(project.name).attrs
        assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "on-failure"
        assert attrs["Config"]["Healthcheck"]["StartPeriod"] == 7 * 10**9
        mounts = [(m["Type"], m.get("Name"), m["Destination"]) for m in attrs["Mounts"]]
        assert ("volume", volume, PGDATA) in mounts and not any(m[0] == "bind" for m in mounts), mounts
        assert not (project.tmp / "data").exists()  # nothing on the host: the data lives in the volume
        assert _cli(project, "plan", "--detailed-exitcode").returncode == 0
        with project.connect() as conn:
            conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('in the volume')")
        first_id = attrs["Id"]

        # A new start_period can only be had by recreating the container: a hazard.
        project.target(**{**base, "healthcheck": {**base["healthcheck"], "start_period": "9s"}})
        refused = _cli(project, "apply")
        assert_clean_error(refused, "apply refuses 1 hazardous change(s); nothing was changed",
                           f"container.{project.name} (recreates_container)", "--allow-hazard recreates_container")
        assert engine.containers.get(project.name).id == first_id
        wrong_kind = _cli(project, "apply", "--allow-hazard", "drops_role")
        assert_clean_error(wrong_kind, "(recreates_container)")
        assert engine.containers.get(project.name).id == first_id

        allowed = _cli(project, "apply", "--allow-hazard", "recreates_container")
        assert allowed.returncode == 0, str(allowed)
        assert f"changed: [localhost] container {project.name}" in allowed.stdout, str(allowed)
        container = engine.containers.get(project.name)
        assert container.id != first_id
        assert container.attrs["Config"]["Healthcheck"]["StartPeriod"] == 9 * 10**9
        with project.connect() as conn:  # the volume outlived the container
            assert conn.execute("SELECT v FROM kept").fetchall() == [("in the volume",)]
        assert _cli(project, "plan", "--detailed-exitcode").returncode == 0

        destroyed = erpprov(project.tmp, "destroy", "--volumes", "--yes", PLAYBOOK, timeout=120, mem=None)
        assert destroyed.returncode == 0, str(destroyed)
        with pytest.raises(docker.errors.NotFound):
            engine.volumes.get(volume)
    finally:
        remove_container(engine, project.name)
        with contextlib.suppress(docker.errors.NotFound):
            engine.volumes.get(volume).remove(force=True)
