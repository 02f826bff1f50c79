"""The server as a service of the team's Docker Compose file (`container: {compose: FILE,
service: NAME}`): Compose itself creates, starts and recreates the container, with its own
project and labels, so `docker compose ps/logs/down -v` keep working on it; erpprov reads the
service from `docker compose config`, decides what must happen (the plan), and manages what runs
inside. Everything else (health, logs, status, exec, backups) is the docker driver's.

Compose recreates a container whenever its configuration moved. erpprov never lets it do so
unasked: it runs `up --no-recreate` (or `start`), and `up --force-recreate` only for a plan whose
REPLACE carries the `recreates_container` hazard. The attributes compared for that are those that
decide where the data is and who reaches it: image, environment, ports and the data mount.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from docker.models.containers import Container as DockerContainer
from pydantic import ValidationError

from erpprov.core.actions import Action, Hazard, Op, Phase
from erpprov.core.address import Address
from erpprov.core.model import ComposeService, Container, Healthcheck
from erpprov.core.target import Target
from erpprov.drivers.base import Driver, DriverStatus, Progress
from erpprov.drivers.docker import COMPOSE_PROJECT, COMPOSE_SERVICE, DockerDriver
from erpprov.drivers.docker_spec import DEFAULT_PGDATA, compare, env_dict
from erpprov.errors import ErpprovError

COMPARED = ("image", "env", "ports", "mounts")  # what makes erpprov (and only it) recreate the container
_TIMEOUT = 600.0  # seconds for one Compose command: `up` may pull an image
_ONE_OFF = "com.docker.compose.oneoff"


@functools.cache
def compose_program() -> tuple[str, ...]:
    """`docker compose` (the plugin) where the docker CLI has it, else `docker-compose`; asked
    once per run (a plan calls Compose several times)."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, timeout=60,
                                 check=False).returncode == 0:
        return (docker, "compose")
    legacy = shutil.which("docker-compose")
    if legacy:
        return (legacy,)
    raise ErpprovError("the play's container is a Compose service, but Docker Compose is not installed",
                       hint="install the compose plugin (`docker compose`) or docker-compose")


def default_project(compose_file: Path) -> str:
    """Compose's own default project name: the file's directory, lower case, [a-z0-9_-] only."""
    return re.sub(r"[^-_a-z0-9]", "", compose_file.resolve().parent.name.lower())


class ComposeDriver(DockerDriver):
    name = "compose"

    def __init__(self, target: Target):
        Driver.__init__(self, target)
        reference = target.play.container
        if not isinstance(reference, ComposeService):
            raise ErpprovError(f"play {target.play.name!r} names no Compose service")
        self.reference = reference
        self.file = (target.project_dir / reference.compose).resolve()
        if not self.file.is_file():
            raise ErpprovError(f"the Compose file {self.file} does not exist",
                               hint="container.compose is relative to the project directory")
        self._client = None
        self._majors = {}
        self.project = reference.project or ""
        config = self._config()
        self.project = self.project or str(config.get("name") or default_project(self.file))
        services = config.get("services") or {}
        if reference.service not in services:
            raise ErpprovError(f"{self.file} has no service {reference.service!r}"
                               + (f" with profile {reference.profile!r}" if reference.profile else ""),
                               hint=f"services: {', '.join(sorted(services)) or 'none'}")
        try:
            self.spec = service_container(services[reference.service], config.get("volumes") or {},
                                          project=self.project, reference=reference, base=self.file.parent)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ErpprovError(f"the service {reference.service} of {self.file} is not one erpprov can run: "
                               f"{problems}", hint="erpprov reads single published ports ([ip:]host:container), "
                                                   "the image, environment, data volume and healthcheck") from None

    @property
    def address(self) -> Address:
        return Address("container", f"{self.project}/{self.reference.service}")

    # --- Compose itself ---------------------------------------------------------------------

    def _command(self, *args: str) -> list[str]:
        command = [*compose_program(), "-f", str(self.file)]
        if self.project:  # unknown only while the configuration is read to find Compose's default
            command += ["-p", self.project]
        if self.reference.profile:
            command += ["--profile", self.reference.profile]
        return [*command, *args]

    def _run(self, *args: str) -> str:
        env = dict(os.environ)
        if self.target.connection.docker_host:
            env["DOCKER_HOST"] = self.target.connection.docker_host
        command = self._command(*args)
        try:
            done = subprocess.run(command, cwd=self.file.parent, env=env, capture_output=True, text=True,
                                  timeout=_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise ErpprovError(f"`{shlex.join(command[-len(args) - 1:])}` did not finish in {_TIMEOUT:g}s") from None
        if done.returncode != 0:
            said = "\n".join(f"  | {line}" for line in (done.stderr or done.stdout).strip().splitlines()[-15:])
            raise ErpprovError(f"Docker Compose failed ({shlex.join(args)} in {self.file}):\n{said}")
        return done.stdout

    def _config(self) -> dict[str, Any]:
        loaded = yaml.safe_load(self._run("config"))
        return loaded if isinstance(loaded, dict) else {}

    # --- the service as a container spec ----------------------------------------------------

    # --- the engine ---------------------------------------------------------------------------

    def _lookup(self) -> DockerContainer | None:
        found = [c for c in self.client.containers.list(all=True, filters={"label": [
            f"{COMPOSE_PROJECT}={self.project}", f"{COMPOSE_SERVICE}={self.reference.service}"]})
                 if (c.labels or {}).get(_ONE_OFF, "False").lower() != "true"]
        return found[0] if found else None

    def _find(self) -> DockerContainer | None:
        return self._lookup()  # Compose's labels make it the service's container: ours to manage

    def plan(self) -> list[Action]:
        container = self._lookup()
        if container is None:
            return [Action(self.address, Op.CREATE, Phase.CONTAINER, after=self._shown(),
                           note=f"docker compose up the service {self.reference.service} (project {self.project})")]
        before, after = self._changes(container, self._image(self.spec.image))
        if after:
            return [Action(self.address, Op.REPLACE, Phase.CONTAINER, before=before, after=after,
                           hazards=(Hazard.RECREATES_CONTAINER,),
                           note=f"docker compose up --force-recreate {self.reference.service}: the container is "
                                f"made anew ({', '.join(after)} changed); {self._storage_text()} is kept")]
        if container.status != "running":
            return [Action(self.address, Op.UPDATE, Phase.CONTAINER, before={"state": container.status},
                           after={"state": "running"}, note=f"docker compose start {self.reference.service}")]
        return []

    def data_dir(self) -> str | None:
        return self.spec.data_dir  # already absolute; None: a volume, or no mount at all

    def _storage_text(self) -> str:
        if self.spec.volume or self.spec.data_dir:
            return super()._storage_text()
        return "the container itself (the service mounts nothing at PGDATA)"

    def _guard_major(self, image: Any) -> None:
        if self.spec.volume or self.spec.data_dir:  # nothing to check when no data outlives the container
            super()._guard_major(image)

    def _shown(self) -> dict[str, Any]:
        return {"compose": str(self.file), "service": self.reference.service, "image": self.spec.image,
                "ports": self.spec.ports, "storage": self._storage_text()}

    def _changes(self, container: DockerContainer, image: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        live, own = self._live(container)
        desired = self._desired(image, fallback=own)
        # Only what decides where the data is and who reaches it; the rest is Compose's to keep.
        desired = {key: desired[key] if key in COMPARED else live[key] for key in live}
        before, after = compare(live, desired)
        if "image" not in after and image is not None and own is not None and image.id != own.id:
            before["image"], after["image"] = f"{live['image']} ({own.short_id})", f"{live['image']} ({image.short_id})"
        return before, after

    def ensure(self, progress: Progress) -> None:
        container = self._lookup()
        service = self.reference.service
        if container is None:
            self._guard_major(self._image(self.spec.image))
            progress(f"docker compose up {service} (project {self.project})")
            self._run("up", "-d", "--no-recreate", service)
        else:
            _before, after = self._changes(container, self._image(self.spec.image))
            if after:  # the apply's hazard gate let the plan's REPLACE through
                self._guard_major(self._image(self.spec.image))
                progress(f"docker compose up --force-recreate {service} ({', '.join(after)} changed)")
                self._run("up", "-d", "--force-recreate", "--no-deps", service)
            elif container.status != "running":
                progress(f"docker compose start {service}")
                self._run("start", service)
        found = self._lookup()
        if found is not None and found.name:
            self.spec = self.spec.model_copy(update={"name": found.name})
        self._wait_ready(progress)

    def status(self) -> DriverStatus:
        status = super().status()
        status.facts["managed"] = f"by Docker Compose (project {self.project}, service {self.reference.service})"
        return status

    def destroy(self, volumes: bool, progress: Progress) -> None:
        progress(f"docker compose rm --stop {self.reference.service} (project {self.project})")
        self._run("rm", "--stop", "--force", self.reference.service)
        if volumes and self.spec.volume:
            self._remove_volume(self.spec.volume, progress)
        elif volumes:
            self._remove_data_dir(progress)


def service_container(service: dict[str, Any], volumes: dict[str, Any], *, project: str,
                      reference: ComposeService, base: Path) -> Container:
    """A service of `compose config` (either Compose's spelling) as the container spec the docker
    driver compares and waits for; ``volumes`` is the file's top-level `volumes:`, ``base`` the
    directory relative bind mounts start from."""
    env = service.get("environment") or {}
    env = env_dict(env) if isinstance(env, list) else {str(k): "" if v is None else str(v) for k, v in env.items()}
    mount = _data_mount(service.get("volumes") or [], volumes, env.get("PGDATA") or DEFAULT_PGDATA, project, base)
    return Container(
        name=str(service.get("container_name") or f"{project}-{reference.service}"),
        image=str(service.get("image") or ""), ports=[p for p in map(_port, service.get("ports") or []) if p],
        volume=mount[1] if mount and mount[0] == "volume" else None,
        data_dir=mount[1] if mount and mount[0] == "bind" else None, env=env,
        healthcheck=_healthcheck(service.get("healthcheck")), wait_timeout=reference.wait_timeout)


def _data_mount(entries: list[Any], volumes: dict[str, Any], pgdata: str, project: str,
                base: Path) -> tuple[str, str] | None:
    """("volume", its full name) or ("bind", host path) of the mount at PGDATA."""
    for entry in entries:
        if isinstance(entry, str):
            source, _, rest = entry.partition(":")
            target, kind = rest.split(":")[0], "bind" if source.startswith(("/", ".", "~")) else "volume"
        else:
            source, target, kind = str(entry.get("source", "")), str(entry.get("target", "")), entry.get("type")
        if target.rstrip("/") != pgdata.rstrip("/") or not source:
            continue
        if kind == "bind":
            return "bind", str((base / Path(source).expanduser()).resolve())
        declared = volumes.get(source) or {}
        external = declared.get("external")
        name = declared.get("name") or (external.get("name") if isinstance(external, dict) else None)
        return "volume", str(name or (source if external else f"{project}_{source}"))
    return None


def _port(entry: Any) -> str | None:
    """A published port as the play writes it ([ip:]host:container), from either config form."""
    if isinstance(entry, dict):
        published, target, ip = entry.get("published"), entry.get("target"), entry.get("host_ip")
        if not published or not target:
            return None
        return f"{ip}:{published}:{target}" if ip else f"{published}:{target}"
    text = str(entry).removesuffix("/tcp")
    return text if ":" in text else None


def _healthcheck(check: dict[str, Any] | None) -> Healthcheck:
    """The service's health check; none (or disabled): wait until it runs and takes connections."""
    if not check or check.get("disable"):
        return Healthcheck(test="NONE")
    values = {key: check[key] for key in ("test", "interval", "timeout", "retries", "start_period") if key in check}
    return Healthcheck.model_validate(values)
