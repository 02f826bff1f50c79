"""The one vocabulary that both sides of the table diff are read into.

`inspect_tables` fills it from the live catalog; `canonicalize` fills it from the desired model, with
every type, default and expression in the text PostgreSQL itself prints for it (read back from a
rolled-back scratch build with the same catalog queries). So `==` on these objects is the question
"would PostgreSQL store the same thing?".

Fields marked `compare=False` are bookkeeping that must not make two equal states differ: the live
side's row signal and sequence names, the desired side's spelling used to create objects, and
whether a name was declared or predicted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from erpprov.core.address import Address

# pg_constraint.contype values we manage
PRIMARY_KEY, UNIQUE, CHECK, FOREIGN_KEY, EXCLUSION = "p", "u", "c", "f", "x"
KIND_WORDS = {PRIMARY_KEY: "primary key", UNIQUE: "unique", CHECK: "check", FOREIGN_KEY: "foreign key",
              EXCLUSION: "exclusion"}


IDENTITY_OPTIONS = ("start", "increment", "minvalue", "maxvalue", "cache", "cycle")  # ColumnState.identity_options


# The states a plan builds per table, on each side (at 10,000 tables 90,000 columns, 20,000
# constraints, 20,000 indexes and their 30,000 keys), are not frozen: a frozen dataclass sets each
# field through object.__setattr__, three times slower to construct. Nothing assigns to a state
# after it is read (`replace` makes changed copies), so they stay hashable like frozen ones.
@dataclass(slots=True, unsafe_hash=True)
class ColumnState:
    name: str
    type: str  # format_type(atttypid, atttypmod)
    not_null: bool
    default: str | None = None  # pg_get_expr(adbin); None for serial columns (see `serial`)
    identity: str | None = None  # "always" | "by default"
    # its sequence's (start, increment, minvalue, maxvalue, cache, cycle), read from pg_sequence
    identity_options: tuple[int, int, int, int, int, bool] | None = None
    generated: str | None = None  # expression of a STORED generated column
    collation: str | None = None  # only when it differs from the type's default collation
    storage: str | None = None  # "plain" | "external" | "extended" | "main"
    compression: str | None = None  # "pglz" | "lz4"; None: the server's default
    statistics: int | None = None  # None: the server's default (-1)
    comment: str | None = None
    serial: bool = False  # default is nextval() of a sequence this very column owns
    # --- not compared -------------------------------------------------------------------------
    # live: the sequence it owns; desired: the one PostgreSQL will create for a new serial/identity column
    sequence: tuple[str, str] | None = field(default=None, compare=False)
    spelling: str | None = field(default=None, compare=False)  # desired: the type as written
    # desired: the default and generation expression as written. DDL uses these, not the canonical
    # text: PostgreSQL's printed form does not always re-parse to itself (IN lists come back as
    # ARRAY[...] casts that print differently the second time), which would never converge.
    default_source: str | None = field(default=None, compare=False)
    generated_source: str | None = field(default=None, compare=False)
    rewrites_on_add: bool = field(default=False, compare=False)  # desired: ADD COLUMN rewrites the table
    renamed_from: str | None = field(default=None, compare=False)
    type_storage: str | None = field(default=None, compare=False)  # the type's own: what `storage` is by default


@dataclass(slots=True, unsafe_hash=True)
class ConstraintState:
    name: str
    kind: str  # PRIMARY_KEY, UNIQUE, CHECK, FOREIGN_KEY or EXCLUSION
    columns: tuple[str, ...] = ()  # conkey, in key order (for checks: the columns it mentions)
    definition: str | None = None  # checks and exclusions: pg_get_constraintdef (without NOT VALID)
    ref_schema: str | None = None
    ref_table: str | None = None
    ref_columns: tuple[str, ...] = ()
    on_update: str = "no action"
    on_delete: str = "no action"
    delete_columns: tuple[str, ...] = ()  # ON DELETE SET NULL/DEFAULT (columns); (): all of them
    deferrable: bool = False
    initially_deferred: bool = False
    # live: convalidated; desired: False when declared not_valid (then a live valid one is as good)
    validated: bool = True
    match: str = "simple"  # foreign keys: "simple" | "full"
    nulls_not_distinct: bool = False  # unique constraints, PostgreSQL 15+
    include: tuple[str, ...] = ()  # primary keys and unique constraints: INCLUDE columns of their index
    parameters: tuple[str, ...] = ()  # ... and its reloptions, sorted; set in place
    comment: str | None = None
    # --- not compared -------------------------------------------------------------------------
    declared_name: bool = field(default=True, compare=False)  # False: the name is PostgreSQL's choice
    # desired checks and exclusions: "CHECK (<as written>)", "EXCLUDE USING ... (<as written>)"
    source: str | None = field(default=None, compare=False)

    def shape(self) -> tuple[object, ...]:
        """Everything but the name, the comment and whether it was validated: how an unnamed
        desired constraint finds its live twin, and what a replace changes. Check columns are
        left out: the definition says it all, and the scratch side mentions columns the same way."""
        columns = () if self.kind == CHECK else self.columns
        return (self.kind, columns, self.definition, self.ref_schema, self.ref_table, self.ref_columns,
                self.on_update, self.on_delete, self.delete_columns, self.deferrable, self.initially_deferred,
                self.match, self.nulls_not_distinct, self.include)


@dataclass(slots=True, unsafe_hash=True)
class IndexKey:
    column: str | None  # a plain column, or
    expression: str | None  # pg_get_indexdef(index, k, true) of an expression
    descending: bool = False
    nulls_first: bool = False
    opclass: str | None = None  # only when not the default operator class; SQL text (quoted as needed)
    collation: str | None = None  # only when not the column's (or the expression type's) own; SQL text


@dataclass(slots=True, unsafe_hash=True)
class IndexState:
    name: str
    unique: bool
    method: str
    keys: tuple[IndexKey, ...]
    include: tuple[str, ...] = ()
    predicate: str | None = None  # pg_get_expr(indpred)
    nulls_not_distinct: bool = False  # PostgreSQL 15+
    parameters: tuple[str, ...] = ()  # pg_class.reloptions ("fillfactor=70"), sorted; set in place
    comment: str | None = None
    # --- not compared -------------------------------------------------------------------------
    declared_name: bool = field(default=True, compare=False)
    columns: frozenset[str] = field(default=frozenset(), compare=False)  # live: columns it depends on
    source: str | None = field(default=None, compare=False)  # desired, built: "USING ... (as written)"

    def shape(self) -> tuple[object, ...]:
        """What cannot change without building the index again."""
        return (self.unique, self.method, self.keys, self.include, self.predicate, self.nulls_not_distinct)


@dataclass(frozen=True)
class PolicyState:
    name: str
    command: str  # "all" | "select" | "insert" | "update" | "delete"
    roles: tuple[str, ...]  # sorted; "PUBLIC" for the public pseudo-role
    using: str | None = None  # pg_get_expr(polqual)
    with_check: str | None = None  # pg_get_expr(polwithcheck)
    permissive: bool = True
    comment: str | None = None
    # --- not compared -------------------------------------------------------------------------
    # desired: the expressions as written, which DDL uses (see ColumnState.default_source)
    using_source: str | None = field(default=None, compare=False)
    with_check_source: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PartitionState:
    schema: str
    name: str
    bound: str  # pg_get_expr(relpartbound): "FOR VALUES FROM (...) TO (...)", "DEFAULT", ...
    parameters: tuple[str, ...] = ()  # its own reloptions, sorted; set in place
    comment: str | None = None
    indexes: tuple[IndexState, ...] = ()  # its own, beyond those cascaded from the parent; sorted by name
    # --- not compared -------------------------------------------------------------------------
    source: str | None = field(default=None, compare=False)  # desired: the bound as written
    has_rows: bool = field(default=True, compare=False)
    parts: tuple[str, ...] = field(default=(), compare=False)  # live: its indexes cascaded from the parent's


@dataclass(slots=True, unsafe_hash=True)
class TableState:
    schema: str
    name: str
    columns: tuple[ColumnState, ...]
    constraints: tuple[ConstraintState, ...] = ()
    indexes: tuple[IndexState, ...] = ()
    comment: str | None = None
    owner: str | None = None  # desired: None means "whoever it is"
    unlogged: bool = False
    parameters: tuple[str, ...] = ()  # reloptions, with the TOAST table's as "toast.name=value"; sorted
    row_security: tuple[bool, bool] = (False, False)  # (enabled, forced)
    policies: tuple[PolicyState, ...] = ()  # sorted by name
    partition_by: str | None = None  # pg_get_partkeydef: "RANGE (created_at)"
    partitions: tuple[PartitionState, ...] = ()  # sorted by (schema, name)
    # --- not compared -------------------------------------------------------------------------
    # live: may hold rows (it has data pages); assumed until `with_row_signal` reads it
    has_rows: bool = field(default=True, compare=False)
    renamed_from: str | None = field(default=None, compare=False)
    partition_by_source: str | None = field(default=None, compare=False)  # desired: as written
    # live: what the catalog holds about the table beyond what erpprov manages (see UNMANAGED_PROPERTIES)
    unmanaged: tuple[str, ...] = field(default=(), compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema, self.name)

    def column(self, name: str) -> ColumnState | None:
        return next((c for c in self.columns if c.name == name), None)


# Table properties erpprov reads but does not manage: a live table that has one is listed in the
# plan (`property.<db>.<schema>.<table>.<name>`), so that nothing about it goes unseen.
UNMANAGED_PROPERTIES = {
    "tablespace": "the table is in a tablespace other than the database's",
    "replica_identity": "REPLICA IDENTITY other than the primary key",
    "of_type": "a typed table (OF type)",
    "access_method": "a table access method other than heap",
    "inherits": "inherits from another table (INHERITS)",
    "rules": "rules on the table",
    "column_options": "column options (ALTER COLUMN SET (n_distinct ...))",
    "column_privileges": "privileges granted on single columns",
    "cluster_on": "an index marked CLUSTER ON",
    "invalid_index": "an index left invalid (a failed CREATE INDEX CONCURRENTLY)",
    "index_tablespace": "an index in another tablespace",
    "partition_objects": "a partition with constraints, an owner or partitions of its own",
}


@dataclass(frozen=True)
class TablesState:
    """All tables of one database, keyed by (schema, name)."""

    tables: dict[tuple[str, str], TableState] = field(default_factory=dict)

    def names_in(self, schema: str) -> set[str]:
        """Relation and constraint names already used in a schema (for choosing new names)."""
        taken: set[str] = set()
        for (nsp, _), table in self.tables.items():
            if nsp != schema:
                continue
            taken.add(table.name)
            taken.update(c.name for c in table.constraints)
            taken.update(i.name for i in table.indexes)
            taken.update(col.sequence[1] for col in table.columns if col.sequence and col.sequence[0] == schema)
            taken.update(p.name for p in table.partitions if p.schema == schema)
            taken.update(i.name for p in table.partitions if p.schema == schema for i in p.indexes)
        return taken



@dataclass
class TableDiff:
    actions: list  # list[erpprov.core.actions.Action], in dependency order within each phase
    unmanaged: list[Address]  # of live tables/columns the file does not mention
