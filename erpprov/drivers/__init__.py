"""Choose the driver for a target: docker, local, external, or auto (docker when an engine answers)."""

from __future__ import annotations

from erpprov.core.model import ComposeService
from erpprov.core.target import Target
from erpprov.drivers.base import Driver


def docker_available(docker_host: str | None = None) -> bool:
    try:
        import docker

        client = docker.DockerClient(base_url=docker_host, timeout=3) if docker_host else docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure to reach an engine means "no docker" for auto
        return False


def make_driver(target: Target) -> Driver:
    kind = target.connection.driver
    if isinstance(target.play.container, ComposeService) and kind in ("auto", "docker"):
        from erpprov.drivers.compose import ComposeDriver

        return ComposeDriver(target)
    if target.play.container is None and kind == "auto":
        kind = "external"  # nothing to run: the play only describes the SQL side
    if kind == "auto":
        kind = "docker" if docker_available(target.connection.docker_host) else "local"
    if kind == "docker":
        from erpprov.drivers.docker import DockerDriver

        return DockerDriver(target)
    if kind == "local":
        from erpprov.drivers.local import LocalDriver

        return LocalDriver(target)
    from erpprov.drivers.external import ExternalDriver

    return ExternalDriver(target)
