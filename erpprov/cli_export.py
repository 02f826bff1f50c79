"""The `export` command: the live server as a playbook (issue #7).

Like `erpprov.cli_ops`, this module adds its command to `erpprov.cli.main` itself, at its end, so
importing it from the END of cli.py registers it whichever module is imported first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from erpprov.cli import (
    handles_errors,
    main,
    project_options,
    single_target,
)

HEADER = """\
# Exported by erpprov from {host} at {when}.
# Passwords are NOT exported: each login role has a placeholder ({{{{ env.<ROLE>_PASSWORD }}}})
# with update_password: on_create; set those variables (or .env) before applying elsewhere.
"""


def render_playbook(playbook: list[dict[str, Any]], host: str, when: datetime | None = None) -> str:
    import yaml

    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    body = yaml.safe_dump(playbook, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return HEADER.format(host=host, when=stamp) + body


@click.command("export")
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@click.option("--db", "databases", multiple=True, metavar="NAME",
              help="Database to export; repeatable (default: all but postgres and the templates).")
@click.option("--host", help="Host to export (default: the only one).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the playbook to this file (readable only by you) instead of stdout.")
@handles_errors
def export_cmd(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None,
               verbose: bool, databases: tuple[str, ...], host: str | None, output: Path | None) -> None:
    """Write the roles, databases, schemas, tables and grants of a live server as a playbook.

    The connection is the inventory's for the host (as in PLAYBOOK, default playbooks/dev.yaml).
    Applied to the same server, the exported playbook plans no change.
    """
    from erpprov.connect import connect, connection_kept
    from erpprov.export import export_playbook
    from erpprov.files import write_private

    target = single_target(playbook, inventory, extra_vars, limit, host)
    with connection_kept(target.connection), connect(target.connection) as admin:
        exported = export_playbook(admin, target.connection, databases=list(databases) or None,
                                   hosts=target.host)
    text = render_playbook(exported, target.host)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_private(output, text)
        click.echo(f"exported {target.host} to {output}", err=True)


main.add_command(export_cmd)
