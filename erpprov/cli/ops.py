"""The `backup`, `restore` and `init` commands.

This module uses cli.py's helpers at import time (the option decorators), so it adds its commands to
`erpprov.cli.main` itself, at its end: importing it from the END of cli.py registers them whichever
of the two modules is imported first (a `from erpprov.cli.ops import backup_cmd` at the end of
cli.py would fail when this module is imported first, as the tests do).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from erpprov.cli import (
    handles_errors,
    main,
    project_options,
    single_target,
)
from erpprov.core.display import shown


def _default_database(target: Any) -> str:
    from erpprov.errors import ErpprovError

    if target.main_database is None:
        raise ErpprovError(f"play {target.play.name!r} declares no database", hint="name one with --db")
    return str(target.main_database)


def _progress(text: str) -> None:
    click.echo(f"  {shown(text)}", err=True)


@click.command("backup")
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@click.option("--db", "database", help="Database to back up (default: the play's first database).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="File to write (default: backups/<db>_YYYYmmdd_HHMMSS.sql, or .dump with --format custom). "
                   "An existing file is never overwritten.")
@click.option("--format", "fmt", type=click.Choice(["plain", "custom"]), default="plain", show_default=True,
              help="plain: SQL text, restorable with psql and readable in a diff; custom: pg_dump's compressed "
                   "archive for pg_restore.")
@click.option("--host", help="Host to back up (default: the only one).")
@handles_errors
def backup_cmd(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None,
               verbose: bool, database: str | None, output: Path | None, fmt: str, host: str | None) -> None:
    """Dump one database with pg_dump into a file readable only by you.

    The file appears under its name only when the dump is complete; its size and SHA-256 are
    printed so the copy can be checked later (sha256sum FILE).
    """
    from erpprov.ops.backup import backup, human_size

    target = single_target(playbook, inventory, extra_vars, limit, host)
    database = database or _default_database(target)
    result = backup(target, database=database, out=output, fmt=fmt, progress=_progress)  # type: ignore[arg-type]
    click.echo(f"backed up {shown(database)} on {shown(target.host)} to {result.path}")
    click.echo(f"  size:   {result.size} bytes ({human_size(result.size)})")
    click.echo(f"  sha256: {result.sha256}")


@click.command("restore")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@click.option("--db", "database", help="Database to restore into (default: the play's first database).")
@click.option("--into", "into", metavar="NEW_DB",
              help="Create this new database and restore into it instead (refused if it exists).")
@click.option("--yes", is_flag=True, help="Restore into a non-empty database without asking.")
@click.option("--host", help="Host to restore on (default: the only one).")
@handles_errors
def restore_cmd(file: Path, playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...],
                limit: str | None, verbose: bool, database: str | None, into: str | None, yes: bool,
                host: str | None) -> None:
    """Restore a backup made by `erpprov backup` (or pg_dump), plain SQL or custom archive.

    The restore runs in one transaction and stops at the first error, which it names: a failed
    restore changes nothing. Objects in the backup replace their namesakes in the database, so a
    non-empty database needs confirmation (--yes). Owners and grants are restored as dumped: run
    `erpprov apply` first so that the roles exist.
    """
    from erpprov.ops.backup import restore

    target = single_target(playbook, inventory, extra_vars, limit, host)
    database = database or _default_database(target)
    confirm = (lambda question: click.confirm(question, default=False)) if sys.stdin.isatty() else None
    result = restore(target, file, database=database, into=into, yes=yes, confirm=confirm, progress=_progress)
    where = f"the new database {result.database}" if result.created else result.database
    click.echo(f"restored {result.size} bytes into {shown(where)} on {shown(target.host)} ({result.format} format)")


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


def register(group: click.Group) -> None:
    for command in (backup_cmd, restore_cmd, init_cmd):
        group.add_command(command)


register(main)
