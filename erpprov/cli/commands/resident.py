"""`resident start|stop|status`: a process that keeps erpprov's modules loaded, so that each command
starts in a few milliseconds instead of a third of a second (erpprov/launch.py, cli/resident.py)."""

from __future__ import annotations

import datetime as dt

import click

DEFAULT_IDLE_MINUTES = 30


@click.group("resident")
def resident() -> None:
    """A resident process that runs commands without the start-up cost.

    `erpprov plan`, `apply`, `validate`, `export`, `diff`, `diagram`, `status`, `schema` and `compose`
    are handed to it when it runs (the same output, exit status and files, in the same directory
    with the same environment). When none runs, such a command runs in its own process and starts
    one for the commands after it, which exits after 15 idle minutes. ERPPROV_RESIDENT=manual (the
    default when CI is set) uses only a resident started here; ERPPROV_RESIDENT=off never uses one.
    It serves only its own user and only the code it was started with: after an upgrade or an edit
    of erpprov, the next command starts a resident of the new code, which stops the old one.
    """


@resident.command("start")
@click.option("--idle", "idle_minutes", type=click.FloatRange(min=0.1, max=24 * 60), default=DEFAULT_IDLE_MINUTES,
              show_default=True, help="Exit after this many minutes without a command.")
def start_cmd(idle_minutes: float) -> None:
    """Start the resident process in the background (if it does not run already)."""
    from erpprov.cli.resident import ResidentError, start

    try:
        found = start(idle_minutes * 60)
    except (ResidentError, OSError) as exc:
        raise click.ClickException(f"the resident process did not start: {exc}") from None
    state = "already running" if found.get("already") else "started"
    click.echo(f"resident {state}: pid {found['pid']}, socket {found['socket']}")


@resident.command("stop")
def stop_cmd() -> None:
    """Stop the resident process of this erpprov."""
    from erpprov.cli.resident import stop

    click.echo("resident stopped" if stop() else "no resident process runs for this erpprov")


@resident.command("status")
def status_cmd() -> None:
    """Whether the resident process runs; exit status 3 when it does not."""
    from erpprov.cli.resident import status

    found = status()
    if found is None:
        click.echo("no resident process runs for this erpprov")
        raise SystemExit(3)
    since = dt.datetime.fromtimestamp(float(found["started"]), dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    click.echo(f"resident running: pid {found['pid']}, since {since}, {found['served']} commands served, "
               f"exits after {float(found['idle_seconds']) / 60:g} idle minutes; socket {found['socket']}")
