"""`compose`: write a play's container as a Docker Compose service."""

from __future__ import annotations

from pathlib import Path

import click

from erpprov.cli.options import handles_errors, project_options, single_target


@click.command("compose")
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@click.option("--host", help="Host whose play to write (default: the only one).")
@click.option("--service", default="postgres", show_default=True, help="Name of the Compose service.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the Compose file here instead of stdout.")
@handles_errors
def compose_cmd(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None,
                verbose: bool, host: str | None, service: str, output: Path | None) -> None:
    """Write the play's `container:` as a Docker Compose service (secrets stay in the environment).

    Then point the play at it: `container: {compose: docker-compose.yml, service: postgres}`.
    """
    import yaml

    from erpprov.files.atomic import write_private
    from erpprov.ops.compose_file import compose_document

    target = single_target(playbook, inventory, extra_vars, limit, host)
    document, from_environment = compose_document(target, service, output.parent if output else Path.cwd())
    text = "# Written by `erpprov compose`.\n" + yaml.safe_dump(document, sort_keys=False, width=100)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_private(output, text)
        click.echo(f"Wrote {output}", err=True)
    if from_environment:
        click.echo(f"Left to the environment (or the .env beside the Compose file): {', '.join(from_environment)}",
                   err=True)
