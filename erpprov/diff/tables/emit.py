"""How the table diff emits actions, so that they run in dependency order.

The diff finds actions table by table; each carries its rank within its phase (`Action.order`),
which `core.actions.execution_order` — the one order of plans, saved plans and the executor —
sorts by after the phase. Of equal rank, actions keep the order they were emitted in.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import NamedTuple

from erpprov.core.actions import Action, Hazard, Op, Phase, Statement, execution_order
from erpprov.core.address import Address
from erpprov.core.tables import TableState


class Order(IntEnum):
    """Order within a phase: renames first, then foreign keys that must go, then other early
    drops, then the rest, then what must wait for all of that."""

    RENAME = 0
    FK_DROP = 1
    EARLY_DROP = 2
    NORMAL = 5
    LATE = 6


class Slot(NamedTuple):
    """Where an action goes in the plan: its phase, and its place within the phase."""

    phase: Phase
    order: Order = Order.NORMAL


class Emitter:
    """Actions of one database, each ranked within its phase."""

    def __init__(self, database: str):
        self.database = database
        self.emitted: list[Action] = []

    def add(self, address: Address, op: Op, phase: Phase, statements: Iterable[Statement], *,
            before: dict[str, object] | None = None, after: dict[str, object] | None = None,
            hazards: Iterable[Hazard] = (), note: str | None = None, order: Order = Order.NORMAL) -> None:
        self.emitted.append(Action(
            address=address, op=op, phase=phase, database=self.database, sql=tuple(statements), before=before,
            after=after, hazards=tuple(dict.fromkeys(hazards)), note=note, order=order))

    def actions(self) -> list[Action]:
        return execution_order(self.emitted)


def hazards_on(table: TableState | None, *hazards: Hazard) -> tuple[Hazard, ...]:
    """Data-dependent hazards only count on a table that may hold rows (None: a new table)."""
    if table is None or not table.has_rows:
        return tuple(h for h in hazards if h is Hazard.DELETES_DATA)
    return tuple(dict.fromkeys(hazards))
