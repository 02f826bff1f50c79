"""What every step of one table diff shares: the two states, the actions so far, and what an
earlier step found out that a later one needs."""

from __future__ import annotations

from dataclasses import dataclass, field

from erpprov.core.address import Address
from erpprov.core.tables import ConstraintState, IndexState, TablesState, TableState
from erpprov.diff.tables.emit import Emitter

TableKey = tuple[str, str]  # (schema, table)
TablePair = tuple[TableState, TableState | None]  # (desired, live); None: to be created


@dataclass
class Context:
    desired: TablesState
    live: TablesState  # once paired, with declared renames applied (see `renames.pair_tables`)
    db: str
    prune: set[str]  # schemas whose undeclared tables and columns are dropped
    out: Emitter
    # filled in by the steps, for the steps after them
    unmanaged: list[Address] = field(default_factory=list, init=False)
    same: set[TableKey] = field(default_factory=set, init=False)  # tables with nothing to change
    rebuilt: dict[TableKey, set[str]] = field(default_factory=dict, init=False)  # columns dropped and added again
    retyped: set[tuple[str, str, str]] = field(default_factory=set, init=False)  # (schema, table, column) changing type
    # names used per schema, live and live or desired: read lazily, only when something gets a new name
    _live_names: dict[str, set[str]] = field(default_factory=dict, init=False)
    _taken: dict[str, set[str]] = field(default_factory=dict, init=False)

    def live_names(self, schema: str) -> set[str]:
        if schema not in self._live_names:
            self._live_names[schema] = self.live.names_in(schema)
        return self._live_names[schema]

    def taken(self, schema: str) -> set[str]:
        if schema not in self._taken:
            self._taken[schema] = self.live_names(schema) | self.desired.names_in(schema)
        return self._taken[schema]

    def free_name(self, schema: str, name: str, own: list[str]) -> str:
        """The desired name, unless a live object elsewhere already holds it (then the next free
        one, as PostgreSQL would pick; the diff matches it by shape afterwards)."""
        live_names = self.live_names(schema)
        if name not in live_names or name in own:
            return name
        taken = self.taken(schema)
        used = taken | live_names
        suffix = 1
        while f"{name}{suffix}" in used:
            suffix += 1
        taken.add(f"{name}{suffix}")
        return f"{name}{suffix}"

    def kept(self, want: TableState, have: TableState) -> set[str]:
        """The unmanaged columns: live ones the file does not mention, left alone with what
        involves them (none when the schema is pruned: they are dropped)."""
        if want.schema in self.prune:
            return set()
        return {c.name for c in have.columns} - {c.name for c in want.columns}

    # addresses
    def a_table(self, s: str, t: str) -> Address:
        return Address("table", self.db, s, t)

    def a_column(self, s: str, t: str, c: str) -> Address:
        return Address("column", self.db, s, t, c)

    def a_constraint(self, s: str, t: str, n: str) -> Address:
        return Address("constraint", self.db, s, t, n)

    def a_index(self, s: str, n: str) -> Address:
        return Address("index", self.db, s, n)


@dataclass(frozen=True)
class ColumnFates:
    """How the column changes of one table bear on its keys, checks and indexes."""

    rebuilt: set[str]  # dropped and added again: what involves them goes with them and is recreated
    kept: set[str]  # unmanaged: what involves them is left alone
    retyped: set[str]  # changing type

    def usable(self, obj: ConstraintState | IndexState) -> bool:
        """Else it goes with a column dropped and re-added, and is created again."""
        return not (set(obj.columns) & self.rebuilt)

    def ours(self, obj: ConstraintState | IndexState) -> bool:
        return not (set(obj.columns) & self.kept)

    def early(self, obj: ConstraintState | IndexState) -> bool:
        """Involves a column changing type: a doomed object must go before the change, or
        PostgreSQL rebuilds it for the new type first (and an old expression may not fit)."""
        return bool(set(obj.columns) & self.retyped)
