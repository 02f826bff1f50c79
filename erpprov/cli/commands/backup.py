"""`backup` and `restore`: pg_dump and pg_restore/psql, checked and within one transaction."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from erpprov.cli.options import handles_errors, project_options, single_target
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
