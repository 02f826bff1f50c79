"""Seed rows: what the server's comparison found, as one action per table (pure, no I/O).

Rows are deleted children first along the foreign keys between seeded tables, then inserted and
updated parents first, so a parent row goes after the child rows that referenced it and a child row
finds its parent inserted in the same transaction; a cycle cannot be ordered and is an error. A
table with both kinds of change has two actions: its deletes, then the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from graphlib import CycleError, TopologicalSorter

from psycopg import sql

from erpprov.core import model
from erpprov.core.actions import SENSITIVE, Action, Hazard, Op, Phase, Statement
from erpprov.core.address import Address
from erpprov.core.secrets import is_secret_name
from erpprov.core.seed import DataComparison, SeedRows
from erpprov.errors import ErpprovError
from erpprov.load.taint import redact
from erpprov.postgres import data_ddl

Row = tuple[str | None, ...]


def load_order(tables: list[model.Table]) -> dict[tuple[str, str], int]:
    """Rank of each seeded table: a table comes after the seeded tables it references."""
    seeded = {(t.schema_, t.name) for t in tables if t.data is not None}
    graph: dict[tuple[str, str], set[tuple[str, str]]] = {key: set() for key in seeded}
    for t in tables:
        key = (t.schema_, t.name)
        if key not in seeded:
            continue
        for fk in t.foreign_keys:
            parent = (fk.references.schema_ or t.schema_, fk.references.table)
            if parent in seeded and parent != key:  # a table referencing itself: rows in file order
                graph[key].add(parent)
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        cycle = " → ".join(f"{s}.{n}" for s, n in exc.args[1])
        raise ErpprovError(f"the seeded tables reference each other in a cycle ({cycle}): no order of "
                           "inserts satisfies the foreign keys",
                           hint="seed one of them with a script (scripts:), or drop data from one table") from None
    return {key: rank for rank, key in enumerate(order)}


def diff_data(found: list[tuple[DataComparison, SeedRows]], tables: list[model.Table],
              secrets: Sequence[str] = ()) -> list[Action]:
    """``secrets``: the values the plan hides (`load.taint.known_secrets`); a live value that a
    declared secret replaces is most likely the previous secret, and is hidden whole."""
    order = load_order(tables)
    actions = []
    for comparison, rows in found:
        rank = order[(comparison.schema, comparison.table)]
        if comparison.to_delete:  # before every insert and update, children first
            actions.append(_deletes(comparison, rows, -1 - rank, _cascades(tables, comparison)))
        if comparison.to_insert or comparison.to_update:
            actions.append(_upserts(comparison, rows, rank, secrets))
    return actions


def _upserts(c: DataComparison, rows: SeedRows, rank: int, secrets: Sequence[str]) -> Action:
    if c.inserts_only:  # no declared key in the table: no seed table and no anti-join, one COPY
        statements = [data_ddl.copy_seed(c.columns, rows.header, rows.payload, rows.described,
                                         into=sql.Identifier(c.schema, c.table))]
    else:
        statements = [data_ddl.create_seed_table(c.columns, c.types),
                      data_ddl.copy_seed(c.columns, rows.header, rows.payload, rows.described),
                      *data_ddl.merge_statements(c)]
    statements += data_ddl.sequence_statements(c)
    return _action(c, {"insert": c.to_insert, "update": c.to_update, "delete": 0}, statements, rank,
                   Op.UPDATE if c.to_update else Op.CREATE, secrets)


def _deletes(c: DataComparison, rows: SeedRows, rank: int, cascades: list[str]) -> Action:
    statements = [data_ddl.create_seed_table(c.columns, c.types),
                  data_ddl.copy_seed(c.columns, rows.header, rows.payload, rows.described),
                  *data_ddl.delete_statements(c)]
    return _action(c, {"insert": 0, "update": 0, "delete": c.to_delete}, statements, rank, Op.DELETE,
                   cascades=cascades)


def _action(c: DataComparison, counts: dict[str, int], statements: list[Statement], rank: int, op: Op,
            secrets: Sequence[str] = (), cascades: list[str] | None = None) -> Action:
    described = ", ".join(f"{n} to {word}" for word, n in counts.items() if n)
    hidden = {i for i, name in enumerate(c.columns) if is_secret_name(name)}
    sample: dict[str, list[dict[str, object]]] = {
        "insert": [_shown(c.columns, r, hidden) for r in c.inserts] if counts["insert"] else [],
        "update": [_changed(c, want, have, hidden, secrets) for want, have in c.updates] if counts["update"] else [],
        "delete": [_shown(c.columns, r, hidden) for r in c.deletes] if counts["delete"] else []}
    return Action(
        address=Address("data", c.database, c.schema, c.table), op=op,
        phase=Phase.DATA, database=c.database, sql=tuple(statements),
        after={**counts, "mode": c.mode, "first": {k: v for k, v in sample.items() if v}},
        hazards=(Hazard.DELETES_DATA,) if counts["delete"] else (),
        note=described + "".join(f"\n! {line}" for line in cascades or ()) + "".join(_note_lines(sample, counts)),
        order=rank)


def _cascades(tables: list[model.Table], c: DataComparison) -> list[str]:
    """What deleting rows of ``c``'s table does to the rows of tables that reference it and whose
    own plan does not say so (not seeded in `exact` mode): the server cascades it unseen."""
    found = []
    for t in tables:
        if t.data is not None and t.data.mode == "exact":
            continue
        for fk in t.foreign_keys:
            if (fk.references.schema_ or t.schema_, fk.references.table) != (c.schema, c.table) or \
                    fk.on_delete not in ("cascade", "set null", "set default"):
                continue
            happens = {"cascade": "deleted too", "set null": "set to NULL"}.get(fk.on_delete, "set to their default")
            found.append(f"rows of {t.schema_}.{t.name} that reference a deleted row are {happens} "
                         f"(ON DELETE {fk.on_delete.upper()})")
    return found


def _shown(columns: tuple[str, ...], row: Row, hidden: set[int]) -> dict[str, object]:
    return {name: SENSITIVE if i in hidden and value is not None else value
            for i, (name, value) in enumerate(zip(columns, row, strict=True))}


def _changed(c: DataComparison, want: Row, have: Row, hidden: set[int], secrets: Sequence[str]) -> dict[str, object]:
    """The key of an updated row, and each column that changes as [live, declared]."""
    shown_want, shown_have = _shown(c.columns, want, hidden), _shown(c.columns, have, hidden)
    result: dict[str, object] = {k: shown_want[k] for k in c.key}
    for i, name in enumerate(c.columns):
        if name not in c.key and want[i] != have[i]:
            replaced_by_secret = want[i] is not None and have[i] is not None and redact(want[i], secrets) != want[i]
            result[name] = [SENSITIVE if replaced_by_secret else shown_have[name], shown_want[name]]
    return result


def _note_lines(sample: dict[str, list[dict[str, object]]], counts: dict[str, int]) -> list[str]:
    lines = []
    for word, rows in sample.items():
        sign = {"insert": "+", "update": "~", "delete": "-"}[word]
        for row in rows:
            lines.append(f"\n{sign} " + ", ".join(f"{k}={_value(v)}" for k, v in row.items()))
        if counts[word] > len(rows):
            lines.append(f"\n{sign} ... {counts[word] - len(rows)} more")
    return lines


def _value(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, list):
        return f"{_value(value[0])} → {_value(value[1])}"
    return repr(value) if value != SENSITIVE else SENSITIVE
