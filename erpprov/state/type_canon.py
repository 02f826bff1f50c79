"""The desired composite types and domains as the server prints them: built in stand-in schemas,
after the types the file adds (the prelude makes the new ones under their real names), then read
with the live side's queries and given back their real schema. The stand-in schemas come last on
the rolled-back transaction's search_path: a name a declared type uses then means the type it will
mean at apply, in its real schema, and prints as the live one does (first, they shadowed it, and a
domain check casting to another declared domain printed it qualified: the plan never converged)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

import psycopg
from psycopg import sql

from erpprov.core import model
from erpprov.core.schema_objects import CompositeState, DomainState
from erpprov.postgres import schema_ddl
from erpprov.state.schema_catalog import COMPOSITES, DOMAINS, composite_states, domain_states
from erpprov.state.scratch_build import build

Key = tuple[str, str]


def canonical_types(conn: psycopg.Connection, declared: list[model.Type], prelude: Sequence[sql.Composed],
                    functions: Sequence[model.Function]) -> tuple[dict[Key, CompositeState], dict[Key, DomainState]]:
    """Each declared composite type and domain the server could build, by its real (schema, name).
    A domain's default and checks that call one of ``functions`` (the file's, whose stand-ins
    ``prelude`` holds) are added after it, as apply adds them."""
    built = [t for t in declared if t.enum is None]
    if not built:
        return {}, {}
    tag = uuid.uuid4().hex[:10]
    stand_in = {s: f"erpprov_scratch_{tag}_t{i}" for i, s in enumerate(sorted({t.schema_ for t in built}))}
    real = {value: key for key, value in stand_in.items()}
    setup = [*prelude, *(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(s)) for s in stand_in.values())]
    setup.append(sql.SQL("SELECT set_config('search_path', current_setting('search_path') || ', ' || {}, true)")
                 .format(sql.Literal(", ".join(stand_in.values()))))
    domains_first = sorted(built, key=lambda t: t.base_type is None)
    builds = [statement for t in domains_first for statement in (
        [schema_ddl.create_domain(t, stand_in[t.schema_], functions),
         *schema_ddl.domain_calls(t, functions, stand_in[t.schema_])] if t.base_type is not None
        else [schema_ddl.create_composite(t, stand_in[t.schema_])])]
    scratch = [list(stand_in.values())]
    with conn.transaction(force_rollback=True):
        build(conn, setup, builds)
        composites = conn.execute(COMPOSITES.format(filter="n.nspname = ANY(%s)"), scratch).fetchall()
        domains = conn.execute(DOMAINS.format(filter="n.nspname = ANY(%s)"), scratch).fetchall()
    return ({(real[c.schema], c.name): replace(c, schema=real[c.schema])
             for c in composite_states(composites).values()},
            {(real[d.schema], d.name): replace(d, schema=real[d.schema]) for d in domain_states(domains).values()})
