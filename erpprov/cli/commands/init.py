"""`init`: a new project from the shipped example."""

from __future__ import annotations

from pathlib import Path

import click

from erpprov.cli.options import handles_errors


@click.command("init")
@click.argument("directory", required=False, default=Path("."), type=click.Path(path_type=Path, file_okay=False))
@handles_errors
def init_cmd(directory: Path) -> None:
    """Start a new project in DIRECTORY (default: here) from the shipped example.

    Writes inventory.yaml, playbooks/dev.yaml, templates/app.env.j2, schema/playbook.schema.json,
    .env.example and .gitignore; never overwrites an existing file.
    """
    from erpprov.ops.scaffold import init_project

    for path in init_project(directory):
        click.echo(f"created {path}")
    click.echo("")
    click.echo("Next: copy .env.example to .env and set the passwords, then run `erpprov plan` "
               "and `erpprov apply`" + (f" in {directory}" if directory != Path(".") else "") + ".")
