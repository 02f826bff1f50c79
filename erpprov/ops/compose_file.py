"""`erpprov compose`: a play's plain `container:` as a Docker Compose service, for teams that want
the file. A value rendered from a secret (or held by a variable named like one) is not written:
the service reads it from the environment Compose runs in (`${NAME}`, e.g. from the .env file
beside the Compose file), so the file can be committed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from erpprov.core.model import Container
from erpprov.core.secrets import is_secret_name
from erpprov.core.target import Target
from erpprov.drivers.base import resolve_data_dir
from erpprov.drivers.docker_spec import healthcheck_spec, parse_port, pgdata_of, server_command
from erpprov.errors import ErpprovError

_NS = 1_000_000_000


def _seconds(nanoseconds: int) -> str:
    return f"{nanoseconds / _NS:g}s"


def compose_document(target: Target, service: str, base: Path) -> tuple[dict[str, Any], list[str]]:
    """The Compose document, for a file in directory ``base``, and the environment variables it
    leaves to the environment."""
    spec = target.play.container
    if not isinstance(spec, Container):
        raise ErpprovError(f"play {target.play.name!r} has no plain container section to write as a service",
                           hint="a play whose container already is a Compose service needs no file")
    secrets = set(target.secrets)
    environment: dict[str, str] = {}
    from_environment = []
    for key, value in spec.env.items():
        if is_secret_name(key) or value in secrets:
            environment[key] = "${" + key + ":?set " + key + " in the environment or .env}"
            from_environment.append(key)
        else:
            environment[key] = value.replace("$", "$$")  # Compose would interpolate a lone $
    check = healthcheck_spec(spec.healthcheck)
    healthcheck: dict[str, Any] = {"test": check["test"]}
    if check["test"] == ["NONE"]:
        healthcheck = {"disable": True}
    else:
        healthcheck |= {"interval": _seconds(check["interval"]), "timeout": _seconds(check["timeout"]),
                        "retries": check["retries"], "start_period": _seconds(check["start_period"])}
    body: dict[str, Any] = {
        "image": spec.image,
        "container_name": spec.name,
        "restart": spec.restart,
        "environment": environment,
        "ports": [f"{ip}:{host}:{inside}" if ip else f"{host}:{inside}" for ip, host, inside in
                  map(parse_port, spec.ports)],
        "healthcheck": healthcheck,
    }
    if spec.command:
        body["command"] = server_command(spec.command)
    pgdata = pgdata_of(spec, {})
    document: dict[str, Any] = {"services": {service: body}}
    if spec.volume:
        body["volumes"] = [f"{spec.volume}:{pgdata}"]
        document["volumes"] = {spec.volume: {"name": spec.volume}}
    else:
        data_dir = os.path.relpath(resolve_data_dir(target, spec.data_dir), base.resolve())
        body["volumes"] = [f"{data_dir if data_dir.startswith('.') else './' + data_dir}:{pgdata}"]
    if spec.shm_size:
        body["shm_size"] = spec.shm_size
    if spec.labels:
        body["labels"] = dict(spec.labels)
    return document, from_environment
