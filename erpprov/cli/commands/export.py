"""`export`: the live server as a playbook."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from erpprov.cli.options import (
    handles_errors,
    only_host,
    project_options,
    single_target,
)
from erpprov.errors import ErpprovError

if TYPE_CHECKING:
    from erpprov.core.model import Connection

# No date or time: exporting the same server twice gives the same bytes, so a nightly export
# can be checked with `git diff --exit-code`.
HEADER = """\
# Exported by erpprov from {host}.
# Passwords are NOT exported: each login role has a placeholder ({{{{ env.<ROLE>_PASSWORD }}}})
# with update_password: on_create; set those variables (or .env) before applying elsewhere.
"""


LEFT_OUT = """\
# NOT exported: erpprov cannot write these objects yet. Applying this file elsewhere does not
# create them; carry them over by hand (e.g. from pg_dump --schema-only):
"""


def render_playbook(playbook: list[dict[str, Any]], host: str, left_out: Sequence[str] = ()) -> str:
    """The file: its header, what it leaves out (one object a line, names escaped so none can end
    the comment), then the playbook."""
    from erpprov.core.display import shown
    from erpprov.files.yaml_dump import dump_plain

    body = dump_plain(playbook)
    header = HEADER.format(host=shown(host))
    if left_out:
        header += LEFT_OUT + "".join(f"#   {shown(item)}\n" for item in left_out)
    return header + body


def _inventory_host(inventory: Path, extra_vars: tuple[str, ...], limit: str | None,
                    host: str | None) -> tuple[str, Connection]:
    """The host to export when no playbook is named: adopting a database comes before writing one."""
    from erpprov.load.project import load_connections, parse_extra_vars

    connections = load_connections(inventory, extra_vars=parse_extra_vars(list(extra_vars), Path.cwd()),
                                   limit=limit)
    candidates = [h for h in connections if host is None or h == host]
    if not candidates:
        raise ErpprovError(f"no inventory host named {host!r}" if host else f"{inventory} names no host",
                           hint=f"hosts: {', '.join(connections)}" if connections else None)
    chosen = only_host(candidates)
    return chosen, connections[chosen]


@click.command("export")
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@click.option("--db", "databases", multiple=True, metavar="NAME",
              help="Database to export; repeatable (default: all but postgres and the templates).")
@click.option("--host", help="Host to export (default: the only one).")
@click.option("--prune", is_flag=True,
              help="Mark each database `prune: true`: applied elsewhere, it drops what this server lacks (hazards).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the playbook to this file (readable only by you) instead of stdout.")
@click.option("--data", "data", multiple=True, metavar="TABLE[,TABLE...]",
              help="Also export these tables' rows: a CSV file each beside the playbook (-o's directory, "
                   "else the current one) and a data: entry loading it. TABLE or SCHEMA.TABLE.")
@handles_errors
def export_cmd(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None,
               verbose: bool, databases: tuple[str, ...], host: str | None, prune: bool, output: Path | None,
               data: tuple[str, ...]) -> None:
    """Write the roles, databases, schemas, tables and grants of a live server as a playbook.

    The connection is the inventory's for the host (-l/--limit or --host picks one of several);
    with PLAYBOOK, as that playbook's plays render it. Applied to the same server, the exported
    playbook plans no change.
    """
    from erpprov.core.display import shown
    from erpprov.files.atomic import write_private
    from erpprov.ops.export import export_playbook
    from erpprov.postgres.connect import connect, connection_kept

    if playbook is None:
        name, connection = _inventory_host(inventory, extra_vars, limit, host)
    else:
        target = single_target(playbook, inventory, extra_vars, limit, host)
        name, connection = target.host, target.connection
    files: dict[str, bytes] = {}
    with connection_kept(connection), connect(connection) as admin:
        left_out: list[str] = []
        exported = export_playbook(admin, connection, databases=list(databases) or None, hosts=name, data=data,
                                   data_files=files, prune=prune, left_out=left_out)
    text = render_playbook(exported, name, left_out)
    if left_out:
        click.echo(f"erpprov cannot export {len(left_out)} object(s) yet; they are NOT in the playbook "
                   "(listed at its top too):", err=True)
        for item in left_out:
            click.echo(f"  {shown(item)}", err=True)
    beside = output.parent if output is not None else Path.cwd()
    for file, rows in files.items():  # rows may hold anything: readable only by the owner, like the playbook
        write_private(beside / file, rows)
        click.echo(f"exported the rows of {file.removesuffix('.csv')} to {beside / file}", err=True)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_private(output, text)
        click.echo(f"exported {name} to {output}", err=True)

