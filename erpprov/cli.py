"""The `erpprov` command: a thin layer over the library. Heavy modules are imported inside the
commands so that `erpprov --help` starts fast."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from erpprov import __version__
from erpprov.errors import ErpprovError

DEFAULT_PLAYBOOK = Path("playbooks/dev.yaml")


def _fail(exc: BaseException, verbose: bool) -> None:
    if verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


def handles_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn ErpprovError into one message and exit 1; tracebacks only with -v."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verbose = bool(kwargs.get("verbose"))
        try:
            return fn(*args, **kwargs)
        except ErpprovError as exc:
            _fail(exc, verbose)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def project_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options every command that loads a playbook shares."""
    options = [
        click.option("-i", "--inventory", type=click.Path(path_type=Path), default=Path("inventory.yaml"),
                     show_default=True, help="Inventory file (Ansible YAML format)."),
        click.option("-e", "--extra-vars", multiple=True, metavar="NAME=VALUE|@FILE",
                     help="Variables that override all others; repeatable."),
        click.option("-l", "--limit", metavar="PATTERN", help="Only hosts matching this pattern (e.g. dev:!db2)."),
        click.option("-v", "--verbose", is_flag=True, help="Show SQL and tracebacks."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def load(playbook: Path, inventory: Path, extra_vars: tuple[str, ...], limit: str | None):
    from erpprov.loader import load_project, parse_extra_vars

    return load_project(playbook, inventory, extra_vars=parse_extra_vars(list(extra_vars), Path.cwd()), limit=limit)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="erpprov")
def main() -> None:
    """Declarative provisioning for a team's PostgreSQL.

    Describe the container, roles, databases, grants and tables in playbooks/*.yaml; `plan` shows
    what differs from the live server and `apply` changes only that.
    """


@main.command()
@click.argument("playbooks", nargs=-1, type=click.Path(path_type=Path))
@project_options
@handles_errors
def validate(playbooks: tuple[Path, ...], inventory: Path, extra_vars: tuple[str, ...], limit: str | None,
             verbose: bool) -> None:
    """Check playbooks and the inventory without touching a server (default: playbooks/dev.yaml)."""
    for playbook in playbooks or (DEFAULT_PLAYBOOK,):
        project = load(playbook, inventory, extra_vars, limit)
        if not project.targets:
            click.echo(f"{playbook}: valid, but no play matches any host", err=True)
            continue
        plays = len({t.play.name for t in project.targets})
        click.echo(f"{playbook}: valid ({plays} play{'s' if plays != 1 else ''}, hosts: {', '.join(project.hosts)})")


@main.command()
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write to a file instead of stdout.")
def schema(output: Path | None) -> None:
    """Print the JSON Schema of the playbook format (for editors and CI)."""
    from erpprov.model import playbook_json_schema

    text = json.dumps(playbook_json_schema(), indent=2, sort_keys=True) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
