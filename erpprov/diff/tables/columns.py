"""The columns of a table that exists on both sides: added, altered, rebuilt or dropped."""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg import sql

from erpprov.core.actions import Hazard, Op, Phase, Statement
from erpprov.core.tables import IDENTITY_OPTIONS, PRIMARY_KEY, ColumnState, TableState
from erpprov.diff.tables.context import Context
from erpprov.diff.tables.emit import Order, hazards_on
from erpprov.diff.tables.retype import type_change
from erpprov.postgres import table_ddl as ddl
from erpprov.postgres.naming import choose_name


def diff_columns(ctx: Context, want: TableState, have: TableState) -> set[str]:
    """Add, alter and drop columns; returns the columns dropped and re-added (their keys and
    indexes go with them and are created again)."""
    s, t = want.schema, want.name
    live = {c.name: c for c in have.columns}
    # A generation expression cannot be changed in place, and no column a generated column
    # reads can change type while it exists: such generated columns are dropped first and
    # added again after the other changes (derived data: nothing is lost).
    retyped = any(c.name in live and not c.generated and (live[c.name].type, live[c.name].collation)
                  != (c.type, c.collation) for c in want.columns)
    rebuilt = {c.name for c in want.columns if c.name in live and (
        live[c.name].generated != c.generated or (retyped and c.generated and live[c.name].generated))}
    ctx.retyped.update((s, t, c.name) for c in want.columns if c.name in live
                       and (live[c.name].type, live[c.name].collation) != (c.type, c.collation))
    pk_now = {n for con in have.constraints if con.kind == PRIMARY_KEY for n in con.columns}
    pk_then = {n for con in want.constraints if con.kind == PRIMARY_KEY for n in con.columns}
    for col in want.columns:
        old = live.get(col.name)
        if old is None:
            _add_column(ctx, s, t, col, have)
            continue
        if col.name in rebuilt:
            _rebuild_column(ctx, s, t, old, col, have)
            continue
        _alter_column(ctx, s, t, old, col, have, late_null_drop=col.name in pk_now - pk_then)
        if old.comment != col.comment:
            ctx.out.add(ctx.a_column(s, t, col.name), Op.UPDATE, Phase.COMMENT,
                        [ddl.comment("COLUMN", ddl.ident(s, t, col.name), col.comment)],
                        before={"comment": old.comment}, after={"comment": col.comment})
    _undeclared_columns(ctx, want, have)
    return rebuilt


def _undeclared_columns(ctx: Context, want: TableState, have: TableState) -> None:
    """Live columns the file does not mention: dropped in a pruned schema, else reported."""
    s, t = want.schema, want.name
    wanted = {c.name for c in want.columns}
    for old in have.columns:
        name = old.name
        if name in wanted:
            continue
        if s in ctx.prune:  # generated columns early: they block type changes and drops of others
            ctx.out.add(ctx.a_column(s, t, name), Op.DELETE,
                        Phase.COLUMN if old.generated else Phase.DROP_COLUMN,
                        [ddl.alter_table(s, t, sql.SQL("DROP COLUMN {}").format(ddl.ident(name)))],
                        before={"type": old.type}, hazards=(Hazard.DELETES_DATA,),
                        order=Order.EARLY_DROP if old.generated else Order.NORMAL,
                        note=f"the values of {name} are lost")
        else:
            ctx.unmanaged.append(ctx.a_column(s, t, name))


def _add_column(ctx: Context, s: str, t: str, col: ColumnState, have: TableState) -> None:
    statements = [ddl.alter_table(s, t, sql.SQL("ADD COLUMN {}").format(ddl.column_definition(col))),
                  *ddl.column_settings(s, t, col)]
    if col.comment:
        statements.append(ddl.comment("COLUMN", ddl.ident(s, t, col.name), col.comment))
    hazards: list[Hazard] = []
    notes = []
    if col.rewrites_on_add:
        hazards += [Hazard.REWRITES_TABLE, Hazard.LOCKS_TABLE]
        notes.append("the new column's value is computed for every row (volatile default, serial, "
                     "identity or generated): the table is rewritten under an exclusive lock")
    if col.not_null and col.default is None and not (col.serial or col.identity or col.generated):
        hazards.append(Hazard.VALIDATES_DATA)
        notes.append(f"NOT NULL without a default: fails if {s}.{t} has any row")
    ctx.out.add(ctx.a_column(s, t, col.name), Op.CREATE, Phase.COLUMN, statements,
                after=column_view(col), hazards=hazards_on(have, *hazards),
                note="; ".join(notes) if notes and have.has_rows else None)


def _rebuild_column(ctx: Context, s: str, t: str, old: ColumnState, new: ColumnState, have: TableState) -> None:
    """Dropped early in its phase and added back late, once every other column has changed."""
    c = new.name
    ctx.out.add(ctx.a_column(s, t, c), Op.DELETE, Phase.COLUMN,
                [ddl.alter_table(s, t, sql.SQL("DROP COLUMN {}").format(ddl.ident(c)))],
                before=column_view(old), order=Order.EARLY_DROP,
                hazards=hazards_on(have, Hazard.DELETES_DATA) if old.generated is None else (),
                note="dropped to be added again (PostgreSQL cannot change a generated column in "
                     "place); its indexes and constraints are created again")
    ctx.out.add(ctx.a_column(s, t, c), Op.CREATE, Phase.COLUMN,
                [ddl.alter_table(s, t, sql.SQL("ADD COLUMN {}").format(ddl.column_definition(new))),
                 *ddl.column_settings(s, t, new),
                 *([ddl.comment("COLUMN", ddl.ident(s, t, c), new.comment)] if new.comment else [])],
                after=column_view(new), order=Order.LATE,
                hazards=hazards_on(have, Hazard.REWRITES_TABLE, Hazard.LOCKS_TABLE),
                note="the stored values are computed for every row" if have.has_rows else None)


@dataclass
class _ColumnChange:
    """The steps of one column's change, gathered into a single UPDATE action."""

    schema: str
    table: str
    column: str
    steps: list[Statement] = field(default_factory=list)
    before: dict[str, object] = field(default_factory=dict)
    after: dict[str, object] = field(default_factory=dict)
    hazards: set[Hazard] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def alter(self, clause: sql.Composable) -> None:
        self.steps.append(ddl.alter_column(self.schema, self.table, self.column, clause))


# Compared in this order, which is the order the plan shows them in.
_ATTRIBUTES = ("identity", "identity_options", "serial", "type", "collation", "default", "not_null", "storage",
               "compression", "statistics")


def _alter_column(ctx: Context, s: str, t: str, old: ColumnState, new: ColumnState, have: TableState, *,
                  late_null_drop: bool = False) -> None:
    """One UPDATE action with the steps in the order PostgreSQL needs them. `late_null_drop`:
    the column leaves a live primary key, so DROP NOT NULL waits until that key is gone."""
    change = _ColumnChange(s, t, new.name)
    for attr in _ATTRIBUTES:
        if getattr(old, attr) != getattr(new, attr):
            change.before[attr], change.after[attr] = _shown(attr, getattr(old, attr)), _shown(attr, getattr(new, attr))
    changed = frozenset(change.after)
    retype = bool(changed & {"type", "collation"})
    _drop_value_source(change, old, new, changed, retype)
    if retype:
        _retype(change, old, new)
    if new.default is not None and ("default" in changed or (retype and old.default is not None)):
        change.alter(sql.SQL("SET DEFAULT {}").format(ddl.expression(new.default_source or new.default)))
    if "serial" in changed and new.serial:
        _new_sequence(ctx, change, new)
    if "not_null" in changed and new.not_null:  # before ADD GENERATED, which needs it
        change.alter(sql.SQL("SET NOT NULL"))
        change.hazards |= {Hazard.VALIDATES_DATA, Hazard.LOCKS_TABLE}
        change.notes.append(f"rows where {change.column} IS NULL make this fail; the transaction rolls back and "
                       f"{s}.{t} is left as it was (the error says how many rows)")
    if "identity" in changed and new.identity and old.identity:
        change.alter(sql.SQL("SET GENERATED {}").format(sql.SQL(new.identity.upper())))
    if new.identity and not old.identity:
        change.alter(sql.SQL("ADD {}").format(ddl.identity_clause(new.identity, new.identity_options)))
        change.notes.append("the identity sequence starts where its options say, not past existing values: "
                            "set it past them")
    elif new.identity and "identity_options" in changed and new.identity_options:
        # SET START changes only where a RESTART would go back to; the current value stays
        change.alter(sql.SQL(" ").join(sql.SQL("SET {}").format(o) for o in ddl.sequence_options(new.identity_options)))
    if "not_null" in changed and not new.not_null:
        if late_null_drop:
            ctx.out.add(ctx.a_column(s, t, change.column), Op.UPDATE, Phase.DROP_CONSTRAINT,
                        [ddl.alter_column(s, t, change.column, sql.SQL("DROP NOT NULL"))],
                        before={"not_null": True}, after={"not_null": False}, order=Order.LATE)
            del change.before["not_null"], change.after["not_null"]
        else:
            change.alter(sql.SQL("DROP NOT NULL"))
    _settings(change, new, changed)
    if change.steps:
        ctx.out.add(ctx.a_column(s, t, change.column), Op.UPDATE, Phase.COLUMN, change.steps, before=change.before,
                    after=change.after, hazards=hazards_on(have, *sorted(change.hazards, key=lambda h: h.value)),
                    note="; ".join(n for n in change.notes if n) or None)


def _settings(change: _ColumnChange, new: ColumnState, changed: frozenset[str]) -> None:
    """Storage, compression and statistics target: set in place, for values written from now on
    (and the next ANALYZE); nothing is rewritten."""
    if "storage" in changed:
        change.alter(sql.SQL("SET STORAGE {}").format(sql.SQL((new.storage or "").upper())))
    if "compression" in changed:
        change.alter(sql.SQL("SET COMPRESSION {}").format(sql.SQL(new.compression or "DEFAULT")))
    if "statistics" in changed:
        change.alter(sql.SQL("SET STATISTICS {}").format(sql.Literal(-1 if new.statistics is None else new.statistics)))


def _drop_value_source(change: _ColumnChange, old: ColumnState, new: ColumnState, changed: frozenset[str],
                       retype: bool) -> None:
    """What fills the column today goes first: an identity or serial that is given up, or a
    default that changes (before a type change too: the old default may not cast)."""
    if "identity" in changed and old.identity and not new.identity:
        change.alter(sql.SQL("DROP IDENTITY"))
        # The identity's sequence goes with it: even with no rows, where numbering stood is lost.
        change.hazards.add(Hazard.DELETES_DATA)
        gone = f"the sequence {'.'.join(old.sequence)}" if old.sequence else "its sequence"
        change.notes.append(f"{gone} is dropped and its current value is lost")
    if "serial" in changed and old.serial:
        change.alter(sql.SQL("DROP DEFAULT"))
        if old.sequence:
            change.steps.append(ddl.render(sql.SQL("DROP SEQUENCE {}").format(ddl.ident(*old.sequence))))
            # Even with no rows the sequence may have advanced: where numbering stood is lost.
            change.hazards.add(Hazard.DELETES_DATA)
            change.notes.append(f"the sequence {'.'.join(old.sequence)} is dropped and its current value is lost")
    elif old.default is not None and ("default" in changed or retype) and not old.serial:
        change.alter(sql.SQL("DROP DEFAULT"))


def _retype(change: _ColumnChange, old: ColumnState, new: ColumnState) -> None:
    collate = sql.SQL(" COLLATE {}").format(sql.SQL(new.collation)) if new.collation else sql.SQL("")
    change.alter(sql.SQL("TYPE {}{} USING {}::{}").format(sql.SQL(new.type), collate, ddl.ident(change.column),
                                                     sql.SQL(new.type)))
    hazards, note = type_change(old.type, new.type)
    if old.type == new.type:  # only the collation: indexes on it are rebuilt
        hazards, note = set(), "collation change: indexes on the column are rebuilt"
    change.hazards |= hazards | {Hazard.LOCKS_TABLE}
    change.notes.append(note)
    if new.serial and old.serial and old.sequence and old.type != new.type:
        change.steps.append(ddl.render(sql.SQL("ALTER SEQUENCE {} AS {}").format(ddl.ident(*old.sequence),
                                                                           sql.SQL(new.type))))


def _new_sequence(ctx: Context, change: _ColumnChange, new: ColumnState) -> None:
    """A column that becomes serial gets a sequence of its own, as PostgreSQL would name it."""
    s, t, c = change.schema, change.table, change.column
    seq = choose_name(t, [c], "seq", ctx.taken(s))
    change.steps.append(ddl.render(sql.SQL("CREATE SEQUENCE {} AS {} OWNED BY {}").format(
        ddl.ident(s, seq), sql.SQL(new.type), ddl.ident(s, t, c))))
    regclass = sql.Literal(ddl.ident(s, seq).as_string(None))
    change.alter(sql.SQL("SET DEFAULT nextval({}::regclass)").format(regclass))
    change.notes.append("the new sequence starts at 1: set it past existing values (setval)")


def _shown(attr: str, value: object) -> object:
    """Plain JSON data, as a saved plan holds it (a tuple would come back a list, and differ)."""
    if attr == "identity_options" and isinstance(value, tuple):
        return dict(zip(IDENTITY_OPTIONS, value, strict=True))
    return value


def column_view(c: ColumnState) -> dict[str, object]:
    view: dict[str, object] = {"type": c.type, "not_null": c.not_null}
    for attr in ("default", "identity", "generated", "collation", "compression", "statistics", "comment"):
        if getattr(c, attr) is not None:
            view[attr] = getattr(c, attr)
    if c.identity_options is not None:
        view["identity_options"] = _shown("identity_options", c.identity_options)
    if c.serial:
        view["serial"] = True
    if c.storage != c.type_storage:
        view["storage"] = c.storage
    return view
