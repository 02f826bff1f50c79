"""`diff`: the plan that would make one server look like another."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from erpprov.cli.commands.plan import FORMATS, echo_plans
from erpprov.cli.options import handles_errors
from erpprov.errors import ErpprovError

if TYPE_CHECKING:
    from erpprov.ops.drift import Server


def _server(name: str, inventory: Path, extra_vars: tuple[str, ...]) -> Server:
    from erpprov.load.project import load_connections, parse_extra_vars
    from erpprov.ops.drift import Server, server_from_url

    if "://" in name or "=" in name:
        return server_from_url(name)
    connections = load_connections(inventory, extra_vars=parse_extra_vars(list(extra_vars), Path.cwd()))
    if name not in connections:
        raise ErpprovError(f"{name!r} is neither an inventory host nor a connection URL",
                           hint=f"hosts of {inventory}: {', '.join(connections) or 'none'}; or "
                                "postgresql://USER@HOST:PORT/DB")
    return Server(name, connections[name])


@click.command("diff")
@click.argument("host_a")
@click.argument("host_b")
@click.option("-i", "--inventory", type=click.Path(path_type=Path), default=Path("inventory.yaml"),
              show_default=True, help="Inventory naming the hosts (not needed for two URLs).")
@click.option("-e", "--extra-vars", multiple=True, metavar="NAME=VALUE|@FILE",
              help="Variables that override the inventory's; repeatable.")
@click.option("--db", "databases", multiple=True, metavar="NAME",
              help="Database to compare; repeatable (default: all of A's but postgres).")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True,
              help="Output for people, machines or pull-request comments.")
@click.option("--sql", "show_sql", is_flag=True, help="Show the SQL that would make B like A.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when B differs from A, 0 when not, 1 on error.")
@click.option("--no-color", is_flag=True, help="Never colour the output (NO_COLOR is honoured too).")
@click.option("-v", "--verbose", is_flag=True, help="Show SQL and tracebacks.")
@handles_errors
def diff_cmd(host_a: str, host_b: str, inventory: Path, extra_vars: tuple[str, ...], databases: tuple[str, ...],
             fmt: str, show_sql: bool, detailed_exitcode: bool, no_color: bool, verbose: bool) -> None:
    """What would make HOST_B look like HOST_A (inventory hosts or connection URLs), as a plan.

    Is staging still like production? `erpprov diff production staging --detailed-exitcode`.
    Nothing is changed on either server; passwords are compared by their stored verifiers when
    both servers allow reading them, and never shown.
    """
    from erpprov.ops.drift import drift

    source, subject = _server(host_a, inventory, extra_vars), _server(host_b, inventory, extra_vars)
    plan, play = drift(source, subject, list(databases) or None, Path.cwd())
    # a comparison is for reading what differs: each object B holds beyond A is named
    echo_plans([(plan, play)], fmt, inputs="", show_sql=show_sql or verbose, no_color=no_color, names=True)
    if detailed_exitcode and not plan.empty:
        sys.exit(2)
