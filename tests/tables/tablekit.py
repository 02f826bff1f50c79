"""Helpers for the table reconciler tests: plan, apply (through the real executor), converge."""

from __future__ import annotations

from collections.abc import Callable, Collection

import psycopg
import yaml
from pydantic import TypeAdapter

from erpprov.apply import executor
from erpprov.apply.explain import explain_failure
from erpprov.core import model
from erpprov.core.actions import Action
from erpprov.core.tables import TableDiff, TablesState
from erpprov.plan.build import diff_read_rows
from erpprov.state.canon import canonicalize
from erpprov.state.table_catalog import inspect_tables


def tables(text: str) -> list[model.Table]:
    """Tables from a YAML list, validated by the model, as a playbook would give them."""
    return TypeAdapter(list[model.Table]).validate_python(yaml.safe_load(text))


def plan(conn: psycopg.Connection, desired: list[model.Table], prune: Collection[str] = ()) -> TableDiff:
    live = inspect_tables(conn)
    return diff_read_rows(conn, canonicalize(conn, desired, live), live, database=conn.info.dbname,
                          prune_schemas=prune)[0]


def apply(conn: psycopg.Connection, actions: list[Action], warn: Callable[[str], None] | None = None) -> None:
    """The real executor, as apply runs it: one transaction for the database (or several, said
    through ``warn``, past the server's lock budget), and a failure explained on a fresh connection
    (`ApplyFailed`)."""
    info = conn.info
    settings = model.Connection.model_validate({
        "pg_host": info.host, "pg_port": info.port, "pg_user": info.user, "pg_password": info.password,
        "pg_database": info.dbname})
    executor.execute(actions, settings, conn, lambda kind, action: None, explain_failure, warn)


def describe(actions: list[Action]) -> str:
    return "\n".join(f"{a.op.value} {a.address} {a.before} -> {a.after}\n    " +
                     "\n    ".join(s.text for s in a.sql) for a in actions)


def converge(conn: psycopg.Connection, desired: list[model.Table], prune: Collection[str] = ()) -> TableDiff:
    """Plan, apply, and check that a fresh plan is empty. Returns the first plan."""
    first = plan(conn, desired, prune)
    apply(conn, first.actions)
    again = plan(conn, desired, prune)
    assert not again.actions, "not converged; second plan:\n" + describe(again.actions)
    return first


def assert_same(live: TablesState, desired: TablesState) -> None:
    """Live holds exactly the desired tables: the same columns, and constraints and indexes of the
    same shapes, with every declared name present. (Unnamed objects may carry another name than
    the predicted one, e.g. `t_lower_idx1` when a sibling held `t_lower_idx` at creation.)"""
    assert set(live.tables) == set(desired.tables)
    for key, want in desired.tables.items():
        have = live.tables[key]
        assert sorted(have.columns, key=lambda c: c.name) == sorted(want.columns, key=lambda c: c.name), key
        for kind in ("constraints", "indexes"):
            got, wanted = getattr(have, kind), getattr(want, kind)
            assert sorted(map(repr, (o.shape() for o in got))) == sorted(map(repr, (o.shape() for o in wanted))), \
                (key, kind, got, wanted)
            by_name = {o.name: o for o in got}
            for o in wanted:
                if o.declared_name:
                    assert o.name in by_name and by_name[o.name].shape() == o.shape(), (key, o)
        assert (have.comment, have.owner if want.owner else None) == (want.comment, want.owner), key


def managed_view(state: TablesState, owners: bool = False) -> dict:
    """The compared content of a state, column order aside (columns added later come last live)."""
    return {key: (sorted(t.columns, key=lambda c: c.name), sorted(t.constraints, key=lambda c: c.name),
                  sorted(t.indexes, key=lambda i: i.name), t.comment, t.owner if owners else None)
            for key, t in state.tables.items()}


def assert_declared(conn: psycopg.Connection, desired: list[model.Table]) -> None:
    """The declared tables live exactly as declared (what an empty re-plan alone cannot show: a
    diff that ignored a change would plan nothing on both runs)."""
    live = inspect_tables(conn)
    declared = canonicalize(conn, desired, live)
    assert_same(TablesState({key: live.tables[key] for key in declared.tables if key in live.tables}), declared)
