"""The docker driver: the play's `container:` run through the Docker Engine API (docs/design.md, decision 9).

The pure spec/compare half lives in `docker_spec`; this module is the I/O around it: finding the
container, pulling, creating, waiting for health, and the guards that keep data safe (a container
erpprov did not create is never touched; a data directory of another PostgreSQL major is never
started on).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import docker
from docker.errors import (
    APIError,
    ContainerError,
    DockerException,
    ImageNotFound,
    NotFound,
)
from docker.models.containers import Container as DockerContainer
from docker.models.images import Image
from docker.types import Mount
from docker.utils import parse_repository_tag

from erpprov.core import interrupt
from erpprov.core.actions import Action, Hazard, Op, Phase
from erpprov.core.address import Address
from erpprov.core.model import Container
from erpprov.core.secrets import is_secret_name
from erpprov.core.target import Target
from erpprov.drivers.base import Driver, DriverStatus, Progress, resolve_data_dir
from erpprov.drivers.docker_spec import (
    HASH_LABEL,
    LABEL_PREFIX,
    MANAGED_LABEL,
    compare,
    desired_state,
    display_state,
    env_dict,
    live_state,
    major_from_tag,
    major_from_version_output,
    parse_port,
    pgdata_of,
    spec_hash,
)
from erpprov.errors import ErpprovError
from erpprov.postgres.connect import connect

LOG_LINES_ON_FAILURE = 20
PROGRESS_EVERY = 2.0  # seconds between two progress lines of the same kind
STOP_TIMEOUT = 30  # seconds; the image's STOPSIGNAL (SIGINT for postgres) is a fast shutdown
PROBE_MOUNT = "/erpprov-data"  # where throwaway containers see the data directory
_PORT_IN_USE = ("address already in use", "port is already allocated")
# What Docker Compose (v1 and v2) labels its containers with.
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_FILES = "com.docker.compose.project.config_files"


def connect_engine(docker_host: str | None) -> docker.DockerClient:
    """The host's `docker_host` engine, or the local one (DOCKER_HOST / the default socket)."""
    where = docker_host or os.environ.get("DOCKER_HOST") or "the local Docker engine"
    try:
        if docker_host:
            # ssh:// through the ssh program, so that paramiko is not a dependency
            client = docker.DockerClient(base_url=docker_host, use_ssh_client=docker_host.startswith("ssh://"))
        else:
            client = docker.from_env()
        client.ping()
        return client
    except Exception as exc:  # DockerException, and requests/urllib3 errors that docker-py lets through
        raise ErpprovError(
            f"cannot reach the Docker engine at {where}: {_reason(exc)}",
            hint="start Docker (dockerd), check docker_host / DOCKER_HOST, or use `driver: local` for this host",
        ) from None


def _reason(exc: Exception) -> str:
    """The engine's own words, without docker-py's 'Server Error for http+docker://...' wrapping."""
    text = getattr(exc, "explanation", None) or str(exc)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return " ".join(str(text).split())


class DockerDriver(Driver):
    name = "docker"

    def __init__(self, target: Target):
        super().__init__(target)
        if not isinstance(target.play.container, Container):  # a Compose service is ComposeDriver's
            raise ErpprovError(
                f"play {target.play.name!r} has no container section; the docker driver runs one",
                hint="add a `container:` section, or set `driver: external` for this host",
            )
        self.spec = target.play.container
        clash = sorted(k for k in self.spec.labels if k.startswith(LABEL_PREFIX))
        if clash:
            raise ErpprovError(f"container label {clash[0]!r} uses the prefix {LABEL_PREFIX!r}, which erpprov reserves",
                               hint="rename the label")
        self._client: docker.DockerClient | None = None
        self._majors: dict[str, str | None] = {}  # image id → PostgreSQL major

    @property
    def address(self) -> Address:
        return Address("container", self.spec.name)

    # --- the engine and what it holds -------------------------------------------------------

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect_engine(self.target.connection.docker_host)
        return self._client

    @property
    def local_engine(self) -> bool:
        """A unix-socket engine shares our file system, so data_dir can be made and read here."""
        return self.client.api.base_url.startswith("http+docker://")

    def _lookup(self) -> DockerContainer | None:
        try:
            return self.client.containers.get(self.spec.name)
        except NotFound:
            return None

    def _find(self) -> DockerContainer | None:
        """The container of this play, or None; a same-named container erpprov did not create is refused."""
        container = self._lookup()
        labels = (container.labels or {}) if container is not None else {}
        if container is not None and labels.get(MANAGED_LABEL) != "true" and not self.spec.adopt:
            project, service = labels.get(COMPOSE_PROJECT), labels.get(COMPOSE_SERVICE)
            made_by = f"; Docker Compose runs it (project {project}, service {service})" if project else ""
            compose = (f"container: {{compose: {labels.get(COMPOSE_FILES, 'docker-compose.yml').split(',')[0]}, "
                       f"service: {service or 'NAME'}}}")
            raise ErpprovError(
                f"a container named {self.spec.name} exists but erpprov did not create it "
                f"(no {MANAGED_LABEL}=true label){made_by}; refusing to touch it",
                hint=f"if Compose runs it, point the play at its service ({compose}); or add `adopt: true` to "
                     "the play's container to manage it as it is (recreated only with --allow-hazard "
                     "recreates_container); or remove or rename it yourself if it is disposable",
            )
        return container

    def _image(self, ref: str) -> Image | None:
        """The image by reference or id, or None when the engine has no such image."""
        try:
            return self.client.images.get(ref)
        except ImageNotFound:
            return None
        except APIError:  # e.g. an invalid reference: the pull that follows says why, clearly
            return None

    # --- desired versus live ----------------------------------------------------------------

    def data_dir(self) -> str | None:
        """Absolute host path of the data directory, or None when a named volume holds the data."""
        if self.spec.volume:
            return None
        return str(resolve_data_dir(self.target, self.spec.data_dir))

    def _desired(self, image: Image | None, fallback: Image | None = None) -> dict[str, Any]:
        # Without the image (not pulled yet) the container's own image is the best guess of its env
        source = image or fallback
        config = (source.attrs.get("Config") or {}) if source else {}
        return desired_state(self.spec, data_dir=self.data_dir(), image_env=env_dict(config.get("Env")),
                             image_labels=config.get("Labels") or {})

    def _live(self, container: DockerContainer) -> tuple[dict[str, Any], Image | None]:
        own = self._image(container.attrs.get("Image", ""))
        config = (own.attrs.get("Config") or {}) if own else {}
        live = live_state(container.attrs, image_env=env_dict(config.get("Env")),
                          image_labels=config.get("Labels") or {})
        return live, own

    def _changes(self, container: DockerContainer, image: Image | None) -> tuple[dict[str, Any], dict[str, Any]]:
        live, own = self._live(container)
        before, after = compare(live, self._desired(image, fallback=own))
        # Same tag, other image (rebuilt or pulled anew): a change too, as `docker compose up` sees it
        if "image" not in after and image is not None and own is not None and image.id != own.id:
            before["image"] = f"{live['image']} ({own.short_id})"
            after["image"] = f"{live['image']} ({image.short_id})"
        return before, after

    # --- plan -------------------------------------------------------------------------------

    def plan(self) -> list[Action]:
        container = self._find()
        image = self._image(self.spec.image)
        if container is None:
            self._guard_major(image)
            desired = display_state(self._desired(image))
            return [Action(self.address, Op.CREATE, Phase.CONTAINER, after=desired,
                           note=self._create_note(image))]
        before, after = self._changes(container, image)
        if after:
            self._guard_major(image)
            return [Action(self.address, Op.REPLACE, Phase.CONTAINER, before=before, after=after,
                           hazards=(Hazard.RECREATES_CONTAINER,), note=self._replace_note(after))]
        if container.status != "running":
            return [Action(self.address, Op.UPDATE, Phase.CONTAINER, before={"state": container.status},
                           after={"state": "running"}, note=f"start the stopped container {self.spec.name}")]
        return []

    def _create_note(self, image: Image | None) -> str:
        pulled = "" if image is not None else f"pull {self.spec.image}, then "
        return f"{pulled}create and start the container {self.spec.name}"

    def _replace_note(self, after: dict[str, Any]) -> str:
        changed = ", ".join(after)
        where = self._storage_text()
        if "mounts" in after:
            keep = f"the server will run on what {where} holds; the old data location is left as it is"
        else:
            keep = f"the data in {where} survives"
        note = f"stop, remove and create the container anew ({changed} changed); brief downtime; {keep}"
        env_after = after.get("env") or {}
        if env_after and all(is_secret_name(k) for k in env_after) and set(after) == {"env"}:
            note += ("; note that POSTGRES_PASSWORD only takes effect when a data directory is first initialized: "
                     "the server's password itself is changed through the role")
        return note

    def _storage_text(self) -> str:
        return f"volume {self.spec.volume}" if self.spec.volume else str(self.data_dir())

    # --- ensure -----------------------------------------------------------------------------

    def ensure(self, progress: Progress) -> None:
        image = self._ensure_image(progress)  # before anything is removed: a failed pull changes nothing
        container = self._find()
        if container is None:
            self._guard_major(image)
            self._create_and_start(image, progress)
        else:
            _before, after = self._changes(container, image)
            if after:
                self._guard_major(image)
                progress(f"recreating {self.spec.name} ({', '.join(after)} changed; "
                         f"{self._storage_text()} is kept)")
                self._remove(container)
                self._create_and_start(image, progress)
            elif container.status != "running":
                progress(f"starting {self.spec.name}")
                self._start(container, fresh=False)
        self._wait_ready(progress)

    def _ensure_image(self, progress: Progress) -> Image:
        ref = self.spec.image
        image = self._image(ref)
        if image is not None:
            return image
        progress(f"pulling {ref}")
        repository, tag = parse_repository_tag(ref)
        try:
            events = self.client.api.pull(repository, tag=tag or "latest", stream=True, decode=True)
            follow_pull(ref, events, progress)
        except (DockerException, ErpprovError) as exc:
            raise self._pull_error(ref, _reason(exc) if isinstance(exc, DockerException) else exc.message) from None
        image = self._image(ref)
        if image is None:
            raise self._pull_error(ref, "the pull finished but the engine does not list the image")
        progress(f"pulled {ref} ({image.short_id})")
        return image

    def _pull_error(self, ref: str, reason: str) -> ErpprovError:
        return ErpprovError(
            f"image {ref} is not present locally and cannot be pulled: {reason}",
            hint="check the image name; without registry access build or `docker load` it first, "
                 "or set another image in the play's container.image",
        )

    def _create_and_start(self, image: Image, progress: Progress) -> None:
        desired = self._desired(image)
        data_dir = self.data_dir()
        if data_dir and self.local_engine:
            Path(data_dir).mkdir(parents=True, exist_ok=True)
        progress(f"creating {self.spec.name} from {self.spec.image}")
        try:
            container = self.client.containers.create(**self._create_arguments(image, desired))
        except APIError as exc:
            raise ErpprovError(f"cannot create the container {self.spec.name}: {_reason(exc)}",
                               hint="check the play's container section") from None
        self._start(container, fresh=True)

    def _create_arguments(self, image: Image, desired: dict[str, Any]) -> dict[str, Any]:
        pgdata = pgdata_of(self.spec, env_dict((image.attrs.get("Config") or {}).get("Env")))
        bindings: dict[str, list[Any]] = {}
        for port in self.spec.ports:
            ip, host, inside = parse_port(port)
            bindings.setdefault(f"{inside}/tcp", []).append((ip, host) if ip else host)
        storage = self.spec.volume or self.data_dir()
        check = desired["healthcheck"]
        return {
            "image": self.spec.image,
            "name": self.spec.name,
            "command": desired["command"],
            "environment": dict(self.spec.env),
            "ports": bindings,
            # Binds (not Mounts): the engine creates a missing directory, which matters for remote engines
            "volumes": {storage: {"bind": pgdata, "mode": "rw"}} if storage else None,
            "healthcheck": {"test": check["test"], "interval": check["interval"], "timeout": check["timeout"],
                            "retries": check["retries"], "start_period": check["start_period"]},
            "restart_policy": {"Name": self.spec.restart},
            "shm_size": desired["shm_size"],
            "labels": {**self.spec.labels, MANAGED_LABEL: "true", HASH_LABEL: spec_hash(desired)},
            "detach": True,
        }

    def _start(self, container: DockerContainer, *, fresh: bool) -> None:
        try:
            container.start()
        except APIError as exc:
            if fresh:  # leave nothing half-made behind: the next plan must say "create" again
                container.remove(force=True)
            raise self._start_error(exc) from None

    def _start_error(self, exc: APIError) -> ErpprovError:
        text = _reason(exc)
        if any(marker in text.lower() for marker in _PORT_IN_USE):
            found = re.findall(r"(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):(\d+)", text)
            ip, port = found[-1] if found else ("?", "?")
            return ErpprovError(
                f"port {port} on {ip} is already in use, so the container {self.spec.name} cannot publish it",
                hint=f"stop what listens there (`ss -ltnp 'sport = :{port}'` shows it), "
                     "or change the port mapping (container.ports) and pg_port",
            )
        return ErpprovError(f"cannot start the container {self.spec.name}: {text}")

    def _remove(self, container: DockerContainer) -> None:
        try:
            if container.status == "running":
                container.stop(timeout=STOP_TIMEOUT)
            container.remove(force=True)
        except NotFound:
            pass  # already gone, which is what we wanted

    # --- waiting for the server -------------------------------------------------------------

    def _wait_ready(self, progress: Progress) -> None:
        """Healthy by Docker's health check AND accepting our connections, within wait_timeout."""
        name, timeout = self.spec.name, self.spec.wait_timeout
        started = time.monotonic()
        deadline = started + timeout
        reported = started
        container = self._lookup()
        if container is None:
            raise ErpprovError(f"the container {name} disappeared while starting")
        checked = self.spec.healthcheck.test not in ("NONE", ["NONE"])
        while True:
            container.reload()
            state = container.attrs.get("State") or {}
            health = (state.get("Health") or {}).get("Status")
            if state.get("Restarting") or state.get("Status") in ("exited", "dead"):
                raise self._failure(container, f"the container {name} stopped while starting "
                                               f"(exit code {state.get('ExitCode')})")
            if health == "unhealthy":
                raise self._failure(container, f"the container {name} is unhealthy: {_last_check(state)}")
            if health == "healthy" or (not checked and state.get("Status") == "running"):
                break
            now = time.monotonic()
            if now >= deadline:
                raise self._failure(container, f"the container {name} did not become healthy within {timeout:g}s "
                                               f"(health: {health or 'none'}; {_last_check(state)})")
            if now - reported >= PROGRESS_EVERY:
                reported = now
                progress(f"waiting for {name} to become healthy ({now - started:.0f}s)")
            interrupt.check()
            time.sleep(0.25)
        conn = self.target.connection
        try:
            with connect(conn, wait=max(1.0, deadline - time.monotonic())):
                pass
        except ErpprovError as exc:
            raise self._failure(container, f"{name} is healthy but {exc.message}", hint=exc.hint) from None
        progress(f"{name} is healthy and accepting connections on {conn.pg_host}:{conn.pg_port} "
                 f"({time.monotonic() - started:.1f}s)")

    def _failure(self, container: DockerContainer, message: str, hint: str | None = None) -> ErpprovError:
        lines = self._tail(container, LOG_LINES_ON_FAILURE)
        text = f"{message}\nlast {len(lines)} lines of its log:\n" + "\n".join(f"  | {line}" for line in lines)
        return ErpprovError(text, hint=hint or f"`erpprov logs` shows the whole log; the container {self.spec.name} "
                                               "is left in place for inspection")

    @staticmethod
    def _tail(container: DockerContainer, lines: int) -> list[str]:
        try:
            return container.logs(tail=lines).decode(errors="replace").splitlines()
        except DockerException as exc:
            return [f"(the log cannot be read: {_reason(exc)})"]

    # --- the major-version guard ------------------------------------------------------------

    def _guard_major(self, image: Image | None) -> None:
        """Never start a server on a data directory written by another PostgreSQL major."""
        data_major = self._data_major(image)
        if data_major is None:
            return
        image_major = self._image_major(image)
        if image_major is None or image_major == data_major:
            return
        raise ErpprovError(
            f"{self._storage_text()} holds a PostgreSQL {data_major} cluster (its PG_VERSION), but the image "
            f"{self.spec.image} runs PostgreSQL {image_major}; a server never starts on another major's data, "
            "so erpprov refuses to create the container",
            hint=f"keep an image of PostgreSQL {data_major}; to move to {image_major}, dump with the old server "
                 "(pg_dumpall) and restore into a new, empty data_dir, or run pg_upgrade between both",
        )

    def _data_major(self, image: Image | None) -> str | None:
        data_dir = self.data_dir()
        if data_dir and self.local_engine:
            try:
                return (Path(data_dir) / "PG_VERSION").read_text().strip() or None
            except FileNotFoundError:
                return None
            except (PermissionError, NotADirectoryError):
                pass  # owned by the container's postgres account: ask a throwaway container
        if self.spec.volume:
            try:
                self.client.volumes.get(self.spec.volume)
            except NotFound:
                return None
        if image is None:
            return None  # not pulled yet; ensure() checks again after the pull
        output = self._probe(image, ["cat", f"{PROBE_MOUNT}/PG_VERSION"], mount=True)
        return (output or "").strip() or None

    def _image_major(self, image: Image | None) -> str | None:
        if image is None:
            return major_from_tag(self.spec.image)
        image_id = _id(image)
        if image_id not in self._majors:
            env = env_dict((image.attrs.get("Config") or {}).get("Env"))
            major = env.get("PG_MAJOR")  # the official images say it
            if not major:
                output = self._probe(image, ["postgres", "--version"], mount=False)
                major = major_from_version_output(output or "")
            self._majors[image_id] = major or major_from_tag(self.spec.image)
        return self._majors[image_id]

    def _probe(self, image: Image, argv: list[str], *, mount: bool) -> str | None:
        """Run one program in a throwaway container of ``image`` (its entrypoint bypassed); its output."""
        mounts = []
        if mount:
            kind: Literal["volume", "bind"] = "volume" if self.spec.volume else "bind"
            source = self.spec.volume or self.data_dir()
            mounts.append(Mount(PROBE_MOUNT, source, type=kind, read_only=True))
        try:
            output = self.client.containers.run(image, entrypoint=[argv[0]], command=argv[1:], user="0",
                                                mounts=mounts, remove=True, stdout=True, stderr=False,
                                                labels={f"{LABEL_PREFIX}probe": "true"}, network_mode="none")
        except (ContainerError, APIError):
            return None
        return output.decode(errors="replace") if isinstance(output, bytes) else None

    # --- status, logs, exec, destroy --------------------------------------------------------

    def status(self) -> DriverStatus:
        container = self._lookup()
        if container is None:
            return DriverStatus(self.name, exists=False, running=False, healthy=False,
                                detail=f"container {self.spec.name} does not exist",
                                facts={"container": self.spec.name, "image": self.spec.image})
        state = container.attrs.get("State") or {}
        health = (state.get("Health") or {}).get("Status")
        running = state.get("Status") == "running"
        managed = (container.labels or {}).get(MANAGED_LABEL) == "true"
        live, _own = self._live(container)
        facts = {
            "container": self.spec.name,
            "id": container.short_id,
            "image": (container.attrs.get("Config") or {}).get("Image", ""),
            "state": state.get("Status", "?"),
            "health": health or "none",
            "ports": ", ".join(live["ports"]) or "-",
            "storage": ", ".join(live["mounts"]) or "-",
            "managed": "yes" if managed else _unmanaged(self.spec.adopt),
        }
        if managed:
            desired_hash = spec_hash(self._desired(self._image(self.spec.image), fallback=_own))
            facts["spec"] = "in sync" if container.labels.get(HASH_LABEL) == desired_hash else "differs from the play"
        healthy = running and health in ("healthy", None)
        detail = f"{state.get('Status', '?')}" + (f", {health}" if health else "")
        return DriverStatus(self.name, exists=True, running=running, healthy=healthy, detail=detail, facts=facts)

    def logs(self, tail: int, follow: bool) -> Iterator[str]:
        container = self._lookup()
        if container is None:
            raise ErpprovError(f"the container {self.spec.name} does not exist", hint="run `erpprov apply` first")
        if not follow:
            yield from container.logs(tail=tail).decode(errors="replace").splitlines()
            return
        pending = ""
        for chunk in container.logs(stream=True, follow=True, tail=tail):
            pending += chunk.decode(errors="replace")
            *lines, pending = pending.split("\n")
            yield from lines
        if pending:
            yield pending

    def _running(self) -> DockerContainer:
        container = self._find()
        if container is None or container.status != "running":
            raise ErpprovError(f"the container {self.spec.name} is not running", hint="run `erpprov apply` first")
        return container

    def _client_env(self) -> dict[str, str]:
        # Inside the container the client uses the unix socket; no password is passed around
        conn = self.target.connection
        return {"PGUSER": conn.pg_user, "PGDATABASE": conn.pg_database}

    def exec(self, argv: list[str], *, interactive: bool = False) -> int:
        if not argv:
            raise ErpprovError("nothing to run", hint="name a client program, e.g. psql")
        container = self._running()
        env = self._client_env()
        if interactive:
            return subprocess.call(self._cli_command(container, argv, tty=sys.stdin.isatty()))
        api = self.client.api
        exec_id = api.exec_create(container.id, argv, environment=env, stdout=True, stderr=True)["Id"]
        for out, err in api.exec_start(exec_id, stream=True, demux=True):
            if out:
                _write(sys.stdout, out)
            if err:
                _write(sys.stderr, err)
        return int(api.exec_inspect(exec_id).get("ExitCode") or 0)

    def client_process(self, argv: list[str]) -> subprocess.Popen[bytes]:
        """pg_dump/psql/pg_restore inside the container, streaming through `docker exec -i`
        (never -t, so stdout stays byte-exact and stderr separate)."""
        command = self._cli_command(self._running(), argv, tty=False)
        return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def _cli_command(self, container: DockerContainer, argv: list[str], *, tty: bool) -> list[str]:
        """`docker exec`: the CLI owns a terminal (raw mode, resizes) and streams stdin, which the
        API does not give."""
        docker_cli = shutil.which("docker")
        if docker_cli is None:
            raise ErpprovError(f"running {argv[0]} in the container needs the docker command-line program",
                               hint="install the docker CLI")
        command = [docker_cli]
        if self.target.connection.docker_host:
            command += ["--host", self.target.connection.docker_host]
        command += ["exec", "-i"] + (["-t"] if tty else [])
        for key, value in self._client_env().items():
            command += ["--env", f"{key}={value}"]
        return [*command, _id(container), *argv]

    def destroy(self, volumes: bool, progress: Progress) -> None:
        container = self._find()
        if container is not None:
            progress(f"stopping and removing {self.spec.name}")
            self._remove(container)
        else:
            progress(f"the container {self.spec.name} does not exist")
        if not volumes:
            return
        if self.spec.volume:
            self._remove_volume(self.spec.volume, progress)
        else:
            self._remove_data_dir(progress)

    def _remove_volume(self, name: str, progress: Progress) -> None:
        try:
            volume = self.client.volumes.get(name)
        except NotFound:
            return
        progress(f"removing volume {name}")
        try:
            volume.remove()
        except APIError as exc:
            raise ErpprovError(f"cannot remove volume {name}: {_reason(exc)}") from None

    def _remove_data_dir(self, progress: Progress) -> None:
        data_dir = self.data_dir()
        if data_dir is None:
            return
        path = Path(data_dir)
        if path == Path(path.anchor) or path in self.target.project_dir.resolve().parents \
                or path == self.target.project_dir.resolve():
            raise ErpprovError(f"refusing to delete {path}: it is not a data directory but holds the project",
                               hint="set container.data_dir to a directory of its own")
        if self.local_engine and not path.exists():
            return
        progress(f"deleting {path}")
        if self.local_engine and os.geteuid() == 0:
            shutil.rmtree(path)
            return
        # The files belong to the container's postgres account: empty the directory from a throwaway
        # container (as root inside), then remove the now empty directory, which is ours
        image = self._image(self.spec.image)
        if image is None:
            raise ErpprovError(f"cannot delete {path}: its files belong to the container's account and the "
                               f"image {self.spec.image} is not here to delete them with",
                               hint=f"delete it as root (sudo rm -r {path})")
        try:
            self.client.containers.run(image, entrypoint=["find"],
                                       command=[PROBE_MOUNT, "-mindepth", "1", "-delete"], user="0",
                                       mounts=[Mount(PROBE_MOUNT, str(path), type="bind")], remove=True,
                                       network_mode="none", labels={f"{LABEL_PREFIX}probe": "true"})
        except (ContainerError, APIError) as exc:
            raise ErpprovError(f"cannot delete {path}: {_reason(exc)}", hint="delete it as root") from None
        if self.local_engine:
            path.rmdir()


def follow_pull(ref: str, events: Iterable[dict[str, Any]], progress: Progress,
                every: float = PROGRESS_EVERY) -> None:
    """Layer and byte counts from a pull's event stream, at most one line every ``every`` seconds."""
    layers: dict[str, tuple[int, int]] = {}
    done: set[str] = set()
    last = time.monotonic()
    for event in events:
        if "error" in event:  # the engine reports some failures inside the stream, with HTTP 200
            raise ErpprovError(str(event["error"]))
        layer, status = event.get("id"), event.get("status", "")
        detail = event.get("progressDetail") or {}
        if layer and detail.get("total"):
            layers[layer] = (int(detail.get("current", 0)), int(detail["total"]))
        if layer and status in ("Pull complete", "Already exists"):
            done.add(layer)
        if layers and time.monotonic() - last >= every:
            last = time.monotonic()
            current = sum(c for c, _ in layers.values()) / 1e6
            total = sum(t for _, t in layers.values()) / 1e6
            progress(f"pulling {ref}: {len(done)}/{len(set(layers) | done)} layers done, "
                     f"{current:.1f}/{total:.1f} MB")


def _unmanaged(adopted: bool) -> str:
    return "adopted (adopt: true)" if adopted else "no (not created by erpprov)"


def _last_check(state: dict[str, Any]) -> str:
    """What the last health check printed, which often says why it fails."""
    log = (state.get("Health") or {}).get("Log") or []
    if not log:
        return "no health check has run yet"
    last = log[-1]
    output = " ".join(str(last.get("Output", "")).split())[:200]
    return f"last check exited {last.get('ExitCode')}" + (f": {output}" if output else "")


def _write(stream: Any, data: bytes) -> None:
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        buffer.write(data)
        buffer.flush()
    else:
        stream.write(data.decode(errors="replace"))


def _id(model: Image | DockerContainer) -> str:
    """The id of an image or container the engine returned, which always has one."""
    if model.id is None:
        raise ErpprovError(f"the Docker engine returned {model!r} without an id")
    return model.id
