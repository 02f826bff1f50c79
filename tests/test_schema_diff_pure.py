"""Pure tests (no server) of the schema-object diff: materialized views' indexes, and prunes of
objects something still uses."""

from __future__ import annotations

import pytest

from erpprov.core import model
from erpprov.core.actions import Action, Op, Phase
from erpprov.core.schema_objects import LiveObject, PruneUser, ViewState
from erpprov.core.tables import IndexKey, IndexState
from erpprov.diff.schema_objects import prune_in_use
from erpprov.diff.views import Uses, diff_views
from erpprov.errors import ErpprovError

KEY = ("public", "totals")


def _index(name: str, column: str, *, unique: bool = False, declared: bool = True) -> IndexState:
    return IndexState(name=name, unique=unique, method="btree", keys=(IndexKey(column=column, expression=None),),
                      declared_name=declared, columns=frozenset({column}))


def _diff(live: tuple[IndexState, ...], wanted: tuple[IndexState, ...], query: str = "SELECT 1 AS n"):  # type: ignore[no-untyped-def]
    view = model.MaterializedView.model_validate({"name": "totals", "query": query, "indexes": []})
    state = ViewState("public", "totals", True, "SELECT 1 AS n;", (("n", "integer"),))
    canonical = {KEY: ViewState("public", "totals", True, f"{query};", (("n", "integer"),))}
    return diff_views([view], canonical, {KEY: ViewState(**{**state.__dict__, "index_states": live})},
                      Uses(live={}, desired={}), {}, "db", {KEY: wanted}).actions


def test_one_changed_index_is_rebuilt_alone_and_an_undeclared_one_dropped():
    live = (_index("a", "n"), _index("b", "n", unique=True), _index("gone", "n"))
    actions = _diff(live, (_index("a", "n"), _index("b", "n")))
    assert sorted((a.address.parts[-1], a.op) for a in actions) == [("b", Op.REPLACE), ("gone", Op.DELETE)]
    assert all(a.address.kind == "materialized_view_index" for a in actions)


def test_an_unnamed_index_matches_a_live_one_of_its_shape_whatever_its_name():
    assert _diff((_index("totals_n_idx1", "n"),), (_index("totals_n_idx", "n", declared=False),)) == []


def test_a_rebuilt_view_creates_its_declared_indexes_in_its_own_action():
    actions = _diff((_index("a", "n"),), (_index("a", "n"), _index("c", "n", unique=True)), query="SELECT 2 AS n")
    assert [(a.op, a.phase) for a in actions] == [(Op.DELETE, Phase.VIEW_DROP), (Op.CREATE, Phase.VIEW)]
    assert sum("CREATE" in s.text and "INDEX" in s.text for s in actions[1].sql) == 2


def _drop(kind: str, name: str, phase: Phase) -> Action:
    return Action(LiveObject(kind, "app", name).address("db"), Op.DELETE, phase, database="db")


def test_a_prune_whose_object_a_kept_one_uses_stops_the_plan_naming_the_user():
    users = [PruneUser(LiveObject("function", "app", "f()"), "default value for column c of table app.t",
                       "table", "app", "t")]
    with pytest.raises(ErpprovError, match=r"default value for column c of table app\.t still uses it"):
        prune_in_use([_drop("function", "f()", Phase.DROP_FUNCTION)], users, "db")


def test_users_dropped_too_go_first_within_a_phase_and_across_phases():
    users = [PruneUser(LiveObject("function", "app", "f()"), "function app.g()", "function", "app", "g()"),
             PruneUser(LiveObject("function", "app", "f()"), "view app.v", "view", "app", "v")]
    f, g = _drop("function", "f()", Phase.DROP_FUNCTION), _drop("function", "g()", Phase.DROP_FUNCTION)
    actions = prune_in_use([f, g, _drop("view", "v", Phase.DROP_VIEW)], users, "db")
    assert actions[0].order > actions[1].order  # f after g, which calls it
    # a user dropped after the object (a later phase) cannot be
    with pytest.raises(ErpprovError):
        prune_in_use([_drop("type", "ty", Phase.DROP_TYPE), f],
                     [PruneUser(LiveObject("function", "app", "f()"), "type app.ty", "type", "app", "ty")], "db")
