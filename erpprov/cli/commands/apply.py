"""`apply`: make the live state match the files, or a saved plan."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from erpprov.cli.options import (
    DEFAULT_PLAYBOOK,
    handles_errors,
    host_error,
    interrupted,
    load,
    project_options,
    stopped,
    stopped_by_signal,
    stops_on_signal,
)
from erpprov.cli.output import EVENT_COLOURS, colour, confirm_hazards
from erpprov.core.display import shown
from erpprov.errors import ErpprovError


@click.command()
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@click.option("--allow-destructive", is_flag=True, help="Allow every hazard (drops, rewrites, revokes...).")
@click.option("--allow-hazard", "allow_hazard", multiple=True, metavar="NAME",
              help="Allow one kind of hazard, e.g. deletes_data; repeatable.")
@click.option("--lock-wait", default=30.0, show_default=True, help="Seconds to wait for another apply to finish.")
@click.option("--forks", default=5, show_default=True, help="Hosts reconciled in parallel.")
@click.option("--no-color", is_flag=True, help="Never colour the output (NO_COLOR is honoured too).")
@handles_errors
def apply(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None, verbose: bool,
          allow_destructive: bool, allow_hazard: tuple[str, ...], lock_wait: float, forks: int,
          no_color: bool) -> None:
    """Make the live state match the files (PLAYBOOK, or a plan saved with `plan -o`)."""
    import time

    from erpprov.apply.host import ApplyOptions, ApplyReport, apply_target
    from erpprov.core.actions import Hazard
    from erpprov.core.target import Target
    from erpprov.fanout import Printer, for_each_target
    from erpprov.plan import planfile

    try:
        allowed = frozenset(Hazard) if allow_destructive else frozenset(Hazard(h) for h in allow_hazard)
    except ValueError as exc:
        raise ErpprovError(str(exc), hint="hazards: " + ", ".join(h.value for h in Hazard)) from None
    saved: dict[str, Any] | None = None
    path = playbook or DEFAULT_PLAYBOOK
    if path.suffix == ".json":
        saved = planfile.read(path)
        path, inventory, limit = Path(saved["playbook"]), Path(saved["inventory"]), saved.get("limit")
    project = load(path, inventory, extra_vars, limit)
    if saved is not None:
        planfile.check_inputs(saved, project)
    coloured = colour(no_color)
    say = Printer(click.echo)
    started = time.monotonic()
    confirm = confirm_hazards(say) if sys.stdin.isatty() else None

    def work(target: Target) -> ApplyReport:
        host = target.host

        def event(kind: str, address: str) -> None:
            line = f"{kind}: [{shown(host)}] {shown(address.replace('.', ' ', 1))}"
            say(click.style(line, fg=EVENT_COLOURS[kind]) if coloured else line)

        host_saved = planfile.host_entry(saved, host) if saved is not None else None
        options = ApplyOptions(allow_hazards=allowed, lock_wait=lock_wait, saved=host_saved, confirm=confirm)
        return apply_target(target, options, event, lambda text: say(f"  [{shown(host)}] {shown(text)}"))

    with stops_on_signal():
        outcomes = for_each_target(project, work, forks)
    say("")
    say(f"RECAP ({time.monotonic() - started:.1f}s)")
    failed = False
    for host in project.hosts:
        mine = [o for o in outcomes if o.target.host == host]
        reports = [o.value if o.value else getattr(o.error, "report", None) for o in mine]
        changed = sum(len(r.changed) for r in reports if r)
        errors = [o.error for o in mine if o.error]
        skipped = len([t for t in project.targets if t.host == host]) - len(mine)
        ok = sum(len(r.ok) for r in reports if r)
        line = f"{shown(host):<24} ok={ok:<4} changed={changed:<4} failed={len(errors):<3} skipped={skipped}"
        say(click.style(line, fg="red" if errors else ("yellow" if changed else "green")) if coloured else line)
        for report in reports:
            for warning in (report.warnings if report else []):
                say(f"  ! {shown(warning)}")
        for error in errors:
            failed = True
            if not stopped_by_signal(error):
                host_error(host, _worded(error))
    if interrupted():
        stopped(": the changes in progress were rolled back; the recap's changed ones were committed before")
    if failed:
        sys.exit(1)


def _worded(error: ErpprovError) -> ErpprovError:
    """A refusal of hazards, with how to allow them given in this command's flags."""
    from erpprov.apply.hazards import HazardsRefused
    from erpprov.apply.host import HostFailed

    cause = error.cause if isinstance(error, HostFailed) else error
    if not isinstance(cause, HazardsRefused):
        return error
    kinds = " ".join(f"--allow-hazard {h.value}" for h in cause.hazards)
    return ErpprovError(cause.message,
                        hint=f"review them with `erpprov plan`, then pass {kinds} (or --allow-destructive)")
