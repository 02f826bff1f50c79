"""Seed rows: what the server's comparison found, as one action per table (pure, no I/O).

Tables are loaded parents first along the foreign keys between seeded tables, so a child row
finds its parent inserted in the same transaction; a cycle cannot be ordered and is an error.
"""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter

from psycopg import sql

from erpprov.core import model
from erpprov.core.actions import SENSITIVE, Action, Hazard, Op, Phase
from erpprov.core.address import Address
from erpprov.core.secrets import is_secret_name
from erpprov.core.seed import DataComparison, SeedRows
from erpprov.errors import ErpprovError
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


def diff_data(found: list[tuple[DataComparison, SeedRows]], order: dict[tuple[str, str], int]) -> list[Action]:
    actions = []
    for comparison, rows in found:
        if comparison.changes:
            actions.append(_action(comparison, rows, order[(comparison.schema, comparison.table)]))
    return actions


def _action(c: DataComparison, rows: SeedRows, rank: int) -> Action:
    counts = {"insert": c.to_insert, "update": c.to_update, "delete": c.to_delete}
    described = ", ".join(f"{n} to {word}" for word, n in counts.items() if n)
    if c.inserts_only:  # a new or empty table: no seed table and no anti-join, one COPY
        statements = [data_ddl.copy_seed(c.columns, rows.header, rows.payload, rows.described,
                                         into=sql.Identifier(c.schema, c.table))]
    else:
        statements = [data_ddl.create_seed_table(c.columns, c.types),
                      data_ddl.copy_seed(c.columns, rows.header, rows.payload, rows.described),
                      *data_ddl.merge_statements(c)]
    statements += data_ddl.sequence_statements(c)
    hidden = {i for i, name in enumerate(c.columns) if is_secret_name(name)}
    sample: dict[str, list[dict[str, object]]] = {"insert": [_shown(c.columns, r, hidden) for r in c.inserts],
              "update": [_changed(c, want, have, hidden) for want, have in c.updates],
              "delete": [_shown(c.columns, r, hidden) for r in c.deletes]}
    return Action(
        address=Address("data", c.database, c.schema, c.table),
        op=Op.CREATE if not (c.to_update or c.to_delete) else Op.UPDATE,
        phase=Phase.DATA, database=c.database, sql=tuple(statements),
        after={**counts, "mode": c.mode, "first": {k: v for k, v in sample.items() if v}},
        hazards=(Hazard.DELETES_DATA,) if c.to_delete else (),
        note=described + "".join(_note_lines(sample, counts)),
        order=rank)


def _shown(columns: tuple[str, ...], row: Row, hidden: set[int]) -> dict[str, object]:
    return {name: SENSITIVE if i in hidden and value is not None else value
            for i, (name, value) in enumerate(zip(columns, row, strict=True))}


def _changed(c: DataComparison, want: Row, have: Row, hidden: set[int]) -> dict[str, object]:
    """The key of an updated row, and each column that changes as [live, declared]."""
    shown_want, shown_have = _shown(c.columns, want, hidden), _shown(c.columns, have, hidden)
    result: dict[str, object] = {k: shown_want[k] for k in c.key}
    for i, name in enumerate(c.columns):
        if name not in c.key and want[i] != have[i]:
            result[name] = [shown_have[name], shown_want[name]]
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
