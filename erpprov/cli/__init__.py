"""The `erpprov` command: a thin layer over the library. Each command lives in `commands/` and
imports its heavy modules inside its body, so that `erpprov --help` starts fast; this module only
builds the group (nothing imports it but `python -m erpprov` and the entry point)."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from typing import Any

import click

from erpprov import __version__
from erpprov.cli.commands import (
    apply,
    backup,
    check,
    compose,
    diagram,
    drift,
    export,
    init,
    plan,
    resident,
    server,
    shell,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="erpprov")
def main() -> None:
    """Declarative provisioning for a team's PostgreSQL.

    Describe the container, roles, databases, grants and tables in playbooks/*.yaml; `plan` shows
    what differs from the live server and `apply` changes only that.
    """
    # A run is short and builds large acyclic structures (a playbook's values, catalog rows); the
    # default threshold of 700 allocations made the collector rescan them over and over, a third
    # of a no-op plan's time at a thousand tables. Cycles are still collected, just less often.
    gc.set_threshold(200_000, 30, 30)
    # psycopg logs a warning when ending a pipeline that an error already aborted; erpprov reports
    # that error itself, in its own words, so the warning would only be noise before it.
    logging.getLogger("psycopg").setLevel(logging.ERROR)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM (a cancelled CI job, `docker stop`, systemd) ends the run like an error does: every
    cleanup runs (throwaway servers stopped, transactions rolled back). While plan and apply work
    in threads, options.stops_on_signal takes it instead and stops that work first."""
    click.echo("terminated", err=True)
    raise SystemExit(128 + signum)


for command in (check.validate, check.schema, plan.plan, apply.apply, server.status, server.logs, server.psql,
                server.destroy, backup.backup_cmd, backup.restore_cmd, init.init_cmd, export.export_cmd,
                shell.completion, diagram.diagram_cmd, drift.diff_cmd, compose.compose_cmd, resident.resident):
    main.add_command(command)
