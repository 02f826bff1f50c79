"""Pure tests (no server) of the schema-object diff: materialized views' indexes, prunes of
objects something still uses, and the types a recreated type takes along."""

from __future__ import annotations

import pytest

from erpprov.core import model
from erpprov.core.actions import Action, Op, Phase, execution_order
from erpprov.core.left_out import dependents
from erpprov.core.schema_objects import FunctionState, LiveObject, PruneUser, SchemaObjects, TriggerState, ViewState
from erpprov.core.tables import IndexKey, IndexState
from erpprov.diff.schema_objects import prune_in_use, prune_objects
from erpprov.diff.type_users import take_type_users_along
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


def _function(name: str, language: str, returns: str = "integer") -> FunctionState:
    return FunctionState("app", name, False, "", "", returns, language, "x", ())


def _trigger(name: str, function: str) -> TriggerState:
    return TriggerState("app", "items", name, "before", ("insert",), (), "row", None, ("app", function), (),
                        False, False, False, True)


def _objects() -> SchemaObjects:
    """A function in C, a view calling it and one reading that view (named to come first), a view calling an aggregate,
    a trigger calling a trigger function in C, and an ordinary view, function and trigger."""
    functions = {("app", "c_len()"): _function("c_len", "c"), ("app", "c_trig()"): _function("c_trig", "c", "trigger"),
                 ("app", "ok()"): _function("ok", "plpgsql", "trigger")}
    views = {("app", name): ViewState("app", name, False, "SELECT 1;", ())
             for name in ("calls", "a_reads", "sums", "plain")}
    triggers = {("app", "items", "t_c"): _trigger("t_c", "c_trig"), ("app", "items", "t_ok"): _trigger("t_ok", "ok")}
    objects = [LiveObject("function", "app", key[1]) for key in functions]
    objects += [LiveObject("aggregate", "app", "total(integer)")]
    objects += [LiveObject("view", "app", key[1]) for key in views]
    objects += [LiveObject("trigger", "app", key[2], "items") for key in triggers]
    return SchemaObjects(objects, views=views, functions=functions, triggers=triggers,
                         view_calls={("app", "calls"): {("app", "c_len()")},
                                     ("app", "sums"): {("app", "total(integer)")}, ("app", "plain"): {("app", "ok()")}},
                         view_uses={("app", "a_reads"): {("app", "calls")}})


def test_what_cannot_be_created_without_a_left_out_object_is_named_with_the_object_at_any_depth():
    live = _objects()
    roots = [o for o in live.objects if o.kind == "aggregate" or o.name.startswith("c_")]
    assert {o.describe(): why for o, why in dependents(live, roots).items()} == {
        "view app.calls": "it calls function app.c_len(), which is left out",
        "view app.a_reads": "it reads view app.calls, which is left out",  # read before it: a second pass
        "view app.sums": "it calls aggregate app.total(integer), which is left out",
        "trigger t_c on app.items": "it calls function app.c_trig(), which is left out",
    }


def test_prune_keeps_what_no_file_could_bring_back_and_drops_the_rest():
    actions = prune_objects(_objects(), "db", (), {"app"}).actions
    assert sorted(a.address.parts[-1] for a in actions) == ["ok()", "plain", "t_ok"]


def _types(*declared: dict) -> list[model.Type]:  # type: ignore[type-arg]
    return [model.Type.model_validate(t) for t in declared]


USED = {("app", "e"): {("type", "app", "d", "")}, ("app", "d"): {("type", "app", "z", "")}}


def test_the_users_of_a_recreated_type_are_dropped_ahead_of_it_users_first_and_created_again_after():
    declared = _types({"name": "e", "schema": "app", "enum": ["b", "a"]},
                      {"name": "d", "schema": "app", "base_type": "app.e"},
                      {"name": "z", "schema": "app", "attributes": [{"name": "x", "type": "app.d"}]})
    enum = Action(LiveObject("type", "app", "e").address("db"), Op.REPLACE, Phase.TYPE, database="db")
    changed = Action(LiveObject("type", "app", "z").address("db"), Op.UPDATE, Phase.TYPE, database="db", order=5)
    plan = execution_order(take_type_users_along([enum, changed], USED, declared, [("app", "d")], "db", []))
    assert [(a.op, a.address.parts[-1]) for a in plan] == [
        (Op.DELETE, "z"), (Op.DELETE, "d"), (Op.REPLACE, "e"), (Op.CREATE, "d"), (Op.CREATE, "z")]
    assert plan[1].sql[0].text == 'DROP DOMAIN "app"."d"'


def test_a_user_of_a_recreated_type_the_files_leave_out_goes_ahead_if_pruned_else_stops_the_plan():
    declared = _types({"name": "e", "schema": "app", "enum": ["b", "a"]})
    enum = Action(LiveObject("type", "app", "e").address("db"), Op.REPLACE, Phase.TYPE, database="db")
    with pytest.raises(ErpprovError, match=r"type app\.d uses a type this apply drops and creates again"):
        take_type_users_along([enum], USED, declared, [("app", "d")], "db", [])
    pruned = [enum, _drop("type", "d", Phase.DROP_TYPE), _drop("type", "z", Phase.DROP_TYPE)]
    plan = execution_order(take_type_users_along(pruned, USED, declared, [("app", "d")], "db", []))
    assert [(a.address.parts[-1], a.phase) for a in plan] == [("z", Phase.TYPE), ("d", Phase.TYPE),
                                                             ("e", Phase.TYPE)]
    with pytest.raises(ErpprovError, match=r"column app\.t\.k uses it"):
        take_type_users_along(pruned, {**USED, ("app", "d"): {("column", "app", "t", "k")}}, declared,
                              [("app", "d")], "db", [])


def test_a_prune_accepts_a_declared_type_changed_before_it_so_that_it_no_longer_names_the_pruned_one():
    user = [PruneUser(LiveObject("type", "app", "e"), "column x of composite type app.c", "type", "app", "c",
                      ("column", "app", "c", "x"))]
    change = Action(LiveObject("type", "app", "c").address("db"), Op.UPDATE, Phase.TYPE, database="db")
    actions = [_drop("type", "e", Phase.DROP_TYPE), change]
    assert prune_in_use(actions, user, "db", _types({"name": "c", "schema": "app",
                                                     "attributes": [{"name": "x", "type": "text"}]})) == actions
    with pytest.raises(ErpprovError, match=r"column x of composite type app\.c still uses it"):
        prune_in_use(actions, user, "db", _types({"name": "c", "schema": "app",
                                                  "attributes": [{"name": "x", "type": "app.e[]"}]}))
