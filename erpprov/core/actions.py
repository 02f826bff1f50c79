"""The plan: an ordered list of actions, as data. Renderers and the executor only read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import SecretStr

from erpprov.core.address import Address

SENSITIVE = "(sensitive)"  # how a secret reads in every plan, output and log line


class Op(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"


class Hazard(str, Enum):
    """Consequences that `apply` refuses unless the user allowed them (--allow-hazard NAME)."""

    DELETES_DATA = "deletes_data"  # drop table/column/database, type narrowing
    REWRITES_TABLE = "rewrites_table"  # type change needing a rewrite, volatile default on a new column
    VALIDATES_DATA = "validates_data"  # NOT NULL / unique / check / FK over existing rows may fail
    LOCKS_TABLE = "locks_table"  # ACCESS EXCLUSIVE on a table that holds rows
    DROPS_ROLE = "drops_role"  # a role and what it owns or was granted
    REVOKES_ACCESS = "revokes_access"  # pruning privileges or memberships, taking LOGIN, SUPERUSER... from a role
    WIDENS_ACCESS = "widens_access"  # disabling row-level security, dropping a row-level security policy
    RECREATES_CONTAINER = "recreates_container"  # brief downtime; the data directory survives
    BREAKS_CALLERS = "breaks_callers"  # dropping or recreating a type, function or view others use


class Phase(int, Enum):
    """Execution order (docs/design.md, decision 4): dependencies first, drops last."""

    CONTAINER = 0
    ROLE = 10
    MEMBERSHIP = 15
    DATABASE = 20
    DATABASE_GRANT = 25
    SCHEMA = 30
    EXTENSION = 34
    VIEW_DROP = 35  # views dropped to be created again, before what they read or call changes
    SEQUENCE = 36  # before the defaults that call nextval(), a domain's among them
    TYPE = 37  # before the columns and functions that use them
    FUNCTION = 38  # functions and procedures, before the defaults, checks and triggers that call them
    DOMAIN_CALLS = 39  # a domain's default and checks that call the file's functions, once those exist
    TABLE = 40
    COLUMN = 45
    CONSTRAINT = 50
    SEQUENCE_OWNER = 51  # OWNED BY a column, once the column exists
    POLICY = 54  # row-level security policies, after the columns their expressions read
    FOREIGN_KEY = 55
    VIEW = 56  # views and materialized views, once the tables and columns they read exist
    INDEX = 57
    COMMENT = 58
    TRIGGER = 59  # once their tables, views and functions exist
    GRANT = 60
    DEFAULT_PRIVILEGE = 65
    DROP_TRIGGER = 78
    DROP_VIEW = 79  # before the tables they read
    DROP_CONSTRAINT = 80
    DROP_INDEX = 81
    DROP_COLUMN = 82
    DROP_TABLE = 83
    DROP_FUNCTION = 84  # after the tables whose defaults call them
    DROP_SEQUENCE = 85
    DROP_TYPE = 86  # after the columns and functions that use them
    DROP_EXTENSION = 87
    DROP_SCHEMA = 88
    DATA = 89  # seed rows, once every table has its final shape
    SCRIPT = 90  # the play's scripts, after the rows they may build on
    DROP_DATABASE = 91
    DROP_ROLE = 99
    FILE = 100  # files rendered from templates, once the server holds what they describe


@dataclass(frozen=True)
class Statement:
    """One SQL statement. `shown` replaces `text` wherever the statement is displayed or saved,
    when the statement carries a secret.

    A statement that sets a password holds it in `password`, and its `text` ends where the SCRAM
    verifier goes: the verifier is computed when the statement runs (`postgres.scram.executable`),
    with a fresh random salt. Drawn at plan time, the salt would make two plans of the same files
    and live state differ."""

    text: str
    shown: str | None = None
    password: SecretStr | None = None
    copy: bytes | None = None  # the input of a COPY ... FROM STDIN (seed rows), never shown

    @property
    def display(self) -> str:
        return self.shown if self.shown is not None else self.text


@dataclass(frozen=True)
class Action:
    address: Address  # e.g. role.myapp, database.erp, table.erp.public.users
    op: Op
    phase: Phase
    database: str | None = None  # None: cluster-wide, run on the admin connection
    sql: tuple[Statement, ...] = ()
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    hazards: tuple[Hazard, ...] = ()
    transactional: bool = True  # CREATE DATABASE and friends run alone, outside a transaction
    note: str | None = None  # e.g. what a hazard means for this object
    repeats: bool = False  # cannot be verified (e.g. an unreadable password), so it runs every time
    order: int = 0  # rank within its phase and database, where statements depend on each other (a rename first)

    @property
    def kind(self) -> str:
        return self.address.kind

    @property
    def name(self) -> str:
        return self.address.name

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "kind": self.address.kind,  # the address's structure, for machines: no need to parse its text
            "parts": list(self.address.parts),
            "operation": self.op.value,
            "database": self.database,
            "before": self.before,
            "after": self.after,
            "hazards": [h.value for h in self.hazards],
            "sql": [s.display for s in self.sql],
            "note": self.note,
        }


def _stage(action: Action) -> tuple[int, str]:
    """Which run of the executor an action belongs to (DESIGN decisions 4 and 5): cluster-wide
    objects, CREATE DATABASE, database grants, each database's objects together on its own
    connection, database drops, what a dropped role owns in each database, and last the role."""
    phase, database = action.phase, action.database or ""
    if phase < Phase.DATABASE:
        return (0, "")
    if phase == Phase.DATABASE:
        return (1, "")
    if phase == Phase.DATABASE_GRANT:
        return (2, "")
    if phase < Phase.DROP_DATABASE:
        return (3, database)
    if phase < Phase.DROP_ROLE:
        return (4, "")
    return (5, database) if database else (6, "")


def execution_order(actions: list[Action]) -> list[Action]:
    """The one order of a plan: the order it is shown, saved, compared with a saved plan and run."""
    return sorted(actions, key=lambda a: (_stage(a), a.phase, a.order))


@dataclass
class HostPlan:
    host: str
    driver: str
    actions: list[Action] = field(default_factory=list)
    unmanaged: list[Address] = field(default_factory=list)  # addresses of live objects the files leave alone
    warnings: list[str] = field(default_factory=list)  # e.g. a password that cannot be compared
    fingerprint: str = ""  # of the live state the plan was computed from

    def ordered(self) -> list[Action]:
        return execution_order(self.actions)

    @property
    def empty(self) -> bool:
        return not self.actions

    def counts(self) -> dict[str, int]:
        result = {"add": 0, "change": 0, "destroy": 0}
        for action in self.actions:
            if action.op is Op.CREATE:
                result["add"] += 1
            elif action.op is Op.UPDATE:
                result["change"] += 1
            elif action.op is Op.DELETE:
                result["destroy"] += 1
            else:  # a replace destroys and adds
                result["add"] += 1
                result["destroy"] += 1
        return result
