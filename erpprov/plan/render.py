"""Plans as people read them: Terraform-style text, and markdown for pull requests (the JSON
document is plan/planfile.py)."""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import click

from erpprov.core.actions import Action, HostPlan, Op
from erpprov.core.address import Address
from erpprov.core.display import json_shown, shown
from erpprov.core.schema_objects import plural
from erpprov.core.tables import TablesState
from erpprov.plan.diagram import Marks, mermaid

# Mermaid refuses to draw a diagram of more than 50,000 characters (its maxTextSize), and a forge's
# comment holds 65,536 at most: past this size the plan says so instead of embedding a broken one.
MERMAID_MAX_TEXT = 40_000
_SYMBOL = {Op.CREATE: "+", Op.UPDATE: "~", Op.REPLACE: "-/+", Op.DELETE: "-"}
_COLOUR = {Op.CREATE: "green", Op.UPDATE: "yellow", Op.REPLACE: "magenta", Op.DELETE: "red"}


def _value(value: Any) -> str:
    if value is None:
        return "null"
    return json_shown(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))


def _attribute_lines(action: Action) -> list[str]:
    before, after = action.before or {}, action.after or {}
    lines = []
    if action.op is Op.UPDATE or action.op is Op.REPLACE:
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key) or key not in before:
                lines.append(f"{shown(key)}: {_value(before.get(key))} → {_value(after.get(key))}")
    elif action.op is Op.CREATE:
        lines = [f"{shown(key)}: {_value(value)}" for key, value in sorted(after.items())]
    else:
        lines = [f"{shown(key)}: {_value(value)}" for key, value in sorted(before.items())]
    return lines


def summary(plan: HostPlan) -> str:
    counts = plan.counts()
    return f"Plan: {counts['add']} to add, {counts['change']} to change, {counts['destroy']} to destroy."


def _unmanaged_lines(addresses: list[Address], names: bool) -> list[str]:
    """A count per kind, so that a thousand unmanaged objects take one line; each name on its own
    line when asked for (-v)."""
    counts = Counter(address.kind for address in addresses)
    head = ", ".join(f"{n} {kind.replace('_', ' ') if n == 1 else plural(kind)}" for kind, n in counts.items())
    if not names:
        return [f"  Unmanaged (left alone): {head} (names with -v)"]
    return [f"  Unmanaged (left alone): {head}:", *(f"      {shown(address)}" for address in addresses)]


def text(plans: list[HostPlan], *, show_sql: bool = False, colour: bool = False, names: bool = False) -> str:
    """The plan for people; ``names`` lists each unmanaged object, not only a count per kind."""
    style = (lambda s, c: click.style(s, fg=c)) if colour else (lambda s, c: s)
    out: list[str] = []
    for plan in plans:
        out.append(style(f"{shown(plan.host)} (driver: {shown(plan.driver)})", "cyan"))
        if plan.empty:
            out.append("  No changes. The live state matches the files.")
        for action in plan.ordered():
            head = f"  {_SYMBOL[action.op]} {shown(action.address)}"
            if action.database and action.kind == "role":
                head += f" (in database {shown(action.database)})"
            note = action.note
            if action.kind == "data" and note:  # "3 to insert, 1 to update", then the first rows
                summary_line, _, note = note.partition("\n")
                head += f": {shown(summary_line)}"
            if action.hazards:
                head += "  " + style("[" + ", ".join(h.value for h in action.hazards) + "]", "red")
            out.append(style(head, _COLOUR[action.op]) if not action.hazards else head)
            if action.kind != "data":
                out.extend(f"      {line}" for line in _attribute_lines(action))
            if note:
                # Lines of a note are its structure (a file's diff, a table's rows); a newline in a
                # name quoted in it can only add a line under this action, never an action or a hazard tag.
                lines = [shown(line) for line in note.split("\n")]
                out.extend(f"      {line}" if action.kind in ("file", "data") else f"      # {line}" for line in lines)
            if show_sql:
                out.extend(f"      | {shown(s.display)};" for s in action.sql)
        for warning in plan.warnings:
            out.append(style(f"  ! {shown(warning)}", "yellow"))
        if plan.unmanaged:
            out.extend(_unmanaged_lines(plan.unmanaged, names))
        out.append(f"  {summary(plan)}")
        out.append("")
    return "\n".join(out)


def markdown(plans: list[HostPlan],
             pictures: Sequence[Mapping[str, tuple[TablesState, Marks]]] = ()) -> str:
    """The plan for a pull-request comment; ``pictures[i]`` (from `diagram.touched`) draws the
    tables ``plans[i]`` touches, per database, as Mermaid diagrams the forges render."""
    totals = {"add": 0, "change": 0, "destroy": 0}
    for plan in plans:
        for key, value in plan.counts().items():
            totals[key] += value
    hazards = sorted({h.value for p in plans for a in p.actions for h in a.hazards})
    out = ["### erpprov plan", "",
           (f"**{totals['add']} to add, {totals['change']} to change, {totals['destroy']} to destroy** "
            f"on {len(plans)} host{'s' if len(plans) != 1 else ''}.")]
    if hazards:
        out.append(f"\n:warning: Hazards needing permission: {', '.join(f'`{h}`' for h in hazards)}")
    out.append("")
    for index, plan in enumerate(plans):
        counts = plan.counts()
        host, driver = html.escape(shown(plan.host)), html.escape(shown(plan.driver))
        summary_line = (f"<details><summary><code>{host}</code> ({driver}): +{counts['add']} "
                        f"~{counts['change']} -{counts['destroy']}</summary>")
        out += [summary_line, ""]
        body = text([plan], names=True).splitlines()[1:]  # in a collapsed block: room for every name
        lines = [line.removeprefix("  ") for line in body if line.strip()]
        # A fence ends at a line of as many backticks as opened it: a longer one than any run in
        # the body (a name or a file may hold ```) keeps the body inside the code block.
        fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", "\n".join(lines))), default=0))
        out += [fence + "diff", *lines, fence, ""]
        for database, (tables, marks) in sorted((pictures[index] if index < len(pictures) else {}).items()):
            name = html.escape(shown(database))
            drawn = mermaid(tables, marks).rstrip("\n")
            if len(drawn) > MERMAID_MAX_TEXT:
                out += [f"The {len(tables.tables)} tables touched in <code>{name}</code> are too many to draw "
                        f"here; <code>erpprov diagram --db {name}</code> draws them.", ""]
                continue
            # The Mermaid text holds no backtick (diagram.py writes them as quotes): three close it.
            out += [f"Tables in <code>{name}</code> (added, changed and dropped marked):", "", "```mermaid", drawn,
                    "```", ""]
        out += ["</details>", ""]
    return "\n".join(out)
