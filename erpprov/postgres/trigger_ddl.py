"""SQL builders for triggers. The WHEN condition was proven one expression by the loader and is
spliced in the parentheses it was proven in; names through sql.Identifier, arguments as literals."""

from __future__ import annotations

from psycopg import sql

from erpprov.core.schema_objects import TriggerState


def create(trigger: TriggerState, *, schema: str | None = None, table: str | None = None,
           or_replace: bool = False) -> sql.Composed:
    """CREATE [OR REPLACE] [CONSTRAINT] TRIGGER; ``schema``/``table`` stand in for its table's."""
    events = [sql.SQL("UPDATE OF {}").format(sql.SQL(", ").join(sql.Identifier(c) for c in trigger.update_of))
              if event == "update" and trigger.update_of else sql.SQL(event.upper()) for event in trigger.events]
    words = "CREATE " + ("OR REPLACE " if or_replace else "") + ("CONSTRAINT " if trigger.constraint else "")
    words += "TRIGGER"
    parts: list[sql.Composable] = [
        sql.SQL(words), sql.Identifier(trigger.name), sql.SQL(trigger.timing.upper()), sql.SQL(" OR ").join(events),
        sql.SQL("ON {}").format(sql.Identifier(schema or trigger.schema, table or trigger.table))]
    if trigger.deferrable:
        parts.append(sql.SQL("DEFERRABLE INITIALLY DEFERRED" if trigger.initially_deferred else "DEFERRABLE"))
    parts.append(sql.SQL("FOR EACH {}").format(sql.SQL(trigger.for_each.upper())))
    if trigger.when is not None:
        parts.append(sql.SQL("WHEN ({})").format(sql.SQL(trigger.when)))
    parts.append(sql.SQL("EXECUTE FUNCTION {}({})").format(
        sql.Identifier(*trigger.function), sql.SQL(", ").join(sql.Literal(a) for a in trigger.arguments)))
    return sql.SQL(" ").join(parts)


def on_table(trigger: TriggerState) -> sql.Composed:
    return sql.SQL("{} ON {}").format(sql.Identifier(trigger.name), sql.Identifier(trigger.schema, trigger.table))


def enable(trigger: TriggerState, enabled: bool) -> sql.Composed:
    return sql.SQL("ALTER TABLE {} {} TRIGGER {}").format(
        sql.Identifier(trigger.schema, trigger.table), sql.SQL("ENABLE" if enabled else "DISABLE"),
        sql.Identifier(trigger.name))
