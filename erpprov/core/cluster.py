"""The vocabulary both sides are read into: the desired state (from playbooks) and the live state
(from the catalogs) use these same shapes, so the diff compares like with like.

Tables have their own vocabulary in `erpprov.core.tables`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PUBLIC = "PUBLIC"


@dataclass(frozen=True)
class Member:
    """Membership of a role in ``role``; inherit/set are PostgreSQL 16+ options (None: not managed)."""

    role: str
    admin: bool = False
    inherit: bool | None = None
    set: bool | None = None


@dataclass(frozen=True)
class RoleState:
    name: str
    login: bool = False
    superuser: bool = False
    createdb: bool = False
    createrole: bool = False
    inherit: bool = True
    replication: bool = False
    bypassrls: bool = False
    connection_limit: int = -1
    valid_until: str | None = None  # the server's text for the timestamp, or None for "no limit"
    settings: tuple[tuple[str, str], ...] = ()
    comment: str | None = None
    members: tuple[Member, ...] = ()  # sorted by role


ROLE_FLAGS = ("login", "superuser", "createdb", "createrole", "inherit", "replication", "bypassrls")
ROLE_ATTRIBUTES = ROLE_FLAGS + ("connection_limit", "valid_until")

# A role as CREATE ROLE makes it when no option is written (RoleState's defaults are exactly those).
CREATE_ROLE_DEFAULTS = RoleState(name="")


def attributes_beyond_defaults(state: RoleState) -> dict[str, object]:
    """The attributes of ``state`` that CREATE ROLE would not give it: what a plan shows and an
    export writes, in ROLE_ATTRIBUTES order."""
    return {a: getattr(state, a) for a in ROLE_ATTRIBUTES if getattr(state, a) != getattr(CREATE_ROLE_DEFAULTS, a)}


@dataclass(frozen=True)
class DatabaseState:
    name: str
    owner: str
    encoding: str | None = None
    lc_collate: str | None = None
    lc_ctype: str | None = None
    connection_limit: int = -1
    comment: str | None = None


@dataclass(frozen=True)
class SchemaState:
    name: str
    owner: str
    comment: str | None = None


@dataclass(frozen=True)
class ExtensionState:
    name: str
    version: str
    schema: str


@dataclass(frozen=True)
class ObjectRef:
    """A securable object: kind is database, schema, table, sequence or function."""

    kind: str
    schema: str | None
    name: str

    def label(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


Privileges = frozenset[tuple[str, bool]]  # (privilege, with grant option)


@dataclass(frozen=True)
class DefaultAclKey:
    for_role: str
    schema: str | None  # None: database-wide
    on: str  # tables, sequences, functions, types, schemas
    grantee: str


@dataclass
class LiveCluster:
    """Cluster-wide state, read once per host."""

    server_version: int
    current_user: str
    is_superuser: bool
    roles: dict[str, RoleState] = field(default_factory=dict)
    passwords: dict[str, str | None] | None = None  # None: pg_authid unreadable
    databases: dict[str, DatabaseState] = field(default_factory=dict)
    database_acl: dict[tuple[str, str], Privileges] = field(default_factory=dict)  # (db, grantee)


@dataclass
class LiveDatabase:
    """State inside one database, read with a fixed number of queries."""

    name: str
    schemas: dict[str, SchemaState] = field(default_factory=dict)
    extensions: dict[str, ExtensionState] = field(default_factory=dict)
    acl: dict[tuple[ObjectRef, str], Privileges] = field(default_factory=dict)  # (object, grantee)
    objects: dict[str, set[tuple[str, str]]] = field(default_factory=dict)  # kind -> {(schema, name)}
    owners: dict[ObjectRef, str] = field(default_factory=dict)  # every object `acl` is read for
    # A function's name as a grant's `functions:` list spells it: argument types only (`add(integer,
    # integer)`), as to_regprocedure reads it, where its ObjectRef name carries the argument names too.
    signatures: dict[ObjectRef, str] = field(default_factory=dict)
    default_acl: dict[DefaultAclKey, Privileges] = field(default_factory=dict)
