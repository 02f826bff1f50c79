"""Tables as pictures: a Mermaid `erDiagram` (GitHub and GitLab draw it in a comment) and a
Graphviz DOT graph, from one `TablesState` and the marks a plan puts on it.

Names come from files and servers and may hold anything (docs: core/display.py). Neither
language has one escape for all of it, so each name is written as the language can take it:
Mermaid entities are numbered (`t1["public.users"]`) with the name in a quoted label, where
`"`, `#`, `<`, `>`, `%` and `\\` become Mermaid's entity codes; a column name or type that is not a plain
Mermaid word is written with `_` for each other character and the exact name in the comment. DOT
nodes are numbered too and names go into HTML-like labels, escaped as HTML.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from erpprov.core import model
from erpprov.core.actions import HostPlan, Op
from erpprov.core.display import shown
from erpprov.core.tables import FOREIGN_KEY, PRIMARY_KEY, UNIQUE, ColumnState, TablesState, TableState
from erpprov.state.written import written_tables

ADDED, CHANGED, DROPPED = "added", "changed", "dropped"
_COLOUR = {ADDED: "#d4f7d4", CHANGED: "#fff0c2", DROPPED: "#f9d0d0"}
_KEY_LETTERS = {PRIMARY_KEY: "PK", FOREIGN_KEY: "FK", UNIQUE: "UK"}
_NOT_A_WORD = re.compile(r"[^A-Za-z0-9_()\[\]-]")
# `%` and `\\` too: Mermaid's lexer reads an entity's label only without them.
_MERMAID_CODES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "%": "#37;", "\\": "#92;"}


@dataclass(frozen=True)
class Marks:
    """What a plan does to the tables drawn: per table and per (table, column) an ADDED,
    CHANGED or DROPPED; unmarked ones are drawn as they are."""

    tables: Mapping[tuple[str, str], str] = field(default_factory=dict)
    columns: Mapping[tuple[str, str, str], str] = field(default_factory=dict)


def _label(table: TableState) -> str:
    return shown(f"{table.schema}.{table.name}")


def _keys(table: TableState) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for constraint in table.constraints:
        letters = _KEY_LETTERS.get(constraint.kind, "")
        for column in constraint.columns if letters else ():
            if letters not in keys.setdefault(column, []):
                keys[column].append(letters)
    return keys


def _references(state: TablesState) -> list[tuple[TableState, TableState, tuple[str, ...], tuple[str, ...]]]:
    """(child, parent, child columns, parent columns) of each foreign key between drawn tables."""
    found = []
    for table in state.tables.values():
        for fk in table.constraints:
            parent = state.tables.get((fk.ref_schema or "", fk.ref_table or ""))
            if fk.kind == FOREIGN_KEY and parent is not None:
                found.append((table, parent, fk.columns, fk.ref_columns))
    return found


# --- Mermaid ---------------------------------------------------------------------------------------

def _mermaid_text(text: str) -> str:
    return "".join(_MERMAID_CODES.get(char, char) for char in shown(text)).replace("`", "'")


def _mermaid_word(text: str) -> str:
    word = _NOT_A_WORD.sub("_", text)
    return word if word[:1].isalpha() or word[:1] == "_" else f"_{word}"


def mermaid(state: TablesState, marks: Marks = Marks()) -> str:
    ids = {key: f"t{n}" for n, key in enumerate(sorted(state.tables), 1)}
    out = ["erDiagram"]
    for key in sorted(state.tables):
        table = state.tables[key]
        mark = marks.tables.get(key)
        label = _label(table) + (f" ({mark})" if mark else "")
        out.append(f'    {ids[key]}["{_mermaid_text(label)}"] {{')
        keys = _keys(table)
        for column in table.columns:
            notes = [m for m in (marks.columns.get((*key, column.name)),) if m]
            name = _mermaid_word(column.name)
            if name != column.name:
                notes.append(column.name)
            line = f"        {_mermaid_word(column.type)} {name}"
            if column.name in keys:
                line += " " + ", ".join(keys[column.name])
            if notes:
                line += f' "{_mermaid_text("; ".join(notes))}"'
            out.append(line)
        out.append("    }")
    for child, parent, columns, _ in _references(state):
        optional = any(not c.not_null for c in child.columns if c.name in columns)
        parent_end = "o|" if optional else "||"
        out.append(f'    {ids[child.key]} }}o--{parent_end} {ids[parent.key]} : "{_mermaid_text(", ".join(columns))}"')
    return "\n".join(out) + "\n"


# --- Graphviz ----------------------------------------------------------------------------------------

def _html(text: str) -> str:
    return html.escape(shown(text), quote=True)


def dot(state: TablesState, marks: Marks = Marks()) -> str:
    ids = {key: f"t{n}" for n, key in enumerate(sorted(state.tables), 1)}
    out = ["digraph tables {", '    graph [rankdir=LR, fontname="Helvetica"];',
           '    node [shape=plain, fontname="Helvetica", fontsize=11];',
           '    edge [arrowhead=tee, arrowtail=crow, dir=both, color="#555555"];']
    for key in sorted(state.tables):
        table = state.tables[key]
        mark = marks.tables.get(key)
        title = f"<b>{_html(_label(table))}</b>" + (f" <i>({mark})</i>" if mark else "")
        head_colour = _COLOUR.get(mark or "", "#dde6f5")
        rows = [f'<tr><td colspan="3" bgcolor="{head_colour}">{title}</td></tr>']
        keys = _keys(table)
        for n, column in enumerate(table.columns):
            column_mark = marks.columns.get((*key, column.name))
            colour = f' bgcolor="{_COLOUR[column_mark]}"' if column_mark else ""
            name = _html(column.name)
            if column_mark == DROPPED:
                name = f"<s>{name}</s>"
            rows.append(f'<tr><td port="c{n}" align="left"{colour}>{name}</td>'
                        f'<td align="left"{colour}>{_html(column.type)}</td>'
                        f'<td{colour}>{" ".join(keys.get(column.name, []))}</td></tr>')
        table_html = '<table border="0" cellborder="1" cellspacing="0" cellpadding="4">' + "".join(rows) + "</table>"
        out.append(f"    {ids[key]} [label=<{table_html}>];")
    for child, parent, columns, ref_columns in _references(state):
        names = [c.name for c in child.columns]
        parent_names = [c.name for c in parent.columns]
        tail = f":c{names.index(columns[0])}:e" if columns and columns[0] in names else ""
        head = f":c{parent_names.index(ref_columns[0])}:w" if ref_columns and ref_columns[0] in parent_names else ""
        out.append(f"    {ids[child.key]}{tail} -> {ids[parent.key]}{head};")
    out.append("}")
    return "\n".join(out) + "\n"


# --- what a plan touches -------------------------------------------------------------------------

_TABLE_PARTS = ("table", "column", "constraint")  # addresses that begin (database, schema, table)
_COLUMN_MARK = {Op.CREATE: ADDED, Op.DELETE: DROPPED, Op.UPDATE: CHANGED, Op.REPLACE: CHANGED}


def touched(plan: HostPlan, play: model.Play) -> dict[str, tuple[TablesState, Marks]]:
    """Per database, the tables the plan adds, changes or drops, as the files write them (a dropped
    one as the plan knows it: by name), with the tables they reference drawn unmarked beside them.
    Index actions are not drawn: their address names no table."""
    table_marks: dict[str, dict[tuple[str, str], str]] = {}
    column_marks: dict[str, dict[tuple[str, str, str], str]] = {}
    dropped_columns: dict[str, dict[tuple[str, str], list[ColumnState]]] = {}
    for action in plan.actions:
        if action.kind not in _TABLE_PARTS:
            continue
        database, schema, table = action.address.parts[:3]
        marks = table_marks.setdefault(database, {})
        if action.kind == "table" and action.op in (Op.CREATE, Op.DELETE):
            marks[(schema, table)] = ADDED if action.op is Op.CREATE else DROPPED
            continue
        marks.setdefault((schema, table), CHANGED)
        if action.kind == "column":
            column = action.address.parts[3]
            column_marks.setdefault(database, {})[(schema, table, column)] = _COLUMN_MARK[action.op]
            if action.op is Op.DELETE:
                before = action.before or {}
                dropped_columns.setdefault(database, {}).setdefault((schema, table), []).append(
                    ColumnState(name=column, type=str(before.get("type", "unknown")),
                                not_null=bool(before.get("not_null"))))
    declared = {db.name: db for db in play.databases}
    pictures = {}
    for database, marks in table_marks.items():
        written = written_tables(declared[database]).tables if database in declared else {}
        drawn = {key: written.get(key) or TableState(schema=key[0], name=key[1], columns=()) for key in marks}
        for key, columns in dropped_columns.get(database, {}).items():
            drawn[key] = replace(drawn[key], columns=drawn[key].columns + tuple(columns))
        for child in list(drawn.values()):
            for fk in child.constraints:
                parent = (fk.ref_schema or "", fk.ref_table or "")
                if fk.kind == FOREIGN_KEY and parent not in drawn and parent in written:
                    drawn[parent] = written[parent]
        pictures[database] = (TablesState(tables=drawn), Marks(marks, column_marks.get(database, {})))
    return pictures
