"""The typed vocabulary of desired state: what a play may declare.

One model, validated by pydantic, that is also the source of the playbook JSON Schema. The keys are
short PostgreSQL/Ansible words; each has exactly one spelling. The reconciler compares these
objects with the live state read into the same shapes (see `erpprov.core.cluster`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    SecretStr,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from erpprov.core import domain_calls, fragments

MAX_NAME_BYTES = 63  # PostgreSQL silently truncates longer names; then a diff could never converge


def _identifier(value: str) -> str:
    # Most names: ASCII, so their length in UTF-8 is their length (a playbook of a thousand tables
    # validates tens of thousands of names).
    if 0 < len(value) <= MAX_NAME_BYTES and value.isascii() and "\x00" not in value:
        return value
    if not value:
        raise ValueError("a name cannot be empty")
    if "\x00" in value:
        raise ValueError("a name cannot contain a NUL character")
    size = len(value.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        shown = repr(value) if len(value) <= 70 else repr(value[:60]) + "..."
        raise ValueError(f"{shown} is {size} bytes long; PostgreSQL names hold at most {MAX_NAME_BYTES} bytes")
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]
# SQL that cannot be a parameter: proven to be one type name / one expression when loaded
TypeName = Annotated[str, AfterValidator(fragments.type_name)]
Expression = Annotated[str, AfterValidator(fragments.expression)]
FunctionSignature = Annotated[str, AfterValidator(fragments.function_signature)]
Query = Annotated[str, AfterValidator(fragments.query)]


def _role_name(value: str) -> str:
    # PostgreSQL keeps pg_* for its predefined roles: CREATE ROLE would fail mid-apply. Membership
    # in them (member_of: [pg_read_all_data]) stays a plain Identifier.
    if value.startswith("pg_"):
        raise ValueError(f"{value!r}: names starting with pg_ are reserved for PostgreSQL's own roles")
    return value


RoleName = Annotated[Identifier, AfterValidator(_role_name)]


def _stringify(value: Any) -> Any:
    """A name -> string map from YAML: true becomes 'true' (as PostgreSQL spells it), 5432 '5432'."""
    if isinstance(value, dict):
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
    return value


StringMap = Annotated[dict[str, str], BeforeValidator(_stringify)]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def _duration(value: Any) -> Any:
    """`2s`, `500ms`, `1m`, `1h` or a plain number of seconds."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration; write e.g. 2s, 500ms, 1m")
        number, unit = float(match.group(1)), match.group(2) or "s"
        return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return value


Duration = Annotated[
    float,
    BeforeValidator(_duration),
    Field(ge=0),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": r"^\s*\d"}]}),
]


class Strict(BaseModel):
    # defer_build: a model's validator is built when first used, so only Play's and Connection's
    # are (they include the nested ones), not one for each of the twenty classes at import.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, defer_build=True)


class Refused(ValueError):
    """A value the loader refuses, with what to do instead (printed as the error's hint); ``path``
    leads from the model that refuses it to the key at fault, so the error points at its line."""

    def __init__(self, message: str, hint: str, path: tuple[Any, ...] = ()):
        super().__init__(message)
        self.hint = hint
        self.path = path


class DuplicateName(ValueError):
    """Carries where the second occurrence is, so the error can point at its line."""

    def __init__(self, message: str, path: tuple[Any, ...]):
        super().__init__(message)
        self.path = path


def unique_names(items: list[Any], what: str, key: str = "name", field: str | None = None) -> list[Any]:
    seen: set[Any] = set()
    for index, item in enumerate(items):
        name = getattr(item, key)
        if name in seen:
            path = ((field,) if field else ()) + (index, key)
            raise DuplicateName(f"two {what} are named {name!r}; each name may appear once", path)
        seen.add(name)
    return items


# --- privileges -----------------------------------------------------------------------------

PRIVILEGES: dict[str, tuple[str, ...]] = {
    "database": ("CREATE", "TEMPORARY", "CONNECT"),
    "schema": ("USAGE", "CREATE"),
    "table": ("INSERT", "SELECT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"),
    "sequence": ("USAGE", "SELECT", "UPDATE"),
    "function": ("EXECUTE",),
    "type": ("USAGE",),
}
_SYNONYMS = {"TEMP": "TEMPORARY", "ALL PRIVILEGES": "ALL"}


def check_privileges(privileges: list[str], kind: str) -> list[str]:
    """Upper-case, resolve PostgreSQL's own synonyms, and reject what the object type lacks."""
    allowed = PRIVILEGES[kind]
    result: list[str] = []
    for raw in privileges:
        name = _SYNONYMS.get(raw.strip().upper(), raw.strip().upper())
        if name != "ALL" and name not in allowed:
            raise ValueError(f"{raw!r} is not a privilege on a {kind}; choose from ALL, {', '.join(allowed)}")
        if name not in result:
            result.append(name)
    return result


class Grant(Strict):
    """Privileges of one role (or PUBLIC) on the object that holds this entry.

    The list is exact for that grantee: privileges it holds beyond it are revoked, and an empty
    list revokes everything (the way to take CONNECT away from PUBLIC).
    """

    to: Identifier = Field(description="Role name, or PUBLIC")
    privileges: list[str] = Field(description="Privilege names, or ALL")
    with_grant_option: bool = False


class SchemaGrant(Grant):
    """On the schema itself, or with `tables`/`sequences`/`functions` on objects inside it."""

    tables: Literal["ALL"] | list[Identifier] | None = Field(None, description="ALL, or table names")
    sequences: Literal["ALL"] | list[Identifier] | None = Field(None, description="ALL, or sequence names")
    functions: Literal["ALL"] | list[FunctionSignature] | None = Field(
        None, description="ALL, or signatures of functions in this schema, such as 'add(integer, integer)'"
    )

    @property
    def object_kind(self) -> str:
        for kind in ("tables", "sequences", "functions"):
            if getattr(self, kind) is not None:
                return kind[:-1]
        return "schema"

    @model_validator(mode="after")
    def _one_target(self) -> SchemaGrant:
        chosen = [k for k in ("tables", "sequences", "functions") if getattr(self, k) is not None]
        if len(chosen) > 1:
            raise ValueError(f"a grant targets one kind of object; split {' and '.join(chosen)} into two grants")
        object.__setattr__(self, "privileges", check_privileges(self.privileges, self.object_kind))
        return self


class DefaultPrivilege(Strict):
    """ALTER DEFAULT PRIVILEGES: what objects created later by `for_role` grant automatically."""

    on: Literal["tables", "sequences", "functions", "types", "schemas"]
    to: Identifier = Field(description="Role name, or PUBLIC")
    privileges: list[str]
    for_role: Identifier | None = Field(None, description="Creator of the future objects; default: the admin user")
    with_grant_option: bool = False

    @model_validator(mode="after")
    def _valid(self) -> DefaultPrivilege:
        kind = {"tables": "table", "sequences": "sequence", "functions": "function", "types": "type"}.get(
            self.on, "schema"
        )
        object.__setattr__(self, "privileges", check_privileges(self.privileges, kind))
        return self


def _grants_of(kind: str) -> Callable[[list[Grant]], list[Grant]]:
    def check(grants: list[Grant]) -> list[Grant]:
        fixed = [g if (canonical := check_privileges(g.privileges, kind)) == g.privileges
                 else g.model_copy(update={"privileges": canonical}) for g in grants]
        return unique_names(fixed, f"grants to the same role on one {kind}", key="to")

    return check


# --- roles ----------------------------------------------------------------------------------


class Membership(Strict):
    role: Identifier
    admin: bool = False
    inherit: bool | None = Field(None, description="PostgreSQL 16+: inherit the role's privileges")
    set: bool | None = Field(None, description="PostgreSQL 16+: allow SET ROLE to it")


def _membership(value: Any) -> Any:
    return {"role": value} if isinstance(value, str) else value


class Role(Strict):
    name: RoleName
    state: Literal["present", "absent"] = "present"
    login: bool = False
    superuser: bool = False
    createdb: bool = False
    createrole: bool = False
    inherit: bool = True
    replication: bool = False
    bypassrls: bool = False
    connection_limit: int = Field(-1, ge=-1)
    valid_until: str | None = Field(None, description="Timestamp, or 'infinity'")
    password: SecretStr | None = None
    update_password: Literal["always", "on_create"] | None = Field(
        None,
        description="always: keep it equal to the file; on_create: set it only when creating the role. "
        "Default: always where stored passwords can be compared, on_create where they cannot",
    )
    settings: StringMap = Field(default_factory=dict, description="ALTER ROLE ... SET name = value")
    comment: str | None = None
    member_of: list[Annotated[Membership, BeforeValidator(_membership)]] = Field(default_factory=list)
    prune: bool = Field(False, description="Revoke memberships and privileges of this role not in the file")

    @field_validator("member_of")
    @classmethod
    def _unique_members(cls, value: list[Membership]) -> list[Membership]:
        return unique_names(value, "memberships", key="role")


# --- tables ---------------------------------------------------------------------------------


class IdentityOptions(Strict):
    """START, INCREMENT, MINVALUE, MAXVALUE, CACHE and CYCLE of an identity column's sequence."""

    start: int | None = None
    increment: int | None = Field(None, description="Not 0")
    minvalue: int | None = None
    maxvalue: int | None = None
    cache: int | None = Field(None, ge=1)
    cycle: bool = False

    @field_validator("increment")
    @classmethod
    def _nonzero(cls, value: int | None) -> int | None:
        if value == 0:
            raise ValueError("an identity cannot increment by 0")
        return value


_PARAMETER = re.compile(r"^(toast\.)?[a-z_][a-z0-9_]*$")


def _parameters(value: Any) -> Any:
    """Storage parameters: lower-case names (PostgreSQL folds them), values as text, as pg_class
    stores them (`fillfactor=70`); a flag is written true/false."""
    value = _stringify(value)
    if isinstance(value, dict):
        for name in value:
            if not _PARAMETER.match(name):
                raise ValueError(f"{name!r} is not a storage parameter name (lower case, e.g. fillfactor)")
    return value


Parameters = Annotated[dict[str, str], BeforeValidator(_parameters)]
_DEFERRABLE = Literal[False, True, "initially deferred"]


class Column(Strict):
    name: Identifier
    type: TypeName = Field(description="Any PostgreSQL type, including serial and bigserial")
    nullable: bool = True
    default: Expression | None = Field(None, description="SQL expression, e.g. now() or 'draft'")
    primary_key: bool = Field(False, description="Mark several columns for a composite key")
    unique: bool = False
    identity: Literal["always", "by default"] | None = None
    identity_options: IdentityOptions | None = Field(
        None, description="The identity sequence's options; left out, PostgreSQL's defaults")
    generated: Expression | None = Field(None, description="Expression of a stored generated column")
    collation: str | None = None
    storage: Literal["plain", "external", "extended", "main"] | None = Field(
        None, description="SET STORAGE; default: the type's")
    compression: Literal["pglz", "lz4"] | None = Field(
        None, description="Default: the server's default_toast_compression")
    statistics: int | None = Field(None, ge=0, le=10000, description="SET STATISTICS target; default: the server's")
    comment: str | None = None
    renamed_from: Identifier | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Column:
        if self.identity and self.default is not None:
            raise ValueError("an identity column cannot also have a default")
        if self.generated and (self.default is not None or self.identity):
            raise ValueError("a generated column has neither a default nor an identity")
        if self.identity_options is not None and not self.identity:
            raise ValueError("identity_options need identity: always or by default")
        return self


class Reference(Strict):
    table: Identifier
    schema_: Identifier | None = Field(None, alias="schema")
    columns: list[Identifier] = Field(default_factory=list, description="Default: the primary key")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_ACTIONS = Literal["no action", "restrict", "cascade", "set null", "set default"]


class ForeignKey(Strict):
    columns: list[Identifier] = Field(min_length=1)
    references: Reference
    on_delete: _ACTIONS = "no action"
    on_update: _ACTIONS = "no action"
    on_delete_columns: list[Identifier] | None = Field(
        None, description="ON DELETE SET NULL/SET DEFAULT (columns): only these key columns are set (PostgreSQL 15+)")
    match: Literal["simple", "full"] = Field("simple", description="MATCH FULL: all key columns NULL or none")
    deferrable: _DEFERRABLE = False
    not_valid: bool = Field(False, description="Added NOT VALID: existing rows are not checked (nor validated later)")
    name: Identifier | None = None
    comment: str | None = None

    @model_validator(mode="after")
    def _delete_columns(self) -> ForeignKey:
        if self.on_delete_columns is not None:
            if self.on_delete not in ("set null", "set default"):
                raise ValueError("on_delete_columns needs on_delete: set null or set default")
            if not set(self.on_delete_columns) <= set(self.columns):
                raise ValueError("on_delete_columns must be columns of the foreign key")
        return self


class PrimaryKey(Strict):
    """The explicit form of a primary key: its columns in key order, and its name."""

    columns: list[Identifier] = Field(min_length=1)
    name: Identifier | None = Field(None, description="Default: <table>_pkey")
    include: list[Identifier] = Field(default_factory=list, description="INCLUDE: columns stored in the key's index")
    with_: Parameters = Field(default_factory=dict, alias="with", description="Storage parameters of its index")
    deferrable: _DEFERRABLE = False
    comment: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Unique(Strict):
    columns: list[Identifier] = Field(min_length=1)
    name: Identifier | None = None
    nulls_not_distinct: bool = Field(False, description="PostgreSQL 15+: NULLs count as equal")
    include: list[Identifier] = Field(default_factory=list, description="INCLUDE: columns stored in its index")
    with_: Parameters = Field(default_factory=dict, alias="with", description="Storage parameters of its index")
    deferrable: _DEFERRABLE = False
    comment: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Check(Strict):
    expression: Expression
    name: Identifier | None = None
    no_inherit: bool = Field(False, description="NO INHERIT: not passed on to child tables")
    not_valid: bool = Field(False, description="Added NOT VALID: existing rows are not checked (nor validated later)")
    comment: str | None = None


_OPERATOR_CHARS = r"[-+*/<>=~!@#%^&|`?]{1,63}"
_OPERATOR = re.compile(rf"^(?:{_OPERATOR_CHARS}|OPERATOR\(\s*[A-Za-z_][A-Za-z0-9_$]*\s*\.\s*{_OPERATOR_CHARS}\s*\))$")


def _operator(value: str) -> str:
    """An operator is spliced as SQL: proven to be operator characters (or OPERATOR(schema.op)),
    and never the start of a comment."""
    if not _OPERATOR.match(value) or "--" in value or "/*" in value:
        raise ValueError(f"{value!r} is not an operator; write e.g. =, && or OPERATOR(myschema.=)")
    return value


class ExcludeElement(Strict):
    """One element of an exclusion constraint: a column or an expression (written as an index
    `columns` entry: COLLATE, operator class and ordering may follow) and its operator."""

    column: str | None = None
    expression: str | None = None
    with_: Annotated[str, AfterValidator(_operator)] = Field(alias="with", description="Operator, e.g. = or &&")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one(self) -> ExcludeElement:
        if (self.column is None) == (self.expression is None):
            raise ValueError("an exclusion element has a column or an expression")
        return self

    @property
    def entry(self) -> str:
        return self.column if self.column is not None else self.expression or ""


class Exclude(Strict):
    """EXCLUDE USING method (element WITH operator, ...) [INCLUDE (...)] [WITH (...)] [WHERE (predicate)]."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    elements: list[ExcludeElement] = Field(min_length=1)
    using: Literal["btree", "hash", "gist", "spgist"] = "gist"
    include: list[Identifier] = Field(default_factory=list)
    with_: Parameters = Field(default_factory=dict, alias="with", description="Storage parameters of its index")
    where: Expression | None = None
    name: Identifier | None = None
    deferrable: _DEFERRABLE = False
    comment: str | None = None


class Index(Strict):
    columns: list[str] = Field(min_length=1, description="Column names or expressions, each optionally followed "
                               "by COLLATE c, an operator class, ASC/DESC and NULLS FIRST/LAST")
    name: Identifier | None = None
    unique: bool = False
    nulls_not_distinct: bool = Field(False, description="PostgreSQL 15+, unique indexes: NULLs count as equal")
    method: Literal["btree", "hash", "gist", "gin", "spgist", "brin"] = "btree"
    where: Expression | None = Field(None, description="Predicate of a partial index")
    include: list[Identifier] = Field(default_factory=list)
    with_: Parameters = Field(default_factory=dict, alias="with",
                              description="Storage parameters, e.g. {fillfactor: 70}")
    comment: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _coherent(self) -> Index:
        if self.nulls_not_distinct and not self.unique:
            raise ValueError("nulls_not_distinct is for unique indexes")
        return self


class RowLevelSecurity(Strict):
    enabled: bool = True
    forced: bool = Field(False, description="FORCE: the table owner is subject to the policies too")


class Policy(Strict):
    """CREATE POLICY name ON table AS permissive|restrictive FOR command TO roles USING (...) WITH CHECK (...)."""

    name: Identifier
    as_: Literal["permissive", "restrictive"] = Field("permissive", alias="as")
    for_: Literal["all", "select", "insert", "update", "delete"] = Field("all", alias="for")
    to: list[Identifier] = Field(default_factory=lambda: ["PUBLIC"], min_length=1, description="Roles, or PUBLIC")
    using: Expression | None = Field(None, description="Which existing rows the policy lets through")
    with_check: Expression | None = Field(None, description="Which new rows it lets in")
    comment: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("to")
    @classmethod
    def _public(cls, value: list[str]) -> list[str]:
        return sorted({"PUBLIC" if role.upper() == "PUBLIC" else role for role in value})

    @model_validator(mode="after")
    def _coherent(self) -> Policy:
        if self.for_ == "select" and self.with_check is not None:
            raise ValueError("a policy for select has no with_check")
        if self.for_ in ("insert",) and self.using is not None:
            raise ValueError("a policy for insert has no using (write with_check)")
        if self.for_ == "delete" and self.with_check is not None:
            raise ValueError("a policy for delete has no with_check")
        if self.using is None and self.with_check is None:
            raise ValueError("a policy needs using or with_check")
        return self


def _bound_value(value: Any) -> Any:
    """A partition bound value: MINVALUE, MAXVALUE, or one proven expression (a number or flag from
    YAML becomes its text)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and value.strip().upper() in ("MINVALUE", "MAXVALUE"):
        return value.strip().upper()
    return fragments.expression(value) if isinstance(value, str) else value


BoundValue = Annotated[str, BeforeValidator(_bound_value)]


class PartitionBy(Strict):
    method: Literal["range", "list", "hash"]
    columns: list[str] = Field(min_length=1, description="Columns or expressions, as index `columns` entries "
                               "(COLLATE and an operator class may follow)")


class Partition(Strict):
    """One partition: FOR VALUES FROM/TO, IN, WITH (modulus, remainder), or DEFAULT."""

    name: Identifier
    schema_: Identifier | None = Field(None, alias="schema", description="Default: the parent's")
    from_: list[BoundValue] | None = Field(None, alias="from", description="Range partitions: lower bound (inclusive)")
    to: list[BoundValue] | None = Field(None, description="Range partitions: upper bound (exclusive)")
    in_: list[BoundValue] | None = Field(None, alias="in", description="List partitions: the values")
    modulus: int | None = Field(None, ge=1)
    remainder: int | None = Field(None, ge=0)
    default: bool = False
    with_: Parameters = Field(default_factory=dict, alias="with", description="Its own storage parameters")
    indexes: list[Index] = Field(default_factory=list, description="Its own indexes, beyond the parent's; each named")
    comment: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_bound(self) -> Partition:
        if any(ix.name is None for ix in self.indexes):
            raise ValueError("a partition's own index needs a name")
        forms = [self.from_ is not None or self.to is not None, self.in_ is not None,
                 self.modulus is not None or self.remainder is not None, self.default]
        if sum(forms) != 1:
            raise ValueError("a partition has one bound: from and to, in, modulus and remainder, or default: true")
        if forms[0] and (self.from_ is None or self.to is None):
            raise ValueError("a range partition needs both from and to")
        if forms[2] and (self.modulus is None or self.remainder is None):
            raise ValueError("a hash partition needs both modulus and remainder")
        return self


class TableData(Strict):
    """Rows the table must hold: inline (`rows`) or from a file (`from`), matched by `key`."""

    rows: list[dict[str, Any]] | None = Field(None, description="Rows, each a mapping of column to value")
    from_: str | None = Field(None, alias="from", description="A .csv (with a header row), .csv.gz, .json, "
                              ".yaml or .yml file holding the rows, relative to the playbook")
    key: list[Identifier] = Field(default_factory=list, description="Columns that identify a row; "
                                  "default: the primary key")
    mode: Literal["insert", "upsert", "exact"] = Field(
        "insert", description="insert: add missing rows; upsert: also update declared columns; "
        "exact: also delete rows not declared (hazard deletes_data)")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    # The rows as loaded (erpprov.core.seed.SeedRows), attached by the loader once it read `from`.
    _loaded: Any = PrivateAttr(None)

    @model_validator(mode="after")
    def _one_source(self) -> TableData:
        if (self.rows is None) == (self.from_ is None):
            raise ValueError("data holds either rows or from (a file), not both and not neither")
        return self

    @property
    def loaded(self) -> Any:
        return self._loaded


class Table(Strict):
    name: Identifier
    schema_: Identifier = Field("public", alias="schema")
    columns: list[Column] = Field(default_factory=list)
    primary_key: PrimaryKey | None = Field(None, description="Explicit form; or mark columns primary_key: true")
    foreign_keys: list[ForeignKey] = Field(default_factory=list)
    unique: list[Unique] = Field(default_factory=list, description="Unique constraints over several columns")
    checks: list[Check] = Field(default_factory=list)
    exclude: list[Exclude] = Field(default_factory=list, description="Exclusion constraints")
    indexes: list[Index] = Field(default_factory=list)
    row_level_security: RowLevelSecurity = Field(
        default_factory=lambda: RowLevelSecurity(enabled=False),
        description="Default: off; turning it off is hazard widens_access")
    policies: list[Policy] = Field(
        default_factory=list, description="Exactly these policies: others are dropped (hazard widens_access)")
    partition_by: PartitionBy | None = Field(None, description="A partitioned table: PARTITION BY method (columns)")
    partitions: list[Partition] = Field(
        default_factory=list, description="Exactly these partitions: others are dropped (hazard deletes_data)")
    unlogged: bool = Field(False, description="UNLOGGED: not written to the WAL, emptied after a crash")
    with_: Parameters = Field(default_factory=dict, alias="with",
                              description="Storage parameters, e.g. {fillfactor: 80, autovacuum_enabled: false}")
    comment: str | None = None
    owner: Identifier | None = None
    grants: Annotated[list[Grant], AfterValidator(_grants_of("table"))] = Field(default_factory=list)
    renamed_from: Identifier | None = None
    data: TableData | None = Field(None, description="Seed or reference rows (docs/playbook.md, data)")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _columns_known(self) -> Table:
        unique_names(self.columns, "columns", field="columns")
        unique_names(self.policies, "policies", field="policies")
        unique_names(self.partitions, "partitions", field="partitions")
        if self.partitions and self.partition_by is None:
            raise ValueError("partitions need partition_by")
        for entry in self.partition_by.columns if self.partition_by else []:
            fragments.index_entry(entry, {c.name for c in self.columns})
        names = {c.name for c in self.columns}
        if self.primary_key is not None:
            if any(c.primary_key for c in self.columns):
                raise ValueError("declare the primary key once: primary_key: {columns: [...]} or the column flags")
            _known(self.primary_key.columns + self.primary_key.include, names, "primary key")
        for fk in self.foreign_keys:
            _known(fk.columns, names, "foreign key")
        for uq in self.unique:
            _known(uq.columns + uq.include, names, "unique constraint")
        for ex in self.exclude:
            _known(ex.include, names, "exclusion constraint INCLUDE")
            for element in ex.elements:
                if not fragments.index_entry(element.entry, names).is_column and element.column is not None:
                    raise ValueError(f"exclusion element column {element.column!r} is not a column of the table; "
                                     "write an expression as expression:")
        for ix in self.indexes:
            _known(ix.include, names, "index INCLUDE")
            for entry in ix.columns:
                fragments.index_entry(entry, names)
        if self.data is not None:
            _data_columns_known(self, names)
        return self


def _data_columns_known(table: Table, names: set[str]) -> None:
    assert table.data is not None
    _known(table.data.key, names, "data key")
    if not table.data.key and not any(c.primary_key for c in table.columns):
        raise ValueError("data needs a key: the table has no primary key, so name the columns that "
                         "identify a row in data.key")


def _known(columns: list[str], names: set[str], what: str) -> None:
    for column in columns:
        if column not in names:
            raise ValueError(f"{what} names column {column!r}, which the table does not declare")


# --- types and sequences --------------------------------------------------------------------


def _enum_values(values: list[str]) -> list[str]:
    for value in values:
        if not value or len(value.encode()) > MAX_NAME_BYTES:
            raise ValueError(f"enum value {value!r} must be 1 to {MAX_NAME_BYTES} bytes long")
    if len(set(values)) != len(values):
        raise ValueError("an enum lists each value once")
    return values


class Attribute(Strict):
    name: Identifier
    type: TypeName
    collation: Identifier | None = None


class Type(Strict):
    """An enum (`enum`), a composite type (`attributes`) or a domain (`base_type`, with `default`,
    `not_null`, `checks`, `collation`). Enum values are added where the file puts them (ALTER TYPE
    ... ADD VALUE, committed on its own so the same apply can use them); removing or reordering
    one recreates the type."""

    name: Identifier
    schema_: Identifier = Field("public", alias="schema")
    enum: Annotated[list[str], AfterValidator(_enum_values)] | None = Field(
        None, min_length=1, description="Enum: the values in order")
    attributes: list[Attribute] | None = Field(None, min_length=1, description="Composite type: its attributes")
    base_type: TypeName | None = Field(None, description="Domain: the type it restricts")
    default: Expression | None = Field(None, description="Domain: default value")
    not_null: bool = Field(False, description="Domain: NOT NULL")
    checks: list[Check] = Field(default_factory=list, description="Domain: CHECK constraints, on VALUE")
    collation: Identifier | None = Field(None, description="Domain: collation")
    owner: Identifier | None = None
    comment: str | None = None
    grants: Annotated[list[Grant], AfterValidator(_grants_of("type"))] = Field(default_factory=list)
    renamed_from: Identifier | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_kind(self) -> Type:
        kinds = [k for k in ("enum", "attributes", "base_type") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a type is an enum (`enum`), a composite type (`attributes`) or a domain (`base_type`)")
        domain_keys = self.default is not None or self.not_null or self.checks or self.collation is not None
        if domain_keys and self.base_type is None:
            raise ValueError("default, not_null, checks and collation belong to a domain (`base_type`)")
        if self.attributes:
            unique_names(self.attributes, "attributes", field="attributes")
        if self.renamed_from and self.enum is None:
            raise ValueError("renamed_from is supported on enum types only (rename a domain or composite type by hand)")
        return self


class OwnedBy(Strict):
    table: Identifier
    column: Identifier
    schema_: Identifier | None = Field(None, alias="schema", description="Default: the sequence's schema")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Sequence(Strict):
    """A standalone sequence (serial and identity columns own theirs). Omitted bounds and start are
    PostgreSQL's defaults for the type and direction. Changing `start` never resets the current
    value of an existing sequence."""

    name: Identifier
    schema_: Identifier = Field("public", alias="schema")
    type: Literal["smallint", "integer", "bigint"] = "bigint"
    start: int | None = None
    increment: int = 1
    min_value: int | None = None
    max_value: int | None = None
    cache: int = Field(1, ge=1)
    cycle: bool = False
    owned_by: OwnedBy | None = Field(None, description="The column whose drop drops the sequence")
    owner: Identifier | None = None
    comment: str | None = None
    grants: Annotated[list[Grant], AfterValidator(_grants_of("sequence"))] = Field(default_factory=list)
    renamed_from: Identifier | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _increment(self) -> Sequence:
        if self.increment == 0:
            raise ValueError("a sequence's increment cannot be 0")
        return self


# --- views ----------------------------------------------------------------------------------


class View(Strict):
    """A view. Its query is compared as PostgreSQL prints it back (pg_get_viewdef), so spacing,
    casts and qualification the server adds are no change."""

    name: Identifier
    schema_: Identifier = Field("public", alias="schema")
    query: Query = Field(description="One SELECT (or VALUES, WITH ... SELECT), without a ';'")
    columns: list[Identifier] = Field(default_factory=list, description="Column names; default: the query's")
    security_barrier: bool = False
    security_invoker: bool = Field(False, description="PostgreSQL 15+")
    check_option: Literal["local", "cascaded"] | None = None
    owner: Identifier | None = None
    comment: str | None = None
    renamed_from: Identifier | None = Field(None, description="Its old name: renamed (ALTER VIEW ... RENAME TO)")
    grants: Annotated[list[Grant], AfterValidator(_grants_of("table"))] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MaterializedView(Strict):
    """A materialized view; a changed query rebuilds it (hazard `deletes_data`: its rows go)."""

    name: Identifier
    schema_: Identifier = Field("public", alias="schema")
    query: Query = Field(description="One SELECT (or VALUES, WITH ... SELECT), without a ';'")
    columns: list[Identifier] = Field(default_factory=list, description="Column names; default: the query's")
    with_data: bool = Field(True, description="Fill it when created (WITH NO DATA leaves it unscannable)")
    owner: Identifier | None = None
    comment: str | None = None
    renamed_from: Identifier | None = Field(None, description="Its old name: renamed, rows and indexes kept")
    indexes: list[Index] | None = Field(
        None, description="Its indexes, exactly (like a table's: one it does not list is dropped); "
        "unset: its indexes are left alone, listed as unmanaged, and kept when it is rebuilt")
    grants: Annotated[list[Grant], AfterValidator(_grants_of("table"))] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _index_entries_proven(self) -> MaterializedView:
        # its columns are the query's, known only to the server: an entry that is not one of
        # `columns` must be one proven expression (a bare name parses as one, and PostgreSQL
        # stores a parenthesized column as the column)
        for ix in self.indexes or []:
            for entry in ix.columns:
                fragments.index_entry(entry, set(self.columns))
        return self


# --- functions ------------------------------------------------------------------------------


# Languages whose CREATE FUNCTION makes the server look up native code, whatever
# check_function_bodies says: `c` opens the shared library the body names and runs its
# initialisation, `internal` binds a symbol of the server's own. A plan's rolled-back build
# would do it too (decision 8), so a playbook declares none; functions in C come with the
# extensions that install them.
NATIVE_LANGUAGES = frozenset({"c", "internal"})


def native_language(language: str) -> bool:
    """Whether ``language`` names one of NATIVE_LANGUAGES, however it is spelled (any case,
    quoted or not, as a person or the server's identifier folding may mean it)."""
    return language.strip('" ').lower() in NATIVE_LANGUAGES


def _language_of(kind: str) -> Callable[[str, ValidationInfo], str]:
    def check(language: str, info: ValidationInfo) -> str:
        if native_language(language):
            name = f"{info.data.get('schema_', 'public')}.{info.data.get('name', '?')}"
            raise Refused(f"{kind} {name}: language {language} binds it to native code, which the server "
                          "looks up (for c: opens the library, running its initialisation) as soon as it is "
                          "created, even in a plan's rolled-back build; a playbook cannot declare it",
                          "functions in C come from extensions: install the one that provides it on the "
                          "server and declare that extension under the database's extensions")
        return language

    return check


_LANGUAGE = "sql, plpgsql, or a language an extension provides; never c or internal"


class Argument(Strict):
    name: Identifier | None = None
    type: TypeName
    mode: Literal["in", "out", "inout", "variadic"] = "in"
    default: Expression | None = None

    def sql(self) -> str:
        """As CREATE FUNCTION writes it (every part proven or an identifier)."""
        name = '"' + self.name.replace('"', '""') + '" ' if self.name else ""
        default = f" DEFAULT ({self.default})" if self.default is not None else ""
        return f"{self.mode.upper()} {name}{self.type}{default}"


class TableColumn(Strict):
    name: Identifier
    type: TypeName


class Function(Strict):
    """A function or procedure; its identity is schema, name and argument types. A new body or
    attribute is CREATE OR REPLACE; new arguments or result type drop it and create it again."""

    name: Identifier
    schema_: Identifier = Field("public", alias="schema")
    arguments: list[Argument] = Field(default_factory=list)
    returns: TypeName | None = Field(None, description="Result type (functions); `void` for none")
    setof: bool = Field(False, description="RETURNS SETOF the type")
    returns_table: list[TableColumn] = Field(default_factory=list, description="RETURNS TABLE (...)")
    language: Annotated[Identifier, AfterValidator(_language_of("function"))] = Field("sql", description=_LANGUAGE)
    body: str
    volatility: Literal["volatile", "stable", "immutable"] = "volatile"
    strict: bool = False
    security_definer: bool = False
    parallel: Literal["unsafe", "restricted", "safe"] = "unsafe"
    leakproof: bool = False
    cost: float | None = Field(None, description="Default: PostgreSQL's (1 for C, 100 otherwise)")
    rows: float | None = Field(None, description="Set-returning functions; default 1000")
    set: StringMap = Field(default_factory=dict, description="SET name = value while it runs, e.g. search_path")
    owner: Identifier | None = None
    comment: str | None = None
    renamed_from: Identifier | None = Field(None, description="Its old name (same arguments): renamed in place")
    grants: Annotated[list[Grant], AfterValidator(_grants_of("function"))] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def result(self) -> str:
        """What RETURNS says (proven types and identifiers only)."""
        if self.returns_table:
            return "TABLE (" + ", ".join('"' + c.name.replace('"', '""') + '" ' + c.type
                                         for c in self.returns_table) + ")"
        return ("SETOF " if self.setof else "") + (self.returns or "void")

    @model_validator(mode="after")
    def _coherent(self) -> Function:
        if self.returns_table and (self.returns or self.setof):
            raise ValueError("returns_table stands alone: no returns or setof beside it")
        if not self.returns_table and self.returns is None and not any(a.mode in ("out", "inout")
                                                                      for a in self.arguments):
            raise ValueError("a function needs `returns` (or `returns_table`, or OUT arguments)")
        header = f"CREATE FUNCTION f({', '.join(a.sql() for a in self.arguments)})"
        if self.returns is not None or self.returns_table:
            header += f" RETURNS {self.result()}"
        fragments.function_body(self.body, self.language, header)
        return self


class Procedure(Strict):
    name: Identifier
    schema_: Identifier = Field("public", alias="schema")
    arguments: list[Argument] = Field(default_factory=list)
    language: Annotated[Identifier, AfterValidator(_language_of("procedure"))] = Field("sql", description=_LANGUAGE)
    body: str
    security_definer: bool = False
    set: StringMap = Field(default_factory=dict)
    owner: Identifier | None = None
    comment: str | None = None
    renamed_from: Identifier | None = Field(None, description="Its old name (same arguments): renamed in place")
    grants: Annotated[list[Grant], AfterValidator(_grants_of("function"))] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _coherent(self) -> Procedure:
        fragments.function_body(self.body, self.language,
                                f"CREATE PROCEDURE f({', '.join(a.sql() for a in self.arguments)})")
        return self


# --- triggers -------------------------------------------------------------------------------


class Trigger(Strict):
    """A trigger on a table (or an INSTEAD OF trigger on a view)."""

    name: Identifier
    table: Identifier
    schema_: Identifier = Field("public", alias="schema", description="The table's schema")
    timing: Literal["before", "after", "instead of"]
    events: list[Literal["insert", "update", "delete", "truncate"]] = Field(min_length=1)
    update_of: list[Identifier] = Field(default_factory=list, description="UPDATE OF these columns only")
    for_each: Literal["row", "statement"] = "row"
    when: Expression | None = Field(None, description="Condition, e.g. OLD.* IS DISTINCT FROM NEW.*")
    function: Identifier = Field(description="The trigger function's name")
    function_schema: Identifier | None = Field(None, description="Default: the table's schema")
    arguments: list[str] = Field(default_factory=list, description="Strings passed to the function")
    constraint: bool = Field(False, description="A constraint trigger (AFTER ... FOR EACH ROW)")
    deferrable: Literal[False, True, "initially deferred"] = False
    enabled: bool = True
    comment: str | None = None
    renamed_from: Identifier | None = Field(None, description="Its old name on the same table: renamed in place")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _coherent(self) -> Trigger:
        if len(set(self.events)) != len(self.events):
            raise ValueError("each event is listed once")
        if self.update_of and "update" not in self.events:
            raise ValueError("update_of needs the update event")
        if self.deferrable and not self.constraint:
            raise ValueError("only a constraint trigger is deferrable")
        return self


def _unique_in_schemas(items: list[Any], what: str) -> None:
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(items):
        key = (item.schema_, item.name)
        if key in seen:
            raise DuplicateName(f"two {what} are named {item.schema_}.{item.name}; each name may appear once",
                                (what, index, "name"))
        seen.add(key)


def _no_domain_cycle(types: list[Type], functions: list[Function]) -> None:
    for index, t in enumerate(types):
        found = domain_calls.cycle(t, functions) if functions and t.base_type is not None else None
        if found is None:
            continue
        check, f = found
        what = "default" if check is None else f"check {t.checks[check].name or t.checks[check].expression}"
        raise Refused(f"domain {t.schema_}.{t.name}: its {what} calls function {f.schema_}.{f.name}, which takes or "
                      f"returns {t.name}: neither can be created before the other",
                      hint=f"let {f.name} take or return the base type ({t.base_type}) instead of the domain, or "
                           "give the default (or check) to the columns rather than to the domain",
                      path=("types", index, "default") if check is None else ("types", index, "checks", check))


# --- databases ------------------------------------------------------------------------------


class Extension(Strict):
    name: Identifier
    state: Literal["present", "absent"] = Field(
        "present", description="absent: DROP EXTENSION (never CASCADE); prune never drops one")
    version: str | None = Field(None, description="Default: the version the server offers")
    schema_: Identifier | None = Field(None, alias="schema")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Schema(Strict):
    name: Identifier
    owner: Identifier | None = None
    comment: str | None = None
    grants: list[SchemaGrant] = Field(default_factory=list)
    default_privileges: list[DefaultPrivilege] = Field(default_factory=list)
    prune: bool = Field(False, description="Drop tables in this schema that the file does not declare")


class Script(Strict):
    """SQL for what rows cannot say, run by apply (never by plan) and recorded in erpprov.script_runs."""

    name: str = Field(min_length=1, description="Identifies the script in the journal")
    file: str | None = Field(None, description="A .sql file, relative to the playbook")
    sql: str | None = Field(None, description="The SQL itself")
    run: Literal["once", "on_change", "always"] = Field(
        "once", description="once: the first apply only (a later change is reported, not run); "
        "on_change: again whenever its text changes; always: on every apply")

    # The SQL as loaded from `file` (or `sql`), attached by the loader.
    _text: str = PrivateAttr("")

    @model_validator(mode="after")
    def _one_source(self) -> Script:
        if (self.file is None) == (self.sql is None):
            raise ValueError("a script has either file or sql, not both and not neither")
        return self

    @property
    def text(self) -> str:
        return self.sql if self.sql is not None else self._text


class Database(Strict):
    name: Identifier
    owner: Identifier | None = None
    encoding: str | None = Field(None, description="Applied at creation; a mismatch later is reported")
    locale: str | None = None
    lc_collate: str | None = None
    lc_ctype: str | None = None
    template: Identifier | None = None
    connection_limit: int = Field(-1, ge=-1)
    comment: str | None = None
    grants: Annotated[list[Grant], AfterValidator(_grants_of("database"))] = Field(default_factory=list)
    schemas: list[Schema] = Field(default_factory=list)
    extensions: list[Extension] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)
    types: list[Type] = Field(default_factory=list, description="Enum types")
    sequences: list[Sequence] = Field(default_factory=list, description="Standalone sequences")
    views: list[View] = Field(default_factory=list)
    materialized_views: list[MaterializedView] = Field(default_factory=list)
    functions: list[Function] = Field(default_factory=list)
    procedures: list[Procedure] = Field(default_factory=list)
    triggers: list[Trigger] = Field(default_factory=list)
    default_privileges: list[DefaultPrivilege] = Field(default_factory=list)
    prune: bool = Field(False, description="Drop schemas and tables that the file does not declare")
    scripts: list[Script] = Field(default_factory=list, description="SQL run by apply after the tables and rows")

    @model_validator(mode="after")
    def _unique(self) -> Database:
        unique_names(self.schemas, "schemas", field="schemas")
        unique_names(self.scripts, "scripts", field="scripts")
        unique_names(self.extensions, "extensions", field="extensions")
        _unique_in_schemas(self.types, "types")
        _unique_in_schemas(self.sequences, "sequences")
        _unique_in_schemas(self.views, "views")
        _unique_in_schemas(self.materialized_views, "materialized_views")
        _no_domain_cycle(self.types, self.functions)
        seen: set[tuple[str, str]] = set()
        for table in self.tables:
            key = (table.schema_, table.name)
            if key in seen:
                raise DuplicateName(
                    f"two tables are named {table.schema_}.{table.name}; each name may appear once",
                    ("tables", self.tables.index(table, len(seen)), "name"),
                )
            seen.add(key)
        return self


# --- container and templates ----------------------------------------------------------------


class Healthcheck(Strict):
    test: str | list[str] = Field("pg_isready -U postgres", description="Command run inside the container")
    interval: Duration = 2.0
    timeout: Duration = 5.0
    retries: int = Field(30, ge=1)
    start_period: Duration = 0.0


_PORT = re.compile(r"^(?:(?P<ip>[0-9.]+|\[[0-9a-fA-F:]+\]):)?(?P<host>\d{1,5}):(?P<container>\d{1,5})(?:/tcp)?$")


def _port(value: Any) -> Any:
    if isinstance(value, int):
        value = f"{value}:{value}"
    if isinstance(value, str):
        match = _PORT.match(value.strip())
        if not match or not all(0 < int(match.group(g)) < 65536 for g in ("host", "container")):
            raise ValueError(f"{value!r} is not a port mapping; write HOST:CONTAINER, e.g. 5432:5432")
    return value


class Container(Strict):
    name: Identifier
    image: str = "postgres:16"
    ports: list[Annotated[str, BeforeValidator(_port)]] = Field(default_factory=lambda: ["5432:5432"])
    data_dir: str | None = Field(None, description="Host directory for PGDATA, relative to the project")
    volume: str | None = Field(None, description="A named Docker volume instead of data_dir")
    env: StringMap = Field(default_factory=dict)
    healthcheck: Healthcheck = Field(default_factory=Healthcheck)
    restart: Literal["no", "always", "unless-stopped", "on-failure"] = "unless-stopped"
    command: list[str] = Field(default_factory=list, description='Extra server arguments, e.g. ["-c", "x=y"]')
    shm_size: str | None = None
    labels: StringMap = Field(default_factory=dict)
    wait_timeout: Duration = Field(120.0, description="How long to wait for the server to become healthy")
    adopt: bool = Field(False, description="Manage an existing container of this name that erpprov did not "
                                           "create; it is recreated only with the recreates_container hazard")

    @model_validator(mode="after")
    def _one_storage(self) -> Container:
        if self.data_dir and self.volume:
            raise ValueError("choose data_dir (a host directory) or volume (a named volume), not both")
        return self


class ComposeService(Strict):
    """`container: {compose: FILE, service: NAME}`: the server is a service of the team's Compose
    file, brought up by Compose itself (its project and labels), so `docker compose ps/logs/down`
    keep working; erpprov manages what runs inside."""

    compose: str = Field(description="The Compose file, relative to the project")
    service: str = Field(min_length=1, description="The service that runs PostgreSQL")
    profile: str | None = Field(None, description="Compose profile that enables the service")
    project: str | None = Field(None, description="Compose project name (default: Compose's own, from the "
                                                  "file's directory)")
    wait_timeout: Duration = Field(120.0, description="How long to wait for the server to become healthy")

    @property
    def name(self) -> str:
        return self.service


def _container_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "compose" if "compose" in value else "container"
    return "compose" if isinstance(value, ComposeService) else "container"


AnyContainer = Annotated[
    Annotated[Container, Tag("container")] | Annotated[ComposeService, Tag("compose")],
    Discriminator(_container_kind),
]


class TemplateFile(Strict):
    src: str = Field(description="Template under templates/, e.g. app.env.j2")
    dest: str = Field(description="File to write, relative to the project")
    mode: str = Field("0600", pattern=r"^0?[0-7]{3}$")
    outside_project: bool = Field(False, description="Allow a dest outside the project directory "
                                  "(absolute, ../, or through a symlink)")


# --- plays ----------------------------------------------------------------------------------


class Play(Strict):
    """One play, after its templates were rendered for one host."""

    name: str
    hosts: str = "all"
    vars: dict[str, Any] = Field(default_factory=dict)
    vars_files: list[str] = Field(default_factory=list)
    container: AnyContainer | None = None
    roles: list[Role] = Field(default_factory=list)
    prune_roles: list[str] = Field(
        default_factory=list, description="Glob patterns: roles matching them but not declared are dropped"
    )
    databases: list[Database] = Field(default_factory=list)
    templates: list[TemplateFile] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Play:
        unique_names(self.roles, "roles", field="roles")
        unique_names(self.databases, "databases", field="databases")
        return self


def playbook_json_schema() -> dict[str, Any]:
    from pydantic import TypeAdapter

    schema = _allow_templates(TypeAdapter(list[Play]).json_schema(mode="validation"))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "erpprov playbook"
    schema["description"] = "A list of plays; see docs/playbook.md"
    return schema


class Connection(Strict):
    """How to reach one host's server: the `pg_*`, `driver` and `docker_host` host variables."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    driver: Literal["auto", "docker", "local", "external"] = "auto"
    pg_host: str = "127.0.0.1"
    pg_port: int = Field(5432, gt=0, lt=65536)
    pg_user: Identifier = "postgres"
    pg_password: SecretStr | None = None
    pg_database: Identifier = Field("postgres", description="Database to connect to for cluster-wide work")
    pg_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = None
    pg_sslrootcert: str | None = None
    pg_sslcert: str | None = None
    pg_sslkey: str | None = None
    pg_connect_timeout: Duration = 10.0
    pg_lock_timeout: Duration = Field(10.0, description="Give up on a table lock after this long")
    pg_statement_timeout: Duration = Field(600.0, description="Give up on one statement after this long")
    docker_host: str | None = Field(None, description="As DOCKER_HOST: unix://, tcp:// or ssh://")


def _allow_templates(node: Any) -> Any:
    """Files are validated before rendering, so a number or flag may still be a `{{ template }}`."""
    if isinstance(node, dict):
        node = {k: _allow_templates(v) for k, v in node.items()}
        if node.get("type") in ("integer", "number", "boolean"):
            typed = {k: v for k, v in node.items() if k not in ("default", "title", "description")}
            rest = {k: v for k, v in node.items() if k in ("default", "title", "description")}
            return {**rest, "anyOf": [typed, {"type": "string", "pattern": r"\{\{"}]}
        return node
    if isinstance(node, list):
        return [_allow_templates(v) for v in node]
    return node
