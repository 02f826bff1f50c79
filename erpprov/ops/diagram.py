"""`erpprov diagram`: the tables of one database as a picture, from the files (as written, no
server) or from the live server (as PostgreSQL stores them). The pictures themselves are
plan/diagram.py's; this module finds the tables and, for SVG, runs Graphviz."""

from __future__ import annotations

import shutil
import subprocess

from erpprov.core import model
from erpprov.core.display import shown
from erpprov.core.tables import TablesState
from erpprov.core.target import Target
from erpprov.errors import ErpprovError
from erpprov.plan import diagram
from erpprov.postgres.connect import connect
from erpprov.state.table_catalog import inspect_tables
from erpprov.state.written import written_tables

FORMATS = ("mermaid", "dot", "svg")
_DOT_TIMEOUT = 120.0


def chosen_database(targets: list[Target], name: str | None) -> model.Database | None:
    """The playbook's database named ``name``, or its only one; None when ``name`` is not declared
    (a live database the files do not mention may still be drawn)."""
    declared: dict[str, model.Database] = {}
    for target in targets:
        declared.update({db.name: db for db in target.play.databases})
    if name is not None:
        return declared.get(name)
    if len(declared) != 1:
        raise ErpprovError("the playbook declares " + (f"{len(declared)} databases ("
                           + ", ".join(shown(n) for n in sorted(declared)) + ")" if declared else "no database"),
                           hint="choose one with --db NAME")
    return next(iter(declared.values()))


def live_tables(target: Target, database: str) -> TablesState:
    with connect(target.connection, database) as conn:
        return inspect_tables(conn)


def files_or_live(targets: list[Target], declared: model.Database | None, name: str | None,
                  live: bool) -> TablesState:
    """The tables to draw: as the files write ``declared``, or as the live server holds database
    ``name`` (default: the declared one)."""
    if not live:
        if declared is None:
            raise ErpprovError(f"the playbook declares no database {name!r}",
                               hint="draw a database the files do not declare with --live")
        return written_tables(declared)
    if not targets:
        raise ErpprovError("no play targets a host to read", hint="check --host / --limit and the plays' hosts:")
    database = name or (declared.name if declared else None)
    if database is None:
        raise ErpprovError("name the database to read with --db")
    return live_tables(targets[0], database)


def render(tables: TablesState, fmt: str) -> str:
    if fmt == "mermaid":
        return diagram.mermaid(tables)
    text = diagram.dot(tables)
    return svg(text) if fmt == "svg" else text


def svg(dot_text: str) -> str:
    """The DOT graph drawn by Graphviz: no browser, no network."""
    program = shutil.which("dot")
    if program is None:
        raise ErpprovError("SVG needs Graphviz's `dot`, which is not installed",
                           hint="install Graphviz (apt install graphviz, dnf install graphviz, brew install "
                                "graphviz), or write --format dot or --format mermaid instead")
    done = subprocess.run([program, "-Tsvg"], input=dot_text, capture_output=True, text=True,
                          timeout=_DOT_TIMEOUT, check=False)
    if done.returncode != 0:
        raise ErpprovError(f"Graphviz could not draw the diagram: {done.stderr.strip()}")
    return done.stdout
