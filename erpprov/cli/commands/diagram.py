"""`diagram`: the tables as a picture (Mermaid, DOT or SVG)."""

from __future__ import annotations

from pathlib import Path

import click

from erpprov.cli.options import DEFAULT_PLAYBOOK, handles_errors, load, only_host, project_options


@click.command("diagram")
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@click.option("--db", "database", metavar="NAME", help="Database to draw (default: the playbook's only one).")
@click.option("--live", is_flag=True, help="Draw the tables the live server holds, not the files.")
@click.option("--host", help="Host whose server --live reads (default: the only one).")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "svg"]), default="mermaid",
              show_default=True, help="Mermaid (renders in GitHub/GitLab markdown), Graphviz DOT, or SVG.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write to this file instead of stdout.")
@handles_errors
def diagram_cmd(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None,
                verbose: bool, database: str | None, live: bool, host: str | None, fmt: str,
                output: Path | None) -> None:
    """Draw the tables with their columns, keys and foreign keys, from the files or (--live) the server."""
    from erpprov.ops import diagram

    project = load(playbook or DEFAULT_PLAYBOOK, inventory, extra_vars, limit)
    targets = [t for t in project.targets if host is None or t.host == host]
    declared = diagram.chosen_database(targets, database)
    if live and targets:
        only_host([t.host for t in targets])
    tables = diagram.files_or_live(targets, declared, database, live)
    text = diagram.render(tables, fmt)
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
