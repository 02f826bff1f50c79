"""From files to validated desired state: inventory + playbook + variables → one Play per host.

Every failure becomes an ErpprovError carrying the file:line:column of the offending value.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from erpprov.core.model import Connection, DuplicateName, Play, Refused
from erpprov.core.target import Target
from erpprov.errors import ErpprovError, Location
from erpprov.load import taint
from erpprov.load.envfile import load_env_file
from erpprov.load.inventory import Group, Inventory, load_inventory
from erpprov.load.scriptfiles import attach_scripts
from erpprov.load.seedfiles import attach_rows
from erpprov.load.template_errors import TemplateError
from erpprov.load.templating import LazyVars, render_string, walk_strings
from erpprov.load.yamlsrc import Source, load_yaml, parse_yaml

# Keys of a play that are not rendered as part of the desired state.
_PLAY_META = ("vars", "vars_files")

# The documented defaults of the connection variables (pg_user: postgres, ...), visible to templates
# as the lowest-precedence variables, as the values erpprov itself connects with.
_CONNECTION_DEFAULTS = {name: field.default for name, field in Connection.model_fields.items()
                        if field.default is not None}


class DeferredSecret(SecretStr):
    """A role's password, rendered when a plan first needs it: an exported playbook names password
    variables nobody has to set while the roles exist and keep their passwords (on_create)."""

    def __init__(self, render: Callable[[], str]):
        super().__init__("")
        self._render: Callable[[], str] | None = render

    def get_secret_value(self) -> str:
        if self._render is not None:
            self._secret_value = self._render()  # an ErpprovError here points at the password's line
            self._render = None
        return self._secret_value

    def _display(self) -> str:
        return "**********"  # without rendering: a password shown masked is never needed


class _LocatedWhenRead(ErpprovError):
    """A template error whose file:line is looked up when it is read. Finding a position composes
    the whole document's node graph (at 10,000 tables, seconds and 400 MB), and the deferred
    passwords of an exported playbook all fail to render while their variables are unset: every
    plan asks them (for what to hide) and drops the error."""

    def __init__(self, message: str, where: Callable[[], Location], hint: str | None):
        self._where: Callable[[], Location] | None = None
        self._location: Location | None = None
        super().__init__(message, hint=hint)
        self._where = where

    @property
    def location(self) -> Location | None:
        if self._where is not None:
            self._location, self._where = self._where(), None
        return self._location

    @location.setter
    def location(self, value: Location | None) -> None:
        self._location, self._where = value, None


@dataclass(frozen=True)
class Project:
    inventory: Inventory
    playbook: Path
    targets: list[Target]

    @property
    def hosts(self) -> list[str]:
        return list(dict.fromkeys(t.host for t in self.targets))


def parse_extra_vars(items: list[str], base: Path) -> dict[str, Any]:
    """`-e key=value` (repeatable; several pairs per item) and `-e @file.yaml`."""
    result: dict[str, Any] = {}
    for item in items:
        if item.startswith("@"):
            path = (base / item[1:]).resolve() if not os.path.isabs(item[1:]) else Path(item[1:])
            data = load_yaml(path, what="extra vars file", missing_hint="check the path after -e @").data
            if not isinstance(data, dict):
                raise ErpprovError(f"{path}: extra vars file must hold a mapping of names to values")
            result.update(data)
            continue
        for pair in item.split():
            key, sep, value = pair.partition("=")
            if not sep or not key.isidentifier():
                raise ErpprovError(
                    f"extra var {pair!r} is not name=value", hint="write -e name=value or -e @vars.yaml"
                )
            result[key] = value
    return result


def build_validators() -> None:
    """Build the validators of the models a load uses now: pydantic defers each to its first use,
    ~0.07 s for Play. The CLI calls this while a large playbook is parsed on another core
    (yamlsrc.prefetch), so the two overlap."""
    Play.model_rebuild()
    Connection.model_rebuild()


def load_project(
    playbook: Path,
    inventory_path: Path,
    *,
    extra_vars: dict[str, Any] | None = None,
    limit: str | None = None,
    environ: dict[str, str] | None = None,
) -> Project:
    inventory = load_inventory(inventory_path)
    env = _environment(inventory_path, environ)
    source = load_yaml(playbook, what="playbook", missing_hint="check the path, or name another playbook")
    limited = set(inventory.match(limit)) if limit else None

    def hosts_of(pattern: str) -> list[str]:
        hosts = inventory.match(pattern)
        return hosts if limited is None else [h for h in hosts if h in limited]

    playbook_dir = playbook.resolve().parent
    targets = _targets(source, inventory, hosts_of, extra_vars, env, playbook_dir, _project_dir(playbook_dir),
                       playbook.parent)
    return Project(inventory=inventory, playbook=playbook, targets=targets)


def load_for_host(
    plays: Path | list[Any],
    connection: dict[str, Any],
    *,
    host: str = "localhost",
    extra_vars: dict[str, Any] | None = None,
    project_dir: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Project:
    """Plays for one host reached with ``connection`` (the pg_* and driver variables), without an
    inventory: for callers that chose the host themselves (the Ansible module). Every play applies
    to it, whatever its ``hosts:`` says. ``plays`` is a playbook file or the plays themselves;
    ``project_dir`` (default: the playbook's project, else the working directory) is where
    ``templates:`` sources are found."""
    if isinstance(plays, Path):
        source = load_yaml(plays, what="playbook", missing_hint="check the path given as playbook")
        vars_dir, playbook_dir = plays.parent, plays.resolve().parent
        default_dir = _project_dir(playbook_dir)
    else:
        # Dumped and parsed back: errors then carry a line of the state as it was given.
        source = parse_yaml(yaml.safe_dump(plays, sort_keys=False), "<state>")
        vars_dir = playbook_dir = default_dir = Path.cwd()
    inventory = Inventory(path=Path("<connection>"), groups={"all": Group("all", hosts=[host])},
                          host_vars={host: dict(connection)})
    env = dict(os.environ if environ is None else environ)
    targets = _targets(source, inventory, lambda _pattern: [host], extra_vars, env, playbook_dir,
                       project_dir or default_dir, vars_dir)
    return Project(inventory=inventory, playbook=plays if isinstance(plays, Path) else Path("<state>"),
                   targets=targets)


def _project_dir(playbook_dir: Path) -> Path:
    """A project keeps its playbooks in playbooks/, beside templates/ and the inventory."""
    return playbook_dir.parent if playbook_dir.name == "playbooks" else playbook_dir


def _targets(source: Source, inventory: Inventory, hosts_of: Callable[[str], list[str]],
             extra_vars: dict[str, Any] | None, env: dict[str, str], playbook_dir: Path,
             project_dir: Path, vars_dir: Path) -> list[Target]:
    plays = source.data
    if plays is None:
        plays = []
    if not isinstance(plays, list):
        raise ErpprovError(
            "a playbook is a list of plays",
            location=source.locate(()),
            hint="start each play with '- name: ...'",
        )
    targets: list[Target] = []
    for index, raw in enumerate(plays):
        if not isinstance(raw, dict):
            raise ErpprovError("each play is a mapping with name, hosts, ...", location=source.locate((index,)))
        hosts_pattern = raw.get("hosts", "all")
        if not isinstance(hosts_pattern, str):
            raise ErpprovError("hosts must be a pattern string", location=source.locate((index, "hosts")))
        try:
            hosts = hosts_of(hosts_pattern)
        except ErpprovError as exc:
            raise ErpprovError(exc.message, location=source.locate((index, "hosts")), hint=exc.hint) from None
        play_vars = _play_vars(raw, index, source, vars_dir)
        for host in hosts:
            merged = {**_CONNECTION_DEFAULTS, **inventory.variables(host), **play_vars, **(extra_vars or {})}
            fixed = {
                "env": env,
                "playbook_dir": str(playbook_dir),
                "inventory_hostname": host,
                "project_dir": str(project_dir),
            }
            variables = LazyVars(merged, fixed)
            targets.append(_target(raw, index, host, variables, source, project_dir, inventory))
    return targets


def _environment(inventory_path: Path, environ: dict[str, str] | None) -> dict[str, str]:
    """`env` of the templates: the process environment over the .env beside the inventory."""
    env = dict(load_env_file(inventory_path.parent / ".env"))
    env.update(os.environ if environ is None else environ)
    return env


def load_connections(
    inventory_path: Path,
    *,
    extra_vars: dict[str, Any] | None = None,
    limit: str | None = None,
    environ: dict[str, str] | None = None,
) -> dict[str, Connection]:
    """How to reach each inventory host (matching ``limit``), for commands that read a server
    before any playbook describes it (`export`)."""
    inventory = load_inventory(inventory_path)
    env = _environment(inventory_path, environ)
    connections = {}
    for host in inventory.match(limit) if limit else inventory.hosts:
        fixed = {"env": env, "inventory_hostname": host, "project_dir": str(inventory_path.resolve().parent)}
        variables = LazyVars({**inventory.variables(host), **(extra_vars or {})}, fixed)
        connections[host] = _connection(host, variables, inventory)
    return connections


def _play_vars(raw: dict[str, Any], index: int, source: Source, base: Path) -> dict[str, Any]:
    play_vars = raw.get("vars") or {}
    if not isinstance(play_vars, dict):
        raise ErpprovError("vars must be a mapping of names to values", location=source.locate((index, "vars")))
    merged = dict(play_vars)
    files = raw.get("vars_files") or []
    if not isinstance(files, list):
        raise ErpprovError("vars_files must be a list of files", location=source.locate((index, "vars_files")))
    for position, name in enumerate(files):
        path = base / str(name)
        try:
            data = load_yaml(path, what="vars file", missing_hint="vars_files are relative to the playbook").data or {}
        except ErpprovError as exc:
            if exc.location is not None:  # inside the file: its own position says more
                raise
            # missing, unreadable, not a file: point at the entry that names it
            raise ErpprovError(exc.message, location=source.locate((index, "vars_files", position)),
                               hint=exc.hint) from None
        if not isinstance(data, dict):
            raise ErpprovError(f"{path} must hold a mapping of names to values",
                               location=source.locate((index, "vars_files", position)))
        merged.update(data)
    return merged


def _target(
    raw: dict[str, Any],
    index: int,
    host: str,
    variables: LazyVars,
    source: Source,
    project_dir: Path,
    inventory: Inventory,
) -> Target:
    def render(text: str, path: tuple[Any, ...]) -> Any:
        if len(path) == 3 and path[0] == "roles" and path[2] == "password":
            return DeferredSecret(lambda: render_now(text, path))
        return render_now(text, path)

    def render_now(text: str, path: tuple[Any, ...]) -> str:
        try:
            value = render_string(text, variables)
        except TemplateError as exc:
            raise _LocatedWhenRead(f"{exc.message} (host {host})", lambda: source.locate((index,) + path),
                                   exc.hint) from None
        if value and value not in secrets and _depends_on_a_secret(text, value, shadowed):
            secrets.add(value)
        return value

    secrets: set[str] = set()
    shadowed = taint.shadow(variables)

    body = {k: v for k, v in raw.items() if k not in _PLAY_META}
    rendered = walk_strings(body, render)
    rendered.update({k: raw[k] for k in _PLAY_META if k in raw})
    try:
        play = Play.model_validate(rendered)
    except ValidationError as exc:
        # the message quotes the offending value, which may have been rendered from a secret
        error = _validation_error(exc, source, (index,), Play)
        error.message = taint.redact(error.message, secrets)
        raise error from None
    attach_rows(play, lambda path: source.locate((index,) + path), Path(source.file), project_dir)
    attach_scripts(play, lambda path: source.locate((index,) + path), Path(source.file), project_dir)
    connection = _connection(host, variables, inventory)
    return Target(host=host, play=play, connection=connection, project_dir=project_dir, variables=variables,
                  secrets=frozenset(secrets))


def _connection(host: str, variables: LazyVars, inventory: Inventory) -> Connection:
    connection_vars = {}
    for key in Connection.model_fields:
        if key in variables:
            try:
                connection_vars[key] = variables[key]
            except TemplateError as exc:
                raise ErpprovError(
                    f"{exc.message} (host variable {key} of {host})",
                    location=Location(str(inventory.path)),
                    hint=exc.hint,
                ) from None
    try:
        return Connection.model_validate(connection_vars)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ErpprovError(
            f"host {host}: {'.'.join(map(str, first['loc']))}: {first['msg']}",
            location=Location(str(inventory.path)),
        ) from None


def _depends_on_a_secret(text: str, value: str, shadowed: LazyVars) -> bool:
    try:
        return render_string(text, shadowed) != value
    except TemplateError:  # it cannot even render without the secret (int() of a canary...)
        return True


def _validation_error(exc: ValidationError, source: Source, prefix: tuple[Any, ...],
                      model: type[BaseModel]) -> ErpprovError:
    # A misspelled key also makes a required one "missing": report the misspelling first; then a
    # value one of erpprov's checks refused (its words say why) before another branch of a union
    # it does not fit either (`ALL` or a list of signatures: "Input should be 'ALL'").
    errors = sorted(exc.errors(include_url=False),
                    key=lambda e: (e["type"] != "extra_forbidden", e["type"] != "value_error"))
    first = errors[0]
    loc = tuple(part for part in first["loc"] if not (isinstance(part, str) and _UNION_BRANCH.match(part)))
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, (DuplicateName, Refused)):
        loc += cause.path
    where = source.locate(prefix + loc, prefer_key=first["type"] == "extra_forbidden")
    field = ".".join(str(p) for p in loc) or "play"
    hint = None
    if first["type"] == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        message = f"unknown key {loc[-1]!r}"
        hint = f"did you mean {close[0]!r}?" if close else (f"allowed here: {', '.join(allowed)}" if allowed else None)
    elif isinstance(cause, DuplicateName):
        message = str(cause)
    elif first["type"] == "missing":
        message = f"missing required key {loc[-1]!r}"
    else:
        message = f"{field}: {_clean(first['msg'])}"
        hint = cause.hint if isinstance(cause, Refused) else None
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ErpprovError(message, location=where, hint=hint)


# How pydantic names the branch of a union in an error's location (`literal['ALL']`,
# `list[function-after[...]]`): not a key of the file.
_UNION_BRANCH = re.compile(r"^[a-z][a-z-]*\[.*\]$")


def _clean(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at ``loc`` inside ``model`` (for "did you mean")."""
    current: Any = model
    for part in loc:
        current = _field_type(current, part)
        if current is None:
            return []
    models = [m for m in _models_in(current)]
    return sorted({(f.alias or name) for m in models for name, f in m.model_fields.items()})


def _field_type(tp: Any, part: Any) -> Any:
    for candidate in _models_in(tp, keep_lists=True):
        if isinstance(part, int) and typing.get_origin(candidate) is list:
            return typing.get_args(candidate)[0]
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            for name, field in candidate.model_fields.items():
                if part in (name, field.alias):
                    return field.annotation
    return None


def _models_in(tp: Any, keep_lists: bool = False) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(tp)[0], keep_lists)
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(tp) for m in _models_in(arg, keep_lists)]
    if origin is list:
        return [tp] if keep_lists else _models_in(typing.get_args(tp)[0])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return []
