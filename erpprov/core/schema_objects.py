"""The schema objects beside tables (types, sequences, views, functions, triggers, ...) as the live
database holds them: what a plan lists as unmanaged and an export writes or reports as left out.

Every such object is read, whatever erpprov can manage of it, so that a plan saying "No changes"
never hides one (docs/design.md, decision 6).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from erpprov.core.address import Address
from erpprov.core.model import native_language
from erpprov.core.tables import IndexState

# Kinds addressed in a database without a schema (event triggers, casts, publications...).
UNSCHEMED = frozenset({"event_trigger", "cast", "publication", "foreign_server", "foreign_data_wrapper"})
# Kinds addressed under their table (a trigger's name is unique per table only).
ON_TABLE = frozenset({"trigger", "rule", "materialized_view_index"})


@dataclass(frozen=True)
class LiveObject:
    """One live object. ``name`` is a function's or procedure's identity (`f(integer, text)`)."""

    kind: str  # type, sequence, view, materialized_view, function, procedure, trigger, aggregate, rule...
    schema: str | None
    name: str
    table: str | None = None  # of a trigger or rule
    variety: str | None = None  # of a type: enum, composite, domain, range

    def address(self, database: str) -> Address:
        if self.kind in UNSCHEMED:
            return Address(self.kind, database, self.name)
        if self.kind in ON_TABLE:
            return Address(self.kind, database, self.schema or "", self.table or "", self.name)
        return Address(self.kind, database, self.schema or "", self.name)

    def describe(self) -> str:
        """How a person names it: `enum type public.status`, `trigger touch on public.orders`."""
        what = f"{self.variety} type" if self.kind == "type" and self.variety else self.kind.replace("_", " ")
        if self.kind in ON_TABLE:
            return f"{what} {self.name} on {self.schema}.{self.table}"
        return f"{what} {self.schema}.{self.name}" if self.schema else f"{what} {self.name}"


@dataclass(frozen=True)
class EnumState:
    schema: str
    name: str
    values: tuple[str, ...]  # in sort order
    owner: str | None = None  # None on the desired side: not managed
    comment: str | None = None
    renamed_from: str | None = None


@dataclass(frozen=True)
class CompositeState:
    schema: str
    name: str
    attributes: tuple[tuple[str, str, str | None], ...]  # (name, format_type, collation unless the type's)
    owner: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class DomainState:
    schema: str
    name: str
    base: str  # format_type
    default: str | None
    not_null: bool
    checks: tuple[tuple[str, str], ...]  # (name, pg_get_constraintdef), by name
    collation: str | None  # unless the base type's
    owner: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class SequenceState:
    schema: str
    name: str
    type: str  # smallint, integer or bigint
    start: int
    increment: int
    min_value: int
    max_value: int
    cache: int
    cycle: bool
    owned_by: tuple[str, str, str] | None = None  # (schema, table, column)
    owner: str | None = None
    comment: str | None = None
    renamed_from: str | None = None


@dataclass(frozen=True)
class ViewState:
    """A view or materialized view, its query as pg_get_viewdef prints it."""

    schema: str
    name: str
    materialized: bool
    definition: str
    columns: tuple[tuple[str, str], ...]  # (name, format_type) in order
    security_barrier: bool = False
    security_invoker: bool = False
    check_option: str | None = None
    populated: bool = True
    owner: str | None = None
    comment: str | None = None
    indexes: tuple[str, ...] = ()  # a materialized view's, as pg_get_indexdef prints them (to restore)
    # a materialized view's, as the table catalog reads a table's: read (and built on the desired
    # side) only where the files declare `indexes:`
    index_states: tuple[IndexState, ...] = ()

    @property
    def kind(self) -> str:
        return "materialized_view" if self.materialized else "view"


@dataclass(frozen=True)
class FunctionState:
    """A function or procedure as the pg_get_function_* functions print it."""

    schema: str
    name: str
    procedure: bool
    identity: str  # pg_get_function_identity_arguments: what names it among its overloads
    arguments: str  # pg_get_function_arguments: names, modes, defaults
    result: str | None  # pg_get_function_result; None for a procedure
    language: str
    body: str
    attributes: tuple[tuple[str, object], ...]  # volatility, strict, security definer, parallel, cost...
    owner: str | None = None
    comment: str | None = None
    # its argument types alone (oidvectortypes): what PostgreSQL tells it from its overloads by,
    # argument names aside
    types: str = field(default="", compare=False)

    @property
    def kind(self) -> str:
        return "procedure" if self.procedure else "function"

    @property
    def signature(self) -> str:
        """Its name as plans, grants and unmanaged lists write it: `f(a integer)`."""
        return f"{self.name}({self.identity})"

    def unwritable(self) -> str | None:
        """Why no playbook can declare it, or None: a function in C or internal (its CREATE loads native
        code) or a body that is not text (BEGIN ATOMIC ... END: the server keeps it parsed, and
        prosrc is empty)."""
        if native_language(self.language):
            return f"in language {self.language} (a playbook cannot declare it: an extension that provides it can)"
        if not self.body.strip():
            return "with a SQL-standard body (BEGIN ATOMIC), which a playbook cannot hold"
        return None


@dataclass(frozen=True)
class TriggerState:
    schema: str
    table: str
    name: str
    timing: str  # before, after, instead of
    events: tuple[str, ...]  # in insert, update, delete, truncate order
    update_of: tuple[str, ...]
    for_each: str
    when: str | None  # as pg_get_triggerdef prints the condition
    function: tuple[str, str]  # (schema, name)
    arguments: tuple[str, ...]
    constraint: bool
    deferrable: bool
    initially_deferred: bool
    enabled: bool
    comment: str | None = None
    renamed_from: str | None = None  # desired only

    def definition(self) -> tuple[object, ...]:
        """What CREATE TRIGGER states: a change in it means creating the trigger again."""
        return (self.timing, self.events, self.update_of, self.for_each, self.when, self.function, self.arguments,
                self.constraint, self.deferrable, self.initially_deferred)


@dataclass(frozen=True)
class PruneUser:
    """Something that depends on an object a prune would drop: ``what`` as PostgreSQL describes it,
    held by ``holder`` (table, view, materialized_view, function, procedure, type, relation) named
    (``holder_schema``, ``holder_name``; a function by its signature), or None when unknown;
    ``part``: the address parts (kind, then names) of the part of a table it is, when it is a
    trigger, constraint, index or column (its default or type)."""

    used: LiveObject
    what: str
    holder: str | None
    holder_schema: str | None
    holder_name: str | None
    part: tuple[str, ...] | None = None


@dataclass
class SchemaObjects:
    """The live schema objects of one database (extension members excluded: they are the extension's),
    and the details of those erpprov manages, by (schema, name)."""

    objects: list[LiveObject] = field(default_factory=list)
    enums: dict[tuple[str, str], EnumState] = field(default_factory=dict)
    composites: dict[tuple[str, str], CompositeState] = field(default_factory=dict)
    domains: dict[tuple[str, str], DomainState] = field(default_factory=dict)
    sequences: dict[tuple[str, str], SequenceState] = field(default_factory=dict)
    views: dict[tuple[str, str], ViewState] = field(default_factory=dict)  # and materialized views
    view_uses: dict[tuple[str, str], set[tuple[str, str]]] = field(default_factory=dict)  # view -> relations it reads
    functions: dict[tuple[str, str], FunctionState] = field(default_factory=dict)  # (schema, signature): and procedures
    view_calls: dict[tuple[str, str], set[tuple[str, str]]] = field(default_factory=dict)  # view -> functions
    view_columns: dict[tuple[str, str], set[tuple[str, str, str]]] = field(default_factory=dict)  # -> table columns
    triggers: dict[tuple[str, str, str], TriggerState] = field(default_factory=dict)  # (schema, table, name)
    # (schema, signature) -> (kind, schema, table, name): the triggers, defaults, checks, policies and
    # indexes that call the function (kind: trigger, default, constraint, policy, index)
    function_users: dict[tuple[str, str], set[tuple[str, str, str, str]]] = field(default_factory=dict)
    # (schema, signature) -> (what, schema, name): what a function or procedure cannot be created
    # without (pg_depend): the routines its defaults or BEGIN ATOMIC body call ("function"), the
    # relations that body reads ("relation"), the types it takes, returns or uses ("type")
    function_needs: dict[tuple[str, str], set[tuple[str, str, str]]] = field(default_factory=dict)
    # (schema, type) -> (kind, schema, name, column): the table columns ("column", table, column) and
    # the composite types and domains ("type", name, "") that use the type
    type_users: dict[tuple[str, str], set[tuple[str, str, str, str]]] = field(default_factory=dict)
    # range type -> the multirange type made with it, which has grants of its own
    multiranges: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)


def plural(kind: str) -> str:
    """`materialized_view` → `materialized views`, for the counts a plan prints."""
    words = kind.replace("_", " ")
    return words + ("es" if words.endswith("s") else "s")
