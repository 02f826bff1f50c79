"""`plan`: what apply would change, for people, machines and pull requests."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from erpprov.cli.options import (
    DEFAULT_PLAYBOOK,
    handles_errors,
    host_error,
    interrupted,
    load,
    project_options,
    stopped,
    stops_on_signal,
)
from erpprov.cli.output import colour

if TYPE_CHECKING:
    from erpprov.core.actions import HostPlan
    from erpprov.core.model import Play

FORMATS = click.Choice(["text", "json", "markdown"])


@click.command()
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@click.option("--format", "fmt", type=FORMATS, default="text",
              show_default=True, help="Output for people, machines or pull-request comments.")
@click.option("--sql", "show_sql", is_flag=True, help="Show the SQL of each action.")
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Save the plan as JSON for `erpprov apply FILE`.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when changes are pending, 0 when none, 1 on error.")
@click.option("--offline", is_flag=True, help="No server: show what the files create on an empty instance.")
@click.option("--forks", default=5, show_default=True, help="Hosts planned in parallel.")
@click.option("--no-color", is_flag=True, help="Never colour the output (NO_COLOR is honoured too).")
@handles_errors
def plan(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None, verbose: bool,
         fmt: str, show_sql: bool, out: Path | None, detailed_exitcode: bool, offline: bool, forks: int,
         no_color: bool) -> None:
    """Show what `apply` would change, without changing anything (a dry run for code review)."""
    from erpprov.fanout import for_each_target
    from erpprov.plan import planfile
    from erpprov.plan.build import plan_offline, plan_target

    project = load(playbook or DEFAULT_PLAYBOOK, inventory, extra_vars, limit)
    fingerprinted = fmt == "json" or out is not None
    work = plan_offline if offline else functools.partial(plan_target, fingerprinted=fingerprinted)
    with stops_on_signal():
        outcomes = for_each_target(project, work, forks)
    if interrupted():
        stopped()  # nothing to show
    failed = [o for o in outcomes if o.error]
    plans: list[HostPlan] = [o.value for o in outcomes if o.value is not None]
    inputs = planfile.inputs_fingerprint(project) if fingerprinted else ""
    echo_plans([(o.value, o.target.play) for o in outcomes if o.value is not None], fmt, inputs=inputs,
               show_sql=show_sql or verbose, no_color=no_color, names=verbose)
    if out:
        planfile.write(out, plans, inputs=inputs, playbook=playbook or DEFAULT_PLAYBOOK, inventory=inventory,
                       limit=limit)
        click.echo(f"Saved the plan to {out}; apply exactly it with `erpprov apply {out}`.", err=True)
    for outcome in failed:
        host_error(outcome.target.host, outcome.error)
    if failed:
        sys.exit(1)
    if detailed_exitcode and any(not p.empty for p in plans):
        sys.exit(2)


def echo_plans(plans: list[tuple[HostPlan, Play]], fmt: str, *, inputs: str, show_sql: bool, no_color: bool,
               names: bool = False) -> None:
    """The plans (each with the play it was made for) as `plan --format` prints them; ``names``
    (-v) lists each unmanaged object, not only a count per kind."""
    from erpprov.plan import planfile, render
    from erpprov.plan.diagram import touched

    if fmt == "json":
        click.echo(planfile.dump(planfile.document([p for p, _ in plans], inputs=inputs)), nl=False)
    elif fmt == "markdown":
        click.echo(render.markdown([p for p, _ in plans], [touched(p, play) for p, play in plans]))
    else:
        click.echo(render.text([p for p, _ in plans], show_sql=show_sql, colour=colour(no_color), names=names),
                   nl=False)
