"""What cannot be created on an empty server without objects a playbook does not hold (pure).

Export leaves out the objects no file can declare (a function in C, an aggregate, a range type, a
foreign table...). A view that calls or reads one of them, a function or procedure whose argument
default or BEGIN ATOMIC body calls one, or that takes, returns or reads one, a domain over such a
type or a composite type with an attribute of it (all as pg_depend records them), a materialized
view's index on such a view and a trigger on such a relation or calling such a function (as its
function or in its WHEN) cannot be created without it either: written, they would make the file
fail on any other server. So export leaves them out as well, each named with why, and prune never
drops them (a file could not bring them back).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable

from erpprov.core.schema_objects import LiveObject, SchemaObjects

# The kinds a view, function or trigger names as a function (pg_proc) or reads as a relation (pg_class).
FUNCTION_KINDS = frozenset({"function", "procedure", "aggregate"})
RELATION_KINDS = frozenset({"view", "materialized_view", "foreign_table"})
# How a user needs what it needs: by its catalog (SchemaObjects.function_needs says "what").
_VERBS = {"function": "calls", "relation": "reads", "type": "uses"}

_Key = tuple[str, str, str]  # (what: function, relation or type; schema; name)


def _key(obj: LiveObject) -> _Key | None:
    what = ("function" if obj.kind in FUNCTION_KINDS else "relation" if obj.kind in RELATION_KINDS
            else "type" if obj.kind == "type" else None)
    return (what, obj.schema or "", obj.name) if what else None


def _users(objects: SchemaObjects) -> dict[_Key, set[LiveObject]]:
    """What is needed -> the views, functions, domains and composite types of ``objects`` that call,
    read or use it."""
    users: dict[_Key, set[LiveObject]] = defaultdict(set)
    for what, uses in (("function", objects.view_calls), ("relation", objects.view_uses)):
        for view, used in uses.items():
            if view in objects.views:
                for schema, name in used:
                    users[(what, schema, name)].add(LiveObject(objects.views[view].kind, *view))
    for key, used_by in objects.type_users.items():
        for kind, schema, name, _ in used_by:
            variety = ("domain" if (schema, name) in objects.domains
                       else "composite" if (schema, name) in objects.composites else None)
            if kind == "type" and variety is not None:
                users[("type", *key)].add(LiveObject("type", schema, name, variety=variety))
    for key, needed in objects.function_needs.items():
        function = objects.functions.get(key)
        if function is not None:
            for need in needed:
                users[need].add(LiveObject(function.kind, *key))
    return users


def _order(obj: LiveObject) -> tuple[str, str, str, str]:
    return obj.kind, obj.schema or "", obj.table or "", obj.name


def dependents(objects: SchemaObjects, roots: Iterable[LiveObject]) -> dict[LiveObject, str]:
    """The views, functions and procedures, domains and composite types (each at any depth),
    materialized view indexes and triggers of ``objects`` that cannot be created without one of
    ``roots``, each with why ("it calls function public.f(text), which is left out")."""
    left = {key: o for o in roots if (key := _key(o)) is not None}
    users = _users(objects)
    why: dict[LiveObject, str] = {}
    # Each user is queued once, when first found to need a left-out object: a walk of the graph.
    queue = deque(sorted(left.items(), key=lambda item: item[0]))
    while queue:
        (what, schema, name), missing = queue.popleft()
        for user in sorted(users.get((what, schema, name), ()), key=_order):
            key = _key(user)
            if key is None or key in left:
                continue
            why[user] = f"it {_VERBS[what]} {missing.describe()}, which is left out"
            left[key] = user
            queue.append((key, user))
    relations = {(schema, name): o for (what, schema, name), o in left.items() if what == "relation"}
    functions = {(schema, name): o for (what, schema, name), o in left.items() if what == "function"}
    for obj in objects.objects:
        if obj.kind == "materialized_view_index" and (obj.schema or "", obj.table or "") in relations:
            why[obj] = f"{relations[(obj.schema or '', obj.table or '')].describe()} is left out"
    in_condition: dict[tuple[str, str, str], LiveObject] = {}  # trigger -> a left-out function its WHEN calls
    for signature, function in sorted(functions.items()):
        for kind, schema, table, name in sorted(objects.function_users.get(signature, ())):
            if kind == "trigger":
                in_condition.setdefault((schema, table, name), function)
    for (schema, table, name), trigger in sorted(objects.triggers.items()):
        obj = LiveObject("trigger", schema, name, table)
        # a trigger function takes no arguments
        called = functions.get((trigger.function[0], f"{trigger.function[1]}()")) or in_condition.get(
            (schema, table, name))
        if (schema, table) in relations:
            why[obj] = f"{relations[(schema, table)].describe()} is left out"
        elif called is not None:
            why[obj] = f"it calls {called.describe()}, which is left out"
    return why
