"""The desired functions and procedures as PostgreSQL prints them: each built under a name of its
own (its place in the file) in a stand-in schema of a rolled-back transaction, with
check_function_bodies off — a body is stored as written and never run or compiled there — then
read with the live side's query and given back its real schema and name. The name is printed
nowhere else, so nothing of the stand-in can leak into what is compared.

A function whose types do not exist yet (an enum the same apply creates) has no canonical form:
the diff then creates it as written, and the next plan compares it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace

import psycopg
from psycopg import sql

from erpprov.core import model
from erpprov.core.schema_objects import FunctionState
from erpprov.errors import ErpprovError
from erpprov.postgres import function_ddl
from erpprov.state import catalog
from erpprov.state.schema_catalog import FUNCTIONS, function_states
from erpprov.state.scratch_build import build, prelude_as_possible


def canonical_functions(conn: psycopg.Connection, declared: list[function_ddl.AnyFunction]) -> dict[int, FunctionState]:
    """By position in ``declared``: each function the server could build."""
    if not declared:
        return {}
    tag = uuid.uuid4().hex[:10]
    stand_in = {s: f"erpprov_scratch_{tag}_f{i}" for i, s in enumerate(sorted({f.schema_ for f in declared}))}
    setup = [sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(s)) for s in stand_in.values()]
    setup.append(sql.SQL("SELECT set_config({}, 'off', true)").format(sql.Literal("check_function_bodies")))
    builds = [function_ddl.create(f.model_copy(update={"name": f"f{i}"}), schema=stand_in[f.schema_])
              for i, f in enumerate(declared)]
    with conn.transaction(force_rollback=True):
        build(conn, setup, builds)
        rows = conn.execute(FUNCTIONS.format(filter="n.nspname = ANY(%s)"), [list(stand_in.values())]).fetchall()
    built = {int(state.name[1:]): state for state in function_states(rows).values()}
    return {i: replace(state, schema=declared[i].schema_, name=declared[i].name) for i, state in built.items()}


def declared_signatures(conn: psycopg.Connection, signatures: list[str], prelude: Sequence[sql.Composed]
                        ) -> dict[str, tuple[str, str] | None]:
    """Grant signatures no live function answers, resolved as the server will once the apply has
    created the declared functions: among the stand-ins of ``prelude`` (function_prelude), in a
    transaction that is rolled back. A grant then spells its function as freely as one on a live
    function (`int` for `integer`)."""
    with conn.transaction(force_rollback=True):
        prelude_as_possible(conn, prelude)
        return catalog.canonical_functions(conn, signatures)


def function_prelude(declared: list[function_ddl.AnyFunction], buildable: Collection[int],
                     live: Iterable[FunctionState]) -> list[sql.Composed]:
    """For the rolled-back scratch builds of tables, types and views, after the types and sequences
    of their prelude: the declared functions whose name is new to their schema, under their real
    names, so a default, check or domain that calls one is read as the server will print it. Only
    those the server builds (``buildable``: alone, or over the prelude's types, check_unbuilt):
    any other would fail the whole build, and is reported on its own; and no overload of a live
    name, which could clash with the live one (same argument types).

    Each is a stand-in: the declared signature and attributes around a body that does nothing.
    The build may call what it is given (ADD COLUMN evaluates a default that is not volatile, a
    domain's default included, to store it as the missing value), and a plan never runs code of
    the playbook's. A trigger function is left out: nothing these builds make can call one, and
    an SQL function cannot return a trigger."""
    taken = {(f.schema, f.name) for f in live}
    new = [f for i, f in enumerate(declared) if i in buildable and (f.schema_, f.name) not in taken
           and not (isinstance(f, model.Function) and f.returns in _TRIGGER_RESULTS)]
    if not new:
        return []
    schemas = sorted({f.schema_ for f in new})
    return [sql.SQL("SELECT set_config({}, 'off', true)").format(sql.Literal("check_function_bodies")),
            *(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(s)) for s in schemas),
            *(function_ddl.create(f.model_copy(update={"language": "sql", "body": _nothing(f)})) for f in new)]


def _nothing(function: function_ddl.AnyFunction) -> str:
    """An SQL body returning NULL of the declared result (its type spellings are proven types)."""
    if not isinstance(function, model.Function):
        return "SELECT NULL"
    if function.returns_table:
        return "SELECT " + ", ".join(f"NULL::{c.type}" for c in function.returns_table)
    return f"SELECT NULL::{function.returns}" if function.returns and function.returns != "void" else "SELECT NULL"


_TRIGGER_RESULTS = frozenset({"trigger", "event_trigger"})


# What a function that will not build may still be waiting for: an object (a table's row type, a
# type, a schema) the same apply creates. Anything else the server says would fail the apply too.
_WAITING = frozenset({"42704", "42P01", "3F000"})  # undefined_object, undefined_table, invalid_schema_name


def check_unbuilt(conn: psycopg.Connection, declared: list[function_ddl.AnyFunction],
                  canonical: dict[int, FunctionState], prelude: Sequence[sql.Composed]) -> set[int]:
    """A function the scratch build could not make is taken for one over an object the apply
    creates; one the server refuses for another reason (a language it lacks, a result its language
    cannot return) would only fail at apply: stop the plan and say which, and why. Each is built
    again, rolled back, once the extensions, types and sequences the plan creates (``prelude``)
    exist. The positions of those that then build: over the prelude, they get stand-ins too
    (function_prelude), so a default calling one that takes a new enum finds it."""
    unbuilt = [(i, f) for i, f in enumerate(declared) if i not in canonical]
    if not unbuilt:
        return set()
    built: set[int] = set()
    stand_in = f"erpprov_scratch_{uuid.uuid4().hex[:10]}_u"
    refused: tuple[function_ddl.AnyFunction, str, str] | None = None
    with conn.transaction(force_rollback=True):
        prelude_as_possible(conn, prelude)
        languages = {name for name, in conn.execute("SELECT lanname::text FROM pg_language")}
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(stand_in)))
        conn.execute(sql.SQL("SELECT set_config({}, 'off', true)").format(sql.Literal("check_function_bodies")))
        for i, f in unbuilt:
            if f.language not in languages:
                refused = (f, f"language {f.language} does not exist on the server",
                           "fix its language, or declare the extension that provides it under extensions "
                           f"(the server has: {', '.join(sorted(languages))})")
                break
            try:
                with conn.transaction():
                    conn.execute(function_ddl.create(f.model_copy(update={"name": f"f{i}"}), schema=stand_in))
                built.add(i)
            except psycopg.Error as exc:
                if exc.sqlstate not in _WAITING:
                    refused = (f, f"PostgreSQL rejects it: {exc.diag.message_primary or exc}",
                               "its arguments, result, language and attributes must make a valid function")
                    break
    if refused is not None:
        f, why, hint = refused
        raise ErpprovError(f"{'procedure' if isinstance(f, model.Procedure) else 'function'} {f.schema_}.{f.name}: "
                           f"{why}", hint=hint)
    return built
