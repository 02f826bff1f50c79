"""What cannot be created on an empty server without objects a playbook does not hold (pure).

Export leaves out the objects no file can declare (a function in C, an aggregate, a foreign
table...). A view that calls or reads one of them, a materialized view's index on such a view and
a trigger on such a relation or calling such a function (as its function or in its WHEN) cannot be
created without it either: written, they would make the file fail on any other server. So export
leaves them out as well, each named with why, and prune never drops them (a file could not bring
them back).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable

from erpprov.core.schema_objects import LiveObject, SchemaObjects

# The kinds a view or trigger names as a function (pg_proc) or reads as a relation (pg_class).
FUNCTION_KINDS = frozenset({"function", "procedure", "aggregate"})
RELATION_KINDS = frozenset({"view", "materialized_view", "foreign_table"})


def dependents(objects: SchemaObjects, roots: Iterable[LiveObject]) -> dict[LiveObject, str]:
    """The views (at any depth), materialized view indexes and triggers of ``objects`` that cannot
    be created without one of ``roots``, each with why ("it calls function public.f(text), which
    is left out")."""
    functions = {(o.schema or "", o.name): o for o in roots if o.kind in FUNCTION_KINDS}
    relations = {(o.schema or "", o.name): o for o in roots if o.kind in RELATION_KINDS}
    callers: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)  # function -> the views calling it
    readers: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)  # relation -> the views reading it
    for users, uses in ((callers, objects.view_calls), (readers, objects.view_uses)):
        for user, used in uses.items():
            for key in used:
                users[key].add(user)
    why: dict[LiveObject, str] = {}
    # Each view is queued once, when first found to need a left-out object: a walk of the view graph.
    queue = deque([("calls", key, obj, callers) for key, obj in sorted(functions.items())]
                  + [("reads", key, obj, readers) for key, obj in sorted(relations.items())])
    while queue:
        verb, key, missing, users = queue.popleft()
        for found in sorted(u for u in users.get(key, ()) if u in objects.views and u not in relations):
            view = LiveObject(objects.views[found].kind, *found)
            why[view] = f"it {verb} {missing.describe()}, which is left out"
            relations[found] = view
            queue.append(("reads", found, view, readers))
    for obj in objects.objects:
        if obj.kind == "materialized_view_index" and (obj.schema or "", obj.table or "") in relations:
            why[obj] = f"{relations[(obj.schema or '', obj.table or '')].describe()} is left out"
    in_condition: dict[tuple[str, str, str], LiveObject] = {}  # trigger -> a left-out function its WHEN calls
    for key, function in sorted(functions.items()):
        for kind, schema, table, name in sorted(objects.function_users.get(key, ())):
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
