"""The table diff: desired state against live state, into plan actions. Pure: no I/O.

Ownership rules (DESIGN decision 6):
* tables and columns the file does not mention are reported as unmanaged and left alone, unless
  their schema is in `prune_schemas`, in which case they are dropped (DELETES_DATA);
* a declared table's keys, checks, foreign keys and indexes are exactly what the file says: others
  are dropped (that deletes no data), except those that involve a column left alone as unmanaged.

Matching: a declared name matches by name. An unnamed object (whose name in the desired state is
PostgreSQL's choice) first matches a live object of the same shape whatever its name — so a
renamed table keeps its `old_pkey` — and only then by name. Renames are declared
(`renamed_from`), never guessed.

Order: the executor sorts by phase with a stable sort, so within a phase actions are emitted in
dependency order: table renames, column renames, then creates; foreign keys that must go before a
key they reference is replaced are dropped at the head of the CONSTRAINT phase; foreign keys are
created in FOREIGN_KEY, after every table and key exists (which also resolves cycles); drops of
foreign keys precede the drops of the keys and tables they reference.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from typing import Any, TypeAlias

from psycopg import sql

from erpprov.core.actions import Action, Hazard, Op, Phase, Statement
from erpprov.postgres import table_ddl as ddl
from erpprov.postgres.naming import choose_name
from erpprov.state.tables import (
    CHECK,
    FOREIGN_KEY,
    KIND_WORDS,
    PRIMARY_KEY,
    UNIQUE,
    ColumnState,
    ConstraintState,
    IndexState,
    TableDiff,
    TablesState,
    TableState,
)

_Object: TypeAlias = ConstraintState | IndexState  # what _match pairs

# --- type changes -----------------------------------------------------------------------------

_TYPE = re.compile(r"^(?P<base>[^(\[]+)\s*(?:\((?P<args>[^)]*)\))?(?P<rest>.*)$", re.DOTALL)
_INTEGER_RANK = {"smallint": 1, "integer": 2, "bigint": 3}
_NO_REWRITE_WIDENING = {"character varying", "numeric", "bit varying"}  # larger limits keep the bytes
_TEXTUAL = {"character varying", "text"}


def _parts(type_: str) -> tuple[str, tuple[int, ...], str]:
    match = _TYPE.match(type_)
    if not match:
        return type_, (), ""
    args = tuple(int(a) for a in match.group("args").split(",") if a.strip().isdigit()) if match.group("args") else ()
    return match.group("base").strip(), args, match.group("rest").strip()


def type_change(old: str, new: str) -> tuple[set[Hazard], str]:
    """Hazards of ALTER COLUMN TYPE old -> new (both in format_type spelling), and a note.
    Without rows nothing can be lost; the caller drops data-dependent hazards for empty tables."""
    if old == new:
        return set(), ""
    (ob, oa, orest), (nb, na, nrest) = _parts(old), _parts(new)
    if ob == nb and orest == nrest:
        if not na or (len(na) == len(oa) and all(n >= o for n, o in zip(na, oa, strict=True))
                      and (ob != "numeric" or na[1:] == oa[1:])):
            if ob in _NO_REWRITE_WIDENING:
                return set(), f"{old} -> {new} widens the limit: no rewrite"
            return {Hazard.REWRITES_TABLE}, f"{old} -> {new} rewrites the table"
        return ({Hazard.DELETES_DATA, Hazard.REWRITES_TABLE, Hazard.VALIDATES_DATA},
                f"{old} -> {new} narrows the type: longer values fail the cast or are cut")
    if ob in _TEXTUAL and nb == "text" and not orest and not nrest:
        return set(), f"{old} -> {new} is binary compatible: no rewrite"
    if ob in _INTEGER_RANK and nb in _INTEGER_RANK and not orest and not nrest:
        if _INTEGER_RANK[nb] > _INTEGER_RANK[ob]:
            return {Hazard.REWRITES_TABLE}, f"{old} -> {new} rewrites the table"
        return ({Hazard.DELETES_DATA, Hazard.REWRITES_TABLE, Hazard.VALIDATES_DATA},
                f"{old} -> {new} narrows the type: values out of range make it fail")
    if nb in _TEXTUAL and not na and not nrest:  # anything prints as text
        return {Hazard.REWRITES_TABLE}, f"{old} -> {new} rewrites the table"
    return ({Hazard.REWRITES_TABLE, Hazard.VALIDATES_DATA, Hazard.DELETES_DATA},
            f"{old} -> {new} casts every value: values that do not convert make it fail, some may lose precision")


# --- helpers ------------------------------------------------------------------------------------

_SIMPLE = re.compile(r"^[a-z_][a-z0-9_$]*$")


def _quoted(name: str) -> str:
    return name if _SIMPLE.match(name) else '"' + name.replace('"', '""') + '"'


def _rename_in_text(text: str | None, old: str, new: str) -> str | None:
    """A live check or index expression printed before a column rename, as PostgreSQL will print
    it after (best effort: if it misses, the object is replaced, which is still correct)."""
    if text is None:
        return None
    pattern = re.escape(_quoted(old)) if not _SIMPLE.match(old) else r'(?<![\w"$])' + re.escape(old) + r'(?![\w"$])'
    return re.sub(pattern, lambda _: _quoted(new), text)


def _hazards(table: TableState | None, *hazards: Hazard) -> tuple[Hazard, ...]:
    """Data-dependent hazards only count on a table that may hold rows."""
    if table is None or not table.has_rows:
        return tuple(h for h in hazards if h is Hazard.DELETES_DATA)
    return tuple(dict.fromkeys(hazards))


# Order within a phase (the executor's stable sort keeps it): renames first, then foreign keys
# that must go, then other early drops, then the rest, then what must wait for all of that.
RENAME, FK_DROP, EARLY_DROP, NORMAL, LATE = 0, 1, 2, 5, 6


class _Emitter:
    """Actions bucketed by (phase, order); within a bucket, in the order emitted. Flattened in
    bucket order, so the executor's stable sort by phase keeps the order within each phase."""

    def __init__(self, database: str):
        self.database = database
        self.buckets: dict[tuple[int, int], list[Action]] = {}

    def add(self, address: str, op: Op, phase: Phase, statements: Iterable[Statement], *,
            before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
            hazards: Iterable[Hazard] = (), note: str | None = None, order: int = NORMAL) -> None:
        self.buckets.setdefault((int(phase), order), []).append(Action(
            address=address, op=op, phase=phase, database=self.database, sql=tuple(statements), before=before,
            after=after, hazards=tuple(dict.fromkeys(hazards)), note=note))

    def actions(self) -> list[Action]:
        return [a for key in sorted(self.buckets) for a in self.buckets[key]]


def _match(wanted: Iterable[_Object], live: Iterable[_Object],
           usable: Callable[[_Object], bool] = lambda obj: True) -> tuple[list, list, list]:
    """(pairs, only wanted, only live) for constraints or indexes (see the module docstring)."""
    wanted, pool = list(wanted), [o for o in live if usable(o)]
    pairs: list[tuple] = []
    missing: list = []
    by_name = {o.name: o for o in pool}
    claimed: set[str] = set()

    def claim(w: _Object, o: _Object) -> None:
        pairs.append((w, o))
        claimed.add(o.name)

    rest = []
    for w in wanted:
        o = by_name.get(w.name)
        if w.declared_name and o is not None and _kind(o) == _kind(w):
            claim(w, o)
        else:
            rest.append(w)
    second = []
    for w in rest:
        twin = next((o for o in pool if o.name not in claimed and o.shape() == w.shape()), None) \
            if not w.declared_name else None
        if twin is not None:
            claim(w, twin)
        else:
            second.append(w)
    for w in second:
        o = by_name.get(w.name)
        if o is not None and o.name not in claimed and _kind(o) == _kind(w):
            claim(w, o)
        else:
            missing.append(w)
    return pairs, missing, [o for o in pool if o.name not in claimed]


def _kind(obj: _Object) -> str:
    return getattr(obj, "kind", "index")


# --- the diff -----------------------------------------------------------------------------------


def diff_tables(desired: TablesState, live: TablesState, *, database: str,
                prune_schemas: Collection[str] = ()) -> TableDiff:
    return _Differ(desired, live, database, set(prune_schemas)).run()


class _Differ:
    def __init__(self, desired: TablesState, live: TablesState, database: str, prune: set[str]):
        self.desired, self.live, self.db, self.prune = desired, live, database, prune
        self.out = _Emitter(database)
        self.unmanaged: list[str] = []
        self._taken: dict[str, set[str]] = {}  # names used per schema, live and desired (lazy)
        self._live_names: dict[str, set[str]] = {}  # names used per schema, live (lazy)
        self.rebuilt: dict[tuple[str, str], set[str]] = {}  # columns dropped and added again
        self.same: set[tuple[str, str]] = set()  # tables with nothing to change
        self.retyped: set[tuple[str, str, str]] = set()  # (schema, table, column) changing type

    def live_names(self, schema: str) -> set[str]:
        if schema not in self._live_names:  # only needed when something gets a new name
            self._live_names[schema] = self.live.names_in(schema)
        return self._live_names[schema]

    def taken(self, schema: str) -> set[str]:
        if schema not in self._taken:
            self._taken[schema] = self.live_names(schema) | self.desired.names_in(schema)
        return self._taken[schema]

    # addresses
    def a_table(self, s: str, t: str) -> str:
        return f"table.{self.db}.{s}.{t}"

    def a_column(self, s: str, t: str, c: str) -> str:
        return f"column.{self.db}.{s}.{t}.{c}"

    def a_constraint(self, s: str, t: str, n: str) -> str:
        return f"constraint.{self.db}.{s}.{t}.{n}"

    def a_index(self, s: str, n: str) -> str:
        return f"index.{self.db}.{s}.{n}"

    def run(self) -> TableDiff:
        pairs = self._resolve_tables()
        self.same = {want.key for want, have in pairs if have is not None and _same(want, have)}
        broken = self._broken_keys(pairs)
        for want, have in pairs:
            if have is None:
                self._create_table(want)
            elif want.key not in self.same:
                self._update_table(want, have, broken)
        self._foreign_keys(pairs, broken)
        self._prune_tables(broken)
        return TableDiff(self.out.actions(), self.unmanaged)

    # --- tables -------------------------------------------------------------------------------

    def _resolve_tables(self) -> list[tuple[TableState, TableState | None]]:
        """Pair desired tables with live ones, applying declared table and column renames to a
        copy of the live state (also to foreign keys elsewhere that point at what was renamed)."""
        renames: dict[tuple[str, str], str] = {}
        for key, want in self.desired.tables.items():
            was = (want.schema, want.renamed_from) if want.renamed_from else None
            if key not in self.live.tables and was and was in self.live.tables and was not in self.desired.tables:
                renames[was] = want.name
                self.out.add(self.a_table(want.schema, want.name), Op.UPDATE, Phase.TABLE,
                             [ddl.alter_table(*was,
                                              sql.SQL("RENAME TO {}").format(ddl.ident(want.name)))],
                             before={"name": want.renamed_from}, after={"name": want.name}, order=RENAME,
                             note=f"renamed from {want.renamed_from}; data, keys and indexes are kept")
        tables = {}
        for key, table in self.live.tables.items():
            if key in renames:
                table = replace(table, name=renames[key])
            tables[(table.schema, table.name)] = table
        column_renames: dict[tuple[str, str], dict[str, str]] = {}
        for key, want in self.desired.tables.items():
            have = tables.get(key)
            if have is None:
                continue
            names = {c.name for c in have.columns}
            wanted = {c.name for c in want.columns}
            mapping = {c.renamed_from: c.name for c in want.columns
                       if c.renamed_from and c.name not in names and c.renamed_from in names
                       and c.renamed_from not in wanted}
            if mapping:
                column_renames[key] = mapping
                for old, new in mapping.items():
                    self.out.add(self.a_column(want.schema, want.name, new), Op.UPDATE, Phase.TABLE,
                                 [ddl.alter_table(want.schema, want.name, sql.SQL("RENAME COLUMN {} TO {}").format(
                                     ddl.ident(old), ddl.ident(new)))],
                                 before={"name": old}, after={"name": new}, order=RENAME,
                                 note=f"renamed from {old}; the data is kept")
        if renames or column_renames:
            tables = {k: self._renamed(t, renames, column_renames) for k, t in tables.items()}
        self.live = TablesState(tables)
        return [(want, tables.get(key)) for key, want in self.desired.tables.items()]

    @staticmethod
    def _renamed(table: TableState, renames: dict[tuple[str, str], str],
                 column_renames: dict[tuple[str, str], dict[str, str]]) -> TableState:
        own = column_renames.get(table.key, {})

        def col(name: str) -> str:
            return own.get(name, name)

        def text(value: str | None) -> str | None:
            for old, new in own.items():
                value = _rename_in_text(value, old, new)
            return value

        constraints = []
        for c in table.constraints:
            ref_table = renames.get((c.ref_schema or "", c.ref_table), c.ref_table) if c.ref_table else None
            ref_cols = column_renames.get((c.ref_schema or "", ref_table or ""), {})
            constraints.append(replace(c, columns=tuple(map(col, c.columns)), definition=text(c.definition),
                                       ref_table=ref_table,
                                       ref_columns=tuple(ref_cols.get(r, r) for r in c.ref_columns)))
        indexes = [replace(i, keys=tuple(replace(k, column=col(k.column) if k.column else None,
                                                  expression=text(k.expression)) for k in i.keys),
                           include=tuple(map(col, i.include)), predicate=text(i.predicate),
                           columns=frozenset(map(col, i.columns))) for i in table.indexes]
        columns = tuple(replace(c, name=col(c.name)) for c in table.columns)
        return replace(table, columns=columns, constraints=tuple(constraints), indexes=tuple(indexes))

    def _create_table(self, want: TableState) -> None:
        s, t = want.schema, want.name
        # unique constraints go in separate ALTERs: inside CREATE TABLE PostgreSQL silently drops
        # one that repeats the primary key or another, and the declared state would never converge
        inline = [c for c in want.constraints if c.kind in (PRIMARY_KEY, CHECK)]
        statements = [ddl.create_table(s, t, want.columns, inline)]
        statements += [ddl.add_constraint(s, t, c) for c in want.constraints if c.kind == UNIQUE]
        if want.comment is not None:
            statements.append(ddl.comment("TABLE", ddl.ident(s, t), want.comment))
        statements += [ddl.comment("COLUMN", ddl.ident(s, t, c.name), c.comment) for c in want.columns if c.comment]
        if want.owner:
            statements.append(ddl.alter_table(s, t, sql.SQL("OWNER TO {}").format(ddl.ident(want.owner))))
        self.out.add(self.a_table(s, t), Op.CREATE, Phase.TABLE, statements,
                     after={"columns": [c.name for c in want.columns]})
        for index in want.indexes:
            self.out.add(self.a_index(s, index.name), Op.CREATE, Phase.INDEX,
                         [ddl.render(ddl.create_index(s, t, index))])

    def _update_table(self, want: TableState, have: TableState, broken: set[tuple]) -> None:
        s, t = want.schema, want.name
        rebuilt = self.rebuilt[want.key] = self._columns(want, have)
        kept = self._kept(want, have)

        def usable(obj: _Object) -> bool:
            return not (set(obj.columns) & rebuilt)  # else it goes with the column dropped and re-added

        def ours(obj: _Object) -> bool:
            return not (set(obj.columns) & kept)

        retyped = {c for (ss, tt, c) in self.retyped if (ss, tt) == (s, t)}

        def early(obj: _Object) -> bool:
            """Involves a column changing type: a doomed object must go before the change, or
            PostgreSQL rebuilds it for the new type first (and an old expression may not fit)."""
            return bool(set(obj.columns) & retyped)

        # keys and checks (foreign keys come later, once every table is known)
        pairs, missing, extra = _match([c for c in want.constraints if c.kind != FOREIGN_KEY],
                                       [c for c in have.constraints if c.kind != FOREIGN_KEY], usable)
        # Keys that go away go first, before keys are added (a table has one primary key; names
        # free up) and before foreign keys are created (PostgreSQL would tie a new foreign key to
        # whichever matching unique index exists, and then the doomed one could not be dropped).
        for h in extra:
            if ours(h):
                phase = Phase.TABLE if early(h) else Phase.CONSTRAINT if h.kind != CHECK else Phase.DROP_CONSTRAINT
                self._drop_constraint(s, t, h, phase=phase, order=EARLY_DROP)
        for w, h in pairs:
            if w.shape() != h.shape():
                if early(h):
                    self._drop_constraint(s, t, h, phase=Phase.TABLE, order=EARLY_DROP)
                    self._add_constraint(s, t, w, have, Phase.CONSTRAINT)
                else:
                    self._replace_constraint(s, t, w, h, have)
            elif not h.validated:
                self._validate(s, t, h, have)
        for w in missing:
            self._add_constraint(s, t, w, have, Phase.CONSTRAINT)

        pairs_i, missing_i, extra_i = _match(want.indexes, have.indexes, usable)
        for h in extra_i:
            if ours(h):
                phase = Phase.TABLE if early(h) else Phase.CONSTRAINT if _key_like(h) else Phase.DROP_INDEX
                self.out.add(self.a_index(s, h.name), Op.DELETE, phase, [ddl.drop_index(s, h.name)],
                             before=_index_view(h), order=EARLY_DROP)
        for w, h in pairs_i:
            if w.shape() == h.shape():
                continue
            hazards = _hazards(have, Hazard.VALIDATES_DATA) if w.unique else ()
            note = "a unique index fails to build over duplicate values" if w.unique and have.has_rows else None
            if early(h):
                self.out.add(self.a_index(s, h.name), Op.DELETE, Phase.TABLE, [ddl.drop_index(s, h.name)],
                             before=_index_view(h), order=EARLY_DROP)
                missing_i.append(w)
            else:
                self.out.add(self.a_index(s, w.name), Op.REPLACE, Phase.INDEX,
                             [ddl.drop_index(s, h.name), ddl.render(ddl.create_index(s, t, w))],
                             before=_index_view(h), after=_index_view(w), hazards=hazards, note=note)
        for w in missing_i:
            name = self._free_name(s, w.name, have, [i.name for i in have.indexes])
            self.out.add(self.a_index(s, name), Op.CREATE, Phase.INDEX,
                         [ddl.render(ddl.create_index(s, t, w, name=name))], after=_index_view(w),
                         hazards=_hazards(have, Hazard.VALIDATES_DATA) if w.unique else (),
                         note="a unique index fails to build over duplicate values" if w.unique and have.has_rows
                         else None)

        if want.comment != have.comment:
            self.out.add(self.a_table(s, t), Op.UPDATE, Phase.COMMENT,
                         [ddl.comment("TABLE", ddl.ident(s, t), want.comment)],
                         before={"comment": have.comment}, after={"comment": want.comment})
        if want.owner is not None and want.owner != have.owner:
            self.out.add(self.a_table(s, t), Op.UPDATE, Phase.COMMENT,
                         [ddl.alter_table(s, t, sql.SQL("OWNER TO {}").format(ddl.ident(want.owner)))],
                         before={"owner": have.owner}, after={"owner": want.owner})

    def _kept(self, want: TableState, have: TableState) -> set[str]:
        """The unmanaged columns: live ones the file does not mention, left alone with what
        involves them (none when the schema is pruned: they are dropped)."""
        if want.schema in self.prune:
            return set()
        return {c.name for c in have.columns} - {c.name for c in want.columns}

    def _free_name(self, schema: str, name: str, have: TableState, own: list[str]) -> str:
        """The desired name, unless a live object elsewhere already holds it (then the next free
        one, as PostgreSQL would pick; the diff matches it by shape afterwards)."""
        live_names = self.live_names(schema)
        if name not in live_names or name in own:
            return name
        taken = self.taken(schema)
        return _next_free(name, taken | live_names, taken)

    # --- columns --------------------------------------------------------------------------------

    def _columns(self, want: TableState, have: TableState) -> set[str]:
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
        self.retyped.update((s, t, c.name) for c in want.columns if c.name in live
                            and (live[c.name].type, live[c.name].collation) != (c.type, c.collation))
        pk_now = {n for con in have.constraints if con.kind == PRIMARY_KEY for n in con.columns}
        pk_then = {n for con in want.constraints if con.kind == PRIMARY_KEY for n in con.columns}
        for col in want.columns:
            old = live.get(col.name)
            if old is None:
                self._add_column(s, t, col, have)
            elif col.name in rebuilt:
                self.out.add(self.a_column(s, t, col.name), Op.DELETE, Phase.COLUMN,
                             [ddl.alter_table(s, t, sql.SQL("DROP COLUMN {}").format(ddl.ident(col.name)))],
                             before=_column_view(old), order=EARLY_DROP,
                             hazards=_hazards(have, Hazard.DELETES_DATA) if old.generated is None else (),
                             note="dropped to be added again (PostgreSQL cannot change a generated column in "
                                  "place); its indexes and constraints are created again")
                self.out.add(self.a_column(s, t, col.name), Op.CREATE, Phase.COLUMN,
                             [ddl.alter_table(s, t, sql.SQL("ADD COLUMN {}").format(ddl.column_definition(col))),
                              *([ddl.comment("COLUMN", ddl.ident(s, t, col.name), col.comment)]
                                if col.comment else [])],
                             after=_column_view(col), order=LATE,
                             hazards=_hazards(have, Hazard.REWRITES_TABLE, Hazard.LOCKS_TABLE),
                             note="the stored values are computed for every row" if have.has_rows else None)
                continue
            else:
                self._alter_column(s, t, old, col, have, late_null_drop=col.name in pk_now - pk_then)
            if old is not None and old.comment != col.comment:
                self.out.add(self.a_column(s, t, col.name), Op.UPDATE, Phase.COMMENT,
                             [ddl.comment("COLUMN", ddl.ident(s, t, col.name), col.comment)],
                             before={"comment": old.comment}, after={"comment": col.comment})
        wanted = {c.name for c in want.columns}
        for name, old in live.items():
            if name in wanted:
                continue
            if s in self.prune:  # generated columns early: they block type changes and drops of others
                self.out.add(self.a_column(s, t, name), Op.DELETE,
                             Phase.COLUMN if old.generated else Phase.DROP_COLUMN,
                             [ddl.alter_table(s, t, sql.SQL("DROP COLUMN {}").format(ddl.ident(name)))],
                             before={"type": old.type}, hazards=(Hazard.DELETES_DATA,),
                             order=EARLY_DROP if old.generated else NORMAL,
                             note=f"the values of {name} are lost")
            else:
                self.unmanaged.append(self.a_column(s, t, name))
        return rebuilt

    def _add_column(self, s: str, t: str, col: ColumnState, have: TableState) -> None:
        statements = [ddl.alter_table(s, t, sql.SQL("ADD COLUMN {}").format(ddl.column_definition(col)))]
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
        self.out.add(self.a_column(s, t, col.name), Op.CREATE, Phase.COLUMN, statements,
                     after=_column_view(col), hazards=_hazards(have, *hazards),
                     note="; ".join(notes) if notes and have.has_rows else None)

    def _alter_column(self, s: str, t: str, old: ColumnState, new: ColumnState, have: TableState, *,
                      late_null_drop: bool = False) -> None:
        """One UPDATE action with the steps in the order PostgreSQL needs them. `late_null_drop`:
        the column leaves a live primary key, so DROP NOT NULL waits until that key is gone."""
        c = new.name
        steps: list[Statement] = []
        before: dict[str, object] = {}
        after: dict[str, object] = {}
        hazards: set[Hazard] = set()
        notes: list[str] = []

        def change(attr: str) -> bool:
            if getattr(old, attr) != getattr(new, attr):
                before[attr], after[attr] = getattr(old, attr), getattr(new, attr)
                return True
            return False

        def alter(clause: sql.Composable) -> None:
            steps.append(ddl.alter_column(s, t, c, clause))

        change_identity, change_serial = change("identity"), change("serial")
        change_type = change("type") | change("collation")
        change_default = change("default")
        change_null = change("not_null")

        if change_identity and old.identity and not new.identity:
            alter(sql.SQL("DROP IDENTITY"))
        if change_serial and old.serial:
            alter(sql.SQL("DROP DEFAULT"))
            if old.sequence:
                steps.append(ddl.render(sql.SQL("DROP SEQUENCE {}").format(ddl.ident(*old.sequence))))
                # Even with no rows the sequence may have advanced: where numbering stood is lost.
                hazards.add(Hazard.DELETES_DATA)
                notes.append(f"the sequence {'.'.join(old.sequence)} is dropped and its current value is lost")
        elif old.default is not None and (change_default or change_type) and not old.serial:
            alter(sql.SQL("DROP DEFAULT"))  # before a type change: the old default may not cast
        if change_type:
            collate = sql.SQL(" COLLATE {}").format(sql.SQL(new.collation)) if new.collation else sql.SQL("")
            alter(sql.SQL("TYPE {}{} USING {}::{}").format(sql.SQL(new.type), collate, ddl.ident(c),
                                                            sql.SQL(new.type)))
            type_hazards, note = type_change(old.type, new.type)
            if old.type == new.type:  # only the collation: indexes on it are rebuilt
                type_hazards, note = set(), "collation change: indexes on the column are rebuilt"
            hazards |= type_hazards | {Hazard.LOCKS_TABLE}
            notes.append(note)
            if new.serial and old.serial and old.sequence and old.type != new.type:
                steps.append(ddl.render(sql.SQL("ALTER SEQUENCE {} AS {}").format(ddl.ident(*old.sequence),
                                                                                  sql.SQL(new.type))))
        if new.default is not None and (change_default or (change_type and old.default is not None)):
            alter(sql.SQL("SET DEFAULT {}").format(ddl.expression(new.default_source or new.default)))
        if change_serial and new.serial:
            taken = self.taken(s)
            seq = choose_name(t, [c], "seq", taken)
            steps.append(ddl.render(sql.SQL("CREATE SEQUENCE {} AS {} OWNED BY {}").format(
                ddl.ident(s, seq), sql.SQL(new.type), ddl.ident(s, t, c))))
            regclass = sql.Literal(ddl.ident(s, seq).as_string(None))
            alter(sql.SQL("SET DEFAULT nextval({}::regclass)").format(regclass))
            notes.append("the new sequence starts at 1: set it past existing values (setval)")
        if change_null and new.not_null:  # before ADD GENERATED, which needs it
            alter(sql.SQL("SET NOT NULL"))
            hazards |= {Hazard.VALIDATES_DATA, Hazard.LOCKS_TABLE}
            notes.append(f"rows where {c} IS NULL make this fail; the transaction rolls back and "
                         f"{s}.{t} is left as it was (the error says how many rows)")
        if change_identity and new.identity:
            if old.identity:
                alter(sql.SQL("SET GENERATED {}").format(sql.SQL(new.identity.upper())))
            else:
                alter(sql.SQL("ADD GENERATED {} AS IDENTITY").format(sql.SQL(new.identity.upper())))
                notes.append("the identity sequence starts at 1: set it past existing values")
        if change_null and not new.not_null:
            if late_null_drop:
                self.out.add(self.a_column(s, t, c), Op.UPDATE, Phase.DROP_CONSTRAINT,
                             [ddl.alter_column(s, t, c, sql.SQL("DROP NOT NULL"))],
                             before={"not_null": True}, after={"not_null": False}, order=LATE)
                before.pop("not_null", None)
                after.pop("not_null", None)
            else:
                alter(sql.SQL("DROP NOT NULL"))
        if steps:
            self.out.add(self.a_column(s, t, c), Op.UPDATE, Phase.COLUMN, steps, before=before, after=after,
                         hazards=_hazards(have, *sorted(hazards, key=lambda h: h.value)),
                         note="; ".join(n for n in notes if n) or None)

    # --- constraints ----------------------------------------------------------------------------

    def _add_constraint(self, s: str, t: str, con: ConstraintState, have: TableState | None, phase: Phase) -> None:
        name = con.name
        if have is not None and not con.declared_name:
            name = self._free_name(s, con.name, have, [c.name for c in have.constraints])
        con = replace(con, name=name)
        word = KIND_WORDS[con.kind]
        note = {PRIMARY_KEY: "fails if existing rows hold duplicate or NULL values",
                UNIQUE: "fails if existing rows hold duplicate values",
                CHECK: "fails if an existing row violates it",
                FOREIGN_KEY: "fails if an existing row references a key that does not exist"}[con.kind]
        self.out.add(self.a_constraint(s, t, con.name), Op.CREATE, phase, [ddl.add_constraint(s, t, con)],
                     after=_constraint_view(con), hazards=_hazards(have, *_adding_hazards(con)),
                     note=f"{word}: {note}" if have is not None and have.has_rows else None)

    def _drop_constraint(self, s: str, t: str, con: ConstraintState, *, phase: Phase = Phase.DROP_CONSTRAINT,
                         order: int = NORMAL) -> None:
        self.out.add(self.a_constraint(s, t, con.name), Op.DELETE, phase, [ddl.drop_constraint(s, t, con.name)],
                     before=_constraint_view(con), order=order)

    def _replace_constraint(self, s: str, t: str, want: ConstraintState, have_con: ConstraintState,
                            table: TableState, phase: Phase = Phase.CONSTRAINT) -> None:
        self.out.add(self.a_constraint(s, t, want.name), Op.REPLACE, phase,
                     [ddl.drop_constraint(s, t, have_con.name), ddl.add_constraint(s, t, want)],
                     before=_constraint_view(have_con), after=_constraint_view(want),
                     hazards=_hazards(table, *_adding_hazards(want)),
                     note="dropped and added again; adding it checks every existing row" if table.has_rows else None)

    def _validate(self, s: str, t: str, con: ConstraintState, table: TableState) -> None:
        self.out.add(self.a_constraint(s, t, con.name), Op.UPDATE, Phase.CONSTRAINT,
                     [ddl.alter_table(s, t, sql.SQL("VALIDATE CONSTRAINT {}").format(ddl.ident(con.name)))],
                     before={"validated": False}, after={"validated": True},
                     hazards=_hazards(table, Hazard.VALIDATES_DATA), note="fails if an existing row violates it")

    def _broken_keys(self, pairs: list[tuple[TableState, TableState | None]]) -> set[tuple]:
        """Live primary keys and unique constraints that will be replaced or dropped: the foreign
        keys that reference them must be dropped before (and recreated after, if wanted)."""
        broken: set[tuple] = set()
        for want, have in pairs:
            if have is None or want.key in self.same:
                continue
            wanted = [c for c in want.constraints if c.kind in (PRIMARY_KEY, UNIQUE)]
            live = [c for c in have.constraints if c.kind in (PRIMARY_KEY, UNIQUE)]
            matched, _, extra = _match(wanted, live)
            for h in extra + [h for w, h in matched if w.shape() != h.shape()]:
                broken.add((have.schema, have.name, h.columns))
            matched_i, _, extra_i = _match(want.indexes, have.indexes)
            for i in extra_i + [h for w, h in matched_i if w.shape() != h.shape()]:
                if _key_like(i):
                    broken.add((have.schema, have.name, tuple(k.column for k in i.keys)))
        # columns rebuilt or retyped do not break keys (PostgreSQL rebuilds dependent constraints)
        return broken

    def _foreign_keys(self, pairs: list[tuple[TableState, TableState | None]], broken: set[tuple]) -> None:
        for want, have in pairs:
            s, t = want.schema, want.name
            wanted = [c for c in want.constraints if c.kind == FOREIGN_KEY]
            if have is None:
                for con in wanted:
                    self._add_constraint(s, t, con, None, Phase.FOREIGN_KEY)
                continue
            if want.key in self.same and not broken and not self.retyped:
                continue
            rebuilt = self.rebuilt.get(want.key, set())
            kept = self._kept(want, have)
            live = [c for c in have.constraints if c.kind == FOREIGN_KEY and not (set(c.columns) & rebuilt)]
            pairs_f, missing, extra = _match(wanted, live)
            for w, h in pairs_f:
                slot = self._fk_drop_slot(s, t, h, broken)
                if slot["phase"] != Phase.DROP_CONSTRAINT:  # it must go early: dropped, added back later
                    self._drop_constraint(s, t, h, **slot)
                    self._add_constraint(s, t, w, have, Phase.FOREIGN_KEY)
                elif w.shape() != h.shape():
                    self._replace_constraint(s, t, w, h, have, Phase.FOREIGN_KEY)
                elif not h.validated:
                    self._validate(s, t, h, have)
            for w in missing:
                self._add_constraint(s, t, w, have, Phase.FOREIGN_KEY)
            for h in extra:
                if set(h.columns) & kept:
                    continue
                self._drop_constraint(s, t, h, **self._fk_drop_slot(s, t, h, broken))

    def _fk_drop_slot(self, s: str, t: str, fk: ConstraintState, broken: set[tuple]) -> dict:
        """When a foreign key that goes away, or is dropped to be added again, must be dropped:
        before any column type change at either end (both ends change type without the key
        checking them), before the key it references is replaced, else with the other drops
        (first)."""
        if any((s, t, c) in self.retyped for c in fk.columns) or any(
                (fk.ref_schema, fk.ref_table, c) in self.retyped for c in fk.ref_columns):
            return {"phase": Phase.TABLE, "order": FK_DROP}
        if (fk.ref_schema, fk.ref_table, fk.ref_columns) in broken:
            return {"phase": Phase.CONSTRAINT, "order": FK_DROP}
        return {"phase": Phase.DROP_CONSTRAINT, "order": FK_DROP}

    # --- tables not in the file -----------------------------------------------------------------

    def _prune_tables(self, broken: set[tuple]) -> None:
        doomed = [t for key, t in sorted(self.live.tables.items()) if key not in self.desired.tables]
        dropping = {t.key for t in doomed if t.schema in self.prune}
        for table in doomed:
            if table.key not in dropping:
                self.unmanaged.append(self.a_table(table.schema, table.name))
                continue
            # their foreign keys go first: that breaks cycles between dropped tables and frees
            # keys of kept tables that change or go away
            for con in table.constraints:
                if con.kind == FOREIGN_KEY:
                    self._drop_constraint(table.schema, table.name, con,
                                          **self._fk_drop_slot(table.schema, table.name, con, broken))
        for table in doomed:
            if table.key in dropping:
                self.out.add(self.a_table(table.schema, table.name), Op.DELETE, Phase.DROP_TABLE,
                             [ddl.render(sql.SQL("DROP TABLE {}").format(ddl.ident(table.schema, table.name)))],
                             before={"columns": [c.name for c in table.columns]}, hazards=(Hazard.DELETES_DATA,),
                             note=f"{table.schema}.{table.name} and all its rows are deleted"
                             if table.has_rows else f"{table.schema}.{table.name} is dropped")


def _same(want: TableState, have: TableState) -> bool:
    """Nothing to do on this table (its foreign keys are still looked at, for what changes
    elsewhere): the fast path of a no-op plan. Column order aside, exactly what the slow path
    would find equal."""
    return (want.columns == have.columns and want.comment == have.comment
            and (want.owner is None or want.owner == have.owner)
            and _same_set(want.constraints, have.constraints) and _same_set(want.indexes, have.indexes))


def _same_set(a: tuple, b: tuple) -> bool:
    """Equal whatever the order (desired objects are sorted by name, live ones by creation)."""
    if len(a) != len(b):
        return False
    return a == b or sorted(a, key=lambda o: o.name) == sorted(b, key=lambda o: o.name)


def _adding_hazards(con: ConstraintState) -> tuple[Hazard, ...]:
    """What adding `con` risks (before `_hazards` keeps only what counts on the table)."""
    if con.kind == FOREIGN_KEY:
        return (Hazard.VALIDATES_DATA,)
    return (Hazard.VALIDATES_DATA, Hazard.LOCKS_TABLE)


def _key_like(index: IndexState) -> bool:
    """A unique index a foreign key can reference: plain columns, no predicate."""
    return index.unique and index.predicate is None and all(k.expression is None for k in index.keys)


def _next_free(name: str, used: set[str], taken: set[str]) -> str:
    suffix = 1
    while f"{name}{suffix}" in used:
        suffix += 1
    taken.add(f"{name}{suffix}")
    return f"{name}{suffix}"


# --- what the plan shows --------------------------------------------------------------------------


def _column_view(c: ColumnState) -> dict[str, object]:
    view: dict[str, object] = {"type": c.type, "not_null": c.not_null}
    for attr in ("default", "identity", "generated", "collation", "comment"):
        if getattr(c, attr) is not None:
            view[attr] = getattr(c, attr)
    if c.serial:
        view["serial"] = True
    return view


def _constraint_view(c: ConstraintState) -> dict[str, object]:
    view: dict[str, object] = {"kind": KIND_WORDS[c.kind], "columns": list(c.columns)}
    if c.kind == CHECK:
        view["definition"] = c.definition
    if c.kind == FOREIGN_KEY:
        view.update(references=f"{c.ref_schema}.{c.ref_table}({', '.join(c.ref_columns)})",
                    on_update=c.on_update, on_delete=c.on_delete, deferrable=c.deferrable,
                    initially_deferred=c.initially_deferred)
    return view


def _index_view(i: IndexState) -> dict[str, object]:
    view: dict[str, object] = {"unique": i.unique, "method": i.method,
                               "keys": [ddl.index_key(k).as_string(None) for k in i.keys]}
    if i.include:
        view["include"] = list(i.include)
    if i.predicate:
        view["where"] = i.predicate
    return view
