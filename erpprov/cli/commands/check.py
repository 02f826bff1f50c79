"""`validate` and `schema`: the files alone, no server."""

from __future__ import annotations

import json
from pathlib import Path

import click

from erpprov.cli.options import DEFAULT_PLAYBOOK, handles_errors, load, project_options
from erpprov.core.display import shown


@click.command()
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
        click.echo(f"{playbook}: valid ({plays} play{'s' if plays != 1 else ''}, "
                   f"hosts: {', '.join(shown(h) for h in project.hosts)})")


@click.command()
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write to a file instead of stdout.")
@handles_errors
def schema(output: Path | None) -> None:
    """Print the JSON Schema of the playbook format (for editors and CI)."""
    from erpprov.core.model import playbook_json_schema

    text = json.dumps(playbook_json_schema(), indent=2, sort_keys=True) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
