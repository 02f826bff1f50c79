"""The diff of triggers (pure). A trigger whose definition changes is replaced in one statement
(CREATE OR REPLACE TRIGGER) — a constraint trigger, which cannot be, is dropped and created in the
same transaction; `enabled: false` is ALTER TABLE ... DISABLE TRIGGER."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from psycopg import sql

from erpprov.core import model
from erpprov.core.actions import Action, Op, Phase
from erpprov.core.address import Address
from erpprov.core.schema_objects import TriggerState
from erpprov.diff.result import Result, comment_changes
from erpprov.diff.schema_objects import declared_renames
from erpprov.postgres import trigger_ddl
from erpprov.postgres.ddl import render

_EVENT_ORDER = ("insert", "update", "delete", "truncate")  # as the catalog's bits read back


def desired_trigger(trigger: model.Trigger) -> TriggerState:
    """The trigger in the state vocabulary, its condition as written (`with_condition` puts the
    server's text in where it could build it)."""
    return TriggerState(
        trigger.schema_, trigger.table, trigger.name, trigger.timing,
        tuple(e for e in _EVENT_ORDER if e in trigger.events), tuple(trigger.update_of), trigger.for_each,
        trigger.when, (trigger.function_schema or trigger.schema_, trigger.function), tuple(trigger.arguments),
        trigger.constraint, trigger.deferrable is not False, trigger.deferrable == "initially deferred",
        trigger.enabled, trigger.comment, trigger.renamed_from)


def _shape(trigger: TriggerState) -> dict[str, object]:
    return {"timing": trigger.timing, "events": list(trigger.events), "update_of": list(trigger.update_of),
            "for_each": trigger.for_each, "when": trigger.when, "function": ".".join(trigger.function),
            "arguments": list(trigger.arguments), "constraint": trigger.constraint,
            "deferrable": trigger.deferrable, "initially_deferred": trigger.initially_deferred,
            "enabled": trigger.enabled}


def on_renamed_tables(live: Mapping[tuple[str, str, str], TriggerState], actions: Iterable[Action]
                      ) -> dict[tuple[str, str, str], TriggerState]:
    """The live triggers as they stand once this plan's table renames ran: a renamed table takes
    its triggers along, so they are compared, not created a second time."""
    moved = {(a.address.parts[1], str(a.before["name"])): a.address.parts[2] for a in actions
             if a.address.kind == "table" and a.op is Op.UPDATE and a.before and "name" in a.before}
    return {(s, moved.get((s, t), t), n): replace(trigger, table=moved.get((s, t), t))
            for (s, t, n), trigger in live.items()}


def diff_triggers(declared: list[TriggerState], live: Mapping[tuple[str, str, str], TriggerState],
                  database: str) -> Result:
    result = Result()
    for want in declared:
        address = Address("trigger", database, want.schema, want.table, want.name)
        have, statements = _renamed(want, live)
        renamed = bool(statements)
        if have is None or have.definition() != want.definition():
            dropped = have is not None and (have.constraint or want.constraint)
            if dropped:
                statements.append(sql.SQL("DROP TRIGGER {}").format(trigger_ddl.on_table(want)))
            statements.append(trigger_ddl.create(want, or_replace=have is not None and not dropped))
        if not want.enabled and (statements or (have is not None and have.enabled)):
            statements.append(trigger_ddl.enable(want, False))
        elif want.enabled and have is not None and not have.enabled and not statements[renamed:]:  # no CREATE
            statements.append(trigger_ddl.enable(want, True))
        if comment_changes(want.comment, have.comment if have else None):
            statements.append(sql.SQL("COMMENT ON TRIGGER {} IS {}").format(
                trigger_ddl.on_table(want), sql.Literal(want.comment or None)))
        if not statements:
            continue
        after = _shape(want) | ({"comment": want.comment} if want.comment is not None else {})
        before = None
        if have is not None:
            old = _shape(have) | {"comment": have.comment}
            before = {k: v for k, v in old.items() if k in after and after[k] != v}
            after = {k: after[k] for k in before}
            if renamed:
                before["name"], after["name"] = want.renamed_from, want.name
        result.actions.append(Action(address, Op.CREATE if have is None else Op.UPDATE, Phase.TRIGGER,
                                     database=database, sql=tuple(render(s) for s in statements),
                                     before=before, after=after))
    return result


def _renamed(want: TriggerState, live: Mapping[tuple[str, str, str], TriggerState]
             ) -> tuple[TriggerState | None, list[sql.Composable]]:
    """The live trigger the desired one is: its namesake, or the one on the same table it is
    `renamed_from`, renamed first so the rest compares like with like."""
    key, old = (want.schema, want.table, want.name), (want.schema, want.table, want.renamed_from or "")
    if not declared_renames("trigger", [(key, old)] if want.renamed_from else [], live):
        return live.get(key), []
    have = live[old]
    return replace(have, name=want.name), [sql.SQL("ALTER TRIGGER {} RENAME TO {}").format(
        trigger_ddl.on_table(have), sql.Identifier(want.name))]
