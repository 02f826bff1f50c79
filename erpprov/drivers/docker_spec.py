"""The pure half of the docker driver: a play's `container:` spec and a live container, both turned
into one canonical dict of what erpprov controls, and the attribute-by-attribute comparison.

Nothing here talks to an engine, so it is unit-tested without one (tests/test_docker_driver.py).

How drift is decided (and why): the live container, as `docker inspect` shows it, is the truth, so an
out-of-band `docker update --restart no` or a recreated container is seen. But inspect mixes what the
spec set with what the image brings (PATH, LANG, PGDATA, PG_VERSION..., image labels). Both sides are
therefore reduced the same way: an env var or label whose value equals the image's own is dropped
from the desired AND the live side. A variable the spec sets to a different value, or set before and
now removed from the spec, stays on one side only, so it shows as a change. The live side is reduced
with the env of the image the container was created from, the desired side with the env of the image
it will be created from. The `erpprov.spec-hash` label records which spec a container was made from
(for people and `status`); it is not the basis of the decision, because it cannot see edits made
behind erpprov's back.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from erpprov.core.actions import SENSITIVE
from erpprov.core.model import Container, Healthcheck
from erpprov.core.secrets import is_secret_name

MANAGED_LABEL = "erpprov.managed"
HASH_LABEL = "erpprov.spec-hash"
LABEL_PREFIX = "erpprov."
DEFAULT_PGDATA = "/var/lib/postgresql/data"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024  # Docker's documented default; set explicitly so it reads back equal
SENSITIVE_CHANGED = f"{SENSITIVE[:-1]}, changed)"
ATTRIBUTES = ("image", "env", "ports", "mounts", "command", "healthcheck", "restart", "shm_size", "labels")
_NS = 1_000_000_000
_SIZE = re.compile(r"^\s*(\d+)\s*([bkmg]?)b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_ANONYMOUS_VOLUME = re.compile(r"^[0-9a-f]{64}$")


def parse_size(text: str | int) -> int:
    """`256m`, `1g`, `64mb`, `1048576` → bytes (Docker's units are binary)."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size; write e.g. 256m or 1g")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def format_size(size: int) -> str:
    for unit in ("g", "m", "k"):
        if size and size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return str(size)


def normalize_image(ref: str) -> str:
    """`postgres` and `postgres:latest` are one image; a digest reference is kept as written."""
    if "@" in ref:
        return ref
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else f"{ref}:latest"


def parse_port(text: str) -> tuple[str, int, int]:
    """`[ip:]host:container[/tcp]` (already validated by the model) → (ip, host port, container port)."""
    text = text.strip().removesuffix("/tcp")
    parts = text.rsplit(":", 2)
    if len(parts) == 2:
        return "", int(parts[0]), int(parts[1])
    return parts[0].strip("[]"), int(parts[1]), int(parts[2])


def port_key(ip: str, host: int | str, container: int | str) -> str:
    # Docker binds every address when HostIp is empty; say so instead of printing ":5432:5432"
    shown = ip or "0.0.0.0"
    shown = f"[{shown}]" if ":" in shown else shown
    return f"{shown}:{host}:{container}"


def server_command(command: list[str]) -> list[str]:
    """The container's command: the server binary, then the play's extra arguments.

    The official image's entrypoint (and tests/docker/entrypoint.sh) accept both `postgres -c ...` and
    a bare `-c ...`; erpprov always writes the explicit form, so what reads back is always the same.
    """
    if command and command[0] == "postgres":
        return list(command)
    return ["postgres", *command]


def healthcheck_spec(check: Healthcheck) -> dict[str, Any]:
    """The engine's shape: test as an exec list, durations in nanoseconds."""
    if isinstance(check.test, str):
        test = ["CMD-SHELL", check.test]
    elif check.test and check.test[0] in ("CMD", "CMD-SHELL", "NONE"):
        test = list(check.test)
    else:
        test = ["CMD", *check.test]
    if test[0] == "NONE":  # checks disabled: the engine keeps no timings, so neither do we
        return {"test": ["NONE"], "interval": 0, "timeout": 0, "retries": 0, "start_period": 0}
    return {
        "test": test,
        "interval": int(check.interval * _NS),
        "timeout": int(check.timeout * _NS),
        "retries": check.retries,
        "start_period": int(check.start_period * _NS),
    }


def _without_image_defaults(values: Mapping[str, str], image_values: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in values.items() if image_values.get(k) != v}


def env_dict(entries: list[str] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for entry in entries or []:
        key, _, value = entry.partition("=")
        result[key] = value
    return result


def mount_key(kind: str, source: str, target: str) -> str:
    return f"{kind}:{source}:{target}"


def pgdata_of(spec: Container, image_env: Mapping[str, str]) -> str:
    """Where the server keeps its cluster: the play's PGDATA, else the image's (postgres:18 moved
    it), else the classic default."""
    return spec.env.get("PGDATA") or image_env.get("PGDATA") or DEFAULT_PGDATA


def desired_state(
    spec: Container,
    *,
    data_dir: str | None,
    image_env: Mapping[str, str],
    image_labels: Mapping[str, str],
) -> dict[str, Any]:
    """The canonical form of the spec: exactly what erpprov passes to the engine, in inspect's units."""
    pgdata = pgdata_of(spec, image_env)
    mounts = []
    if spec.volume:
        mounts.append(mount_key("volume", spec.volume, pgdata))
    elif data_dir:
        mounts.append(mount_key("bind", data_dir, pgdata))
    return {
        "image": normalize_image(spec.image),
        "env": _without_image_defaults(spec.env, image_env),
        "ports": sorted(port_key(*parse_port(p)) for p in spec.ports),
        "mounts": sorted(mounts),
        "command": server_command(spec.command),
        "healthcheck": healthcheck_spec(spec.healthcheck),
        "restart": spec.restart,
        "shm_size": parse_size(spec.shm_size) if spec.shm_size else DEFAULT_SHM_SIZE,
        "labels": _without_image_defaults(spec.labels, image_labels),
    }


def live_state(
    attrs: Mapping[str, Any], *, image_env: Mapping[str, str], image_labels: Mapping[str, str]
) -> dict[str, Any]:
    """The same canonical form read from `docker inspect` of a container (its attrs)."""
    config = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    ports = []
    for container_port, bindings in (host.get("PortBindings") or {}).items():
        number, _, _proto = container_port.partition("/")
        for binding in bindings or []:
            ports.append(port_key(binding.get("HostIp", ""), binding.get("HostPort", ""), number))
    mounts = []
    for mount in attrs.get("Mounts") or []:
        if mount.get("Type") == "bind":
            mounts.append(mount_key("bind", mount["Source"], mount["Destination"]))
        elif mount.get("Type") == "volume" and not _ANONYMOUS_VOLUME.match(mount.get("Name", "")):
            # anonymous volumes come from an image's VOLUME line, not from the spec
            mounts.append(mount_key("volume", mount["Name"], mount["Destination"]))
    check = config.get("Healthcheck") or {}
    labels = {k: v for k, v in (config.get("Labels") or {}).items() if not k.startswith(LABEL_PREFIX)}
    restart = (host.get("RestartPolicy") or {}).get("Name") or "no"
    return {
        "image": normalize_image(config.get("Image", "")),
        "env": _without_image_defaults(env_dict(config.get("Env")), image_env),
        "ports": sorted(ports),
        "mounts": sorted(mounts),
        "command": list(config.get("Cmd") or []),
        "healthcheck": {
            "test": list(check.get("Test") or []),
            "interval": int(check.get("Interval") or 0),
            "timeout": int(check.get("Timeout") or 0),
            "retries": int(check.get("Retries") or 0),
            "start_period": int(check.get("StartPeriod") or 0),
        },
        "restart": restart,
        "shm_size": int(host.get("ShmSize") or 0),
        "labels": _without_image_defaults(labels, image_labels),
    }


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: SENSITIVE if is_secret_name(k) else v for k, v in env.items()}


def spec_hash(desired: Mapping[str, Any]) -> str:
    """sha256 of the canonical spec with secret values left out (a label is readable by anyone
    with access to the engine; a password change is still seen, through the env comparison)."""
    shown = dict(desired, env=redact_env(desired["env"]))
    blob = json.dumps(shown, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def display(attribute: str, value: Any) -> Any:
    """A canonical value as people read it in a plan (durations in seconds, sizes with units)."""
    if attribute == "env":
        return redact_env(value)
    if attribute == "shm_size":
        return format_size(value)
    if attribute == "healthcheck":
        shown = dict(value)
        for key in ("interval", "timeout", "start_period"):
            shown[key] = f"{shown[key] / _NS:g}s"
        return shown
    return value


def display_state(state: Mapping[str, Any]) -> dict[str, Any]:
    return {attribute: display(attribute, state[attribute]) for attribute in ATTRIBUTES}


def _dict_changes(before: Mapping[str, str], after: Mapping[str, str], secret: bool) -> tuple[dict, dict]:
    """Only the keys that differ; an added key is None before, a removed one None after."""
    old: dict[str, str | None] = {}
    new: dict[str, str | None] = {}
    for key in sorted(set(before) | set(after)):
        if before.get(key) == after.get(key):
            continue
        hidden = secret and is_secret_name(key)
        if key in before:
            old[key] = SENSITIVE if hidden else before[key]
        else:
            old[key] = None
        if key in after:
            new[key] = (SENSITIVE_CHANGED if key in before else SENSITIVE) if hidden else after[key]
        else:
            new[key] = None
    return old, new


def compare(live: Mapping[str, Any], desired: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(before, after) holding only the attributes that differ, ready for a plan (secrets redacted)."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for attribute in ATTRIBUTES:
        old, new = live[attribute], desired[attribute]
        if old == new:
            continue
        if attribute in ("env", "labels"):
            before[attribute], after[attribute] = _dict_changes(old, new, secret=attribute == "env")
        else:
            before[attribute], after[attribute] = display(attribute, old), display(attribute, new)
    return before, after


def major_from_tag(image: str) -> str | None:
    """`postgres:16`, `postgres:16.2-alpine`, `x/postgres:15` → the major; None when the tag says nothing."""
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    match = re.match(r"^(\d+)(?:\.\d+)*(?:[-_].*)?$", last.split(":", 1)[1])
    if not match:
        return None
    major = int(match.group(1))
    return str(major) if 9 < major < 100 else None


def major_from_version_output(text: str) -> str | None:
    """`postgres (PostgreSQL) 15.18 (Debian ...)` → `15`; 9.6 → `9.6` (PG_VERSION's own spelling)."""
    match = re.search(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    major = int(match.group(1))
    return f"{major}.{match.group(2)}" if major < 10 and match.group(2) else str(major)
