"""Stage 5, apply, for one target: start the server if needed, take the lock, plan again inside
it, refuse hazards not allowed, execute, and plan once more: that plan must be empty.

    plan (inside the lock) ─► hazards gate ─► execute ─► re-plan: must be empty
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from erpprov.apply.executor import application_name, apply_lock, execute
from erpprov.apply.explain import explain_failure
from erpprov.apply.hazards import Confirm, check_hazards
from erpprov.core.actions import Action, Hazard
from erpprov.core.address import Address
from erpprov.core.display import shown
from erpprov.core.seed import RowDigests
from erpprov.core.target import Target
from erpprov.drivers import make_driver
from erpprov.drivers.base import Driver, Progress
from erpprov.errors import ErpprovError
from erpprov.files.templates import plan_templates, write_templates
from erpprov.load.taint import known_secrets, redact_actions
from erpprov.plan import planfile
from erpprov.plan.build import plan_sql
from erpprov.postgres.connect import connect, connection_kept

Event = Callable[[str, str], None]  # ("ok" | "changed" | "failed" | "undone", address)


@dataclass
class ApplyOptions:
    allow_hazards: frozenset[Hazard] = frozenset()
    lock_wait: float = 30.0
    connect_wait: float = 10.0  # how long a server may refuse connections (longer right after a start)
    saved: dict[str, Any] | None = None  # this host's entry of a `plan -o` file
    confirm: Confirm | None = None  # asked whether hazards not allowed may go ahead


@dataclass
class ApplyReport:
    host: str
    driver: str
    changed: list[Action] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)  # declared objects that were already right
    warnings: list[str] = field(default_factory=list)


def apply_target(target: Target, options: ApplyOptions, event: Event, progress: Progress,
                 driver: Driver | None = None) -> ApplyReport:
    driver = driver or make_driver(target)
    report = ApplyReport(host=target.host, driver=driver.name)
    # Planned first: a file that cannot be rendered or written stops apply before any change.
    # Templates render from the variables alone, so this plan still holds once the SQL has run.
    files, file_warnings = plan_templates(target)
    container_actions = driver.plan()
    check_hazards(container_actions, options.allow_hazards, options.confirm)
    if container_actions:
        driver.ensure(progress)
        for action in container_actions:
            event("changed", action.address)
        report.changed.extend(container_actions)
    wait = options.connect_wait
    if container_actions and target.play.container:
        wait = max(wait, target.play.container.wait_timeout)
    try:
        _apply_sql(target, options, event, report, wait)
        report.warnings += file_warnings
        write_templates(target, files)
        for action in files:
            event("changed", action.address)
        report.changed.extend(files)
        changed = {a.address for a in report.changed}
        report.ok = [address for address in declared_addresses(target, driver) if address not in changed]
        for address in report.ok:
            event("ok", address)
    except ErpprovError as exc:
        raise HostFailed(exc, report) from None
    return report


def declared_addresses(target: Target, driver: Driver) -> list[Address]:
    """The objects a play declares, by address, for Ansible-style "ok" lines."""
    play = target.play
    addresses = [driver.address] if driver.address else []
    addresses += [Address("role", r.name) for r in play.roles if r.state == "present"]
    for db in play.databases:
        addresses.append(Address("database", db.name))
        addresses += [Address("schema", db.name, s.name) for s in db.schemas]
        addresses += [Address("extension", db.name, e.name) for e in db.extensions]
        addresses += [Address("table", db.name, t.schema_, t.name) for t in db.tables]
        addresses += [Address("data", db.name, t.schema_, t.name) for t in db.tables if t.data is not None]
    addresses += [Address("file", f.dest) for f in play.templates]
    return addresses


class HostFailed(ErpprovError):
    """An apply that failed part-way: the error, plus what had been changed before it."""

    def __init__(self, cause: ErpprovError, report: ApplyReport):
        super().__init__(cause.message, location=cause.location, hint=cause.hint)
        self.cause = cause  # its type, for callers that word some errors their own way
        self.report = report


def _apply_sql(target: Target, options: ApplyOptions, event: Event, report: ApplyReport, wait: float) -> None:
    def record(kind: str, action: Action) -> None:
        if kind == "changed":
            report.changed.append(action)
        elif kind == "undone":  # what the failed apply created, dropped again (executor._undo)
            report.changed.remove(action)
        event(kind, action.address)

    with connection_kept(target.connection), \
            connect(target.connection, wait=wait, application_name=application_name()) as admin:
        lock_warnings: list[str] = []
        with apply_lock(target.connection, admin, options.lock_wait, lock_warnings.append):
            digests = RowDigests()
            result, snapshot = plan_sql(target, admin, digests, applying=True)
            report.warnings = lock_warnings + result.warnings
            if options.saved is not None:
                planfile.check_host(options.saved, redact_actions(result.actions, known_secrets(target)), snapshot)
            check_hazards(result.actions, options.allow_hazards, options.confirm)
            if not result.actions:
                return  # nothing ran, so nothing can have failed to converge
            execute(result.actions, target.connection, admin, record, explain=explain_failure,
                    warn=report.warnings.append)
            # The seeded rows: compared in full only where a table no longer matches their digest.
            again, _ = plan_sql(target, admin, replace(digests, reuse=True))
    leftover = [a for a in again.actions if not a.repeats]
    if leftover:
        raise ErpprovError(
            "apply did not converge: a fresh plan still shows " + ", ".join(shown(a.address) for a in leftover),
            hint="this is a bug in erpprov; please report it with the output of `erpprov plan --sql`")
