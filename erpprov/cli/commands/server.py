"""`status`, `logs`, `psql`, `destroy`: the server itself."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from erpprov.cli.options import (
    DEFAULT_PLAYBOOK,
    handles_errors,
    load,
    project_options,
    single_target,
)
from erpprov.core.display import shown
from erpprov.errors import ErpprovError


@click.command()
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@handles_errors
def status(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None,
           verbose: bool) -> None:
    """Health of each host: container or cluster, server, and whether each login role can connect."""
    from erpprov.ops.health import check_target

    project = load(playbook or DEFAULT_PLAYBOOK, inventory, extra_vars, limit)
    healthy = True
    for target in project.targets:
        report = check_target(target)
        healthy &= report.healthy
        click.echo(f"{shown(target.host)} ({report.driver}): {'healthy' if report.healthy else 'UNHEALTHY'}")
        for name, ok, detail in report.checks:
            click.echo(f"  {'ok  ' if ok else 'FAIL'} {shown(name)}: {shown(str(detail))}")
        for name, value in report.facts.items():
            click.echo(f"       {shown(name)}: {shown(str(value))}")
    if not healthy:
        sys.exit(1)


@click.command()
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@click.option("--tail", "-n", default=100, show_default=True, help="Lines from the end of the log.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines (Ctrl-C to stop).")
@click.option("--host", help="Host to read (default: the only one).")
@handles_errors
def logs(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None, verbose: bool,
         tail: int, follow: bool, host: str | None) -> None:
    """Print the server's log (container or embedded cluster)."""
    from erpprov.drivers import make_driver

    target = single_target(playbook, inventory, extra_vars, limit, host)
    for line in make_driver(target).logs(tail, follow):
        click.echo(shown(line))  # the server logs names as they were sent


@click.command()
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@click.option("--db", "database", help="Database (default: the play's first database).")
@click.option("--user", help="Role to connect as (default: the host's pg_user).")
@click.option("--host", help="Host to connect to (default: the only one).")
@handles_errors
def psql(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None, verbose: bool,
         database: str | None, user: str | None, host: str | None) -> None:
    """An interactive psql on the host's server."""
    from erpprov.drivers import make_driver

    target = single_target(playbook, inventory, extra_vars, limit, host)
    database = database or target.main_database or target.connection.pg_database
    if user and user != target.connection.pg_user:
        # The admin's password is not this role's: sending it would only fail authentication.
        # Without it psql finds the role's own (PGPASSWORD, ~/.pgpass) or asks for it.
        import dataclasses

        target = dataclasses.replace(target, connection=target.connection.model_copy(
            update={"pg_user": user, "pg_password": None}))
    argv = ["psql", "-d", database, "-U", user or target.connection.pg_user]
    sys.exit(make_driver(target).exec(argv, interactive=True))


@click.command()
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@click.option("--volumes", is_flag=True, help="Also delete the data directory or volume: all data is lost.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handles_errors
def destroy(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None, verbose: bool,
            volumes: bool, yes: bool) -> None:
    """Stop and remove the container or embedded cluster (--volumes deletes the data too)."""
    from erpprov.drivers import make_driver

    project = load(playbook or DEFAULT_PLAYBOOK, inventory, extra_vars, limit)
    for target in project.targets:
        driver = make_driver(target)
        name = target.play.container.name if target.play.container else target.host
        if volumes and not yes:
            if not sys.stdin.isatty():
                raise ErpprovError("destroy --volumes deletes all data; refusing without --yes in a "
                                   "non-interactive run")
            typed = click.prompt(f"This deletes all data of {name} on {target.host}. Type {name!r} to confirm",
                                 default="", show_default=False)
            if typed != name:
                raise ErpprovError("confirmation did not match; nothing was deleted")
        driver.destroy(volumes, functools.partial(_progress, target.host))
        click.echo(f"destroyed: [{shown(target.host)}] {shown(name)}{' and its data' if volumes else ''}")


def _progress(host: str, text: str) -> None:
    click.echo(f"  [{shown(host)}] {shown(text)}")
