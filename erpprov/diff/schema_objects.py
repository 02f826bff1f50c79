"""The schema objects beside tables that the files leave alone: listed as unmanaged, never dropped
unasked (decision 6). Kinds erpprov manages take the addresses they manage out of the list."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

from psycopg import sql

from erpprov.core import model
from erpprov.core.actions import Action, Hazard, Op, Phase
from erpprov.core.address import Address
from erpprov.core.left_out import dependents
from erpprov.core.schema_objects import LiveObject, PruneUser, SchemaObjects
from erpprov.diff.result import Result, comment_changes
from erpprov.errors import ErpprovError
from erpprov.postgres import schema_ddl as ddl
from erpprov.postgres.ddl import render
from erpprov.postgres.function_ddl import clause as function_clause

_State = TypeVar("_State")
_Key = TypeVar("_Key", bound=tuple[str, ...])


def unmanaged_objects(live: SchemaObjects, database: str, managed: Collection[Address] = ()) -> list[Address]:
    """The live objects of ``database`` whose address is not ``managed``, in the order they were read."""
    kept = set(managed)
    return [address for address in (o.address(database) for o in live.objects) if address not in kept]


def managed_addresses(db: model.Database, live: SchemaObjects) -> set[Address]:
    """The addresses the file's types, sequences and views manage: their own, and the one each is
    renamed from."""
    managed: set[Address] = set()
    declared: list[tuple[str, model.Type | model.Sequence | model.View | model.MaterializedView]] = [
        *(("type", t) for t in db.types), *(("sequence", s) for s in db.sequences),
        *(("view", v) for v in db.views), *(("materialized_view", m) for m in db.materialized_views)]
    managed |= {Address("trigger", db.name, t.schema_, t.table, name) for t in db.triggers
                for name in filter(None, (t.name, t.renamed_from))}
    for kind, item in declared:
        managed.add(Address(kind, db.name, item.schema_, item.name))
        renamed_from = getattr(item, "renamed_from", None)
        if renamed_from:
            managed.add(Address(kind, db.name, item.schema_, renamed_from))
    indexed = {(m.schema_, name) for m in db.materialized_views if m.indexes is not None
               for name in filter(None, (m.name, m.renamed_from))}
    managed |= {o.address(db.name) for o in live.objects
                if o.kind == "materialized_view_index" and (o.schema, o.table) in indexed}
    return managed


def owner_and_comment(kind: str, schema: str, name: str, owner: str | None, comment: str | None,
                      have_owner: str | None, have_comment: str | None
                      ) -> tuple[list[sql.Composed], dict[str, object], dict[str, object]]:
    """ALTER ... OWNER TO and COMMENT ON where the file states them and they differ (``have_*``
    None with a new object: everything stated), with the plan's before/after."""
    statements: list[sql.Composed] = []
    before: dict[str, object] = {}
    after: dict[str, object] = {}
    if owner is not None and owner != have_owner:
        statements.append(ddl.alter(kind, schema, name, sql.SQL("OWNER TO {}").format(sql.Identifier(owner))))
        before["owner"], after["owner"] = have_owner, owner
    if comment_changes(comment, have_comment):
        statements.append(ddl.comment(kind, schema, name, comment or None))
        before["comment"], after["comment"] = have_comment, comment or None
    return statements, before, after


def renamed(kind: str, schema: str, name: str, renamed_from: str | None,
            live: Mapping[tuple[str, str], _State]) -> tuple[_State | None, list[sql.Composed]]:
    """The live object the desired one is, and the RENAME that makes it so: its namesake, else the
    object it is `renamed_from` when that one exists and the new name is free (both: an error)."""
    if not renamed_from or not declared_renames(kind.lower(), [((schema, name), (schema, renamed_from))], live):
        return live.get((schema, name)), []
    rename = ddl.alter(kind, schema, renamed_from, sql.SQL("RENAME TO {}").format(sql.Identifier(name)))
    return live[(schema, renamed_from)], [rename]


def declared_renames(kind: str, renames: Iterable[tuple[_Key, _Key]], live: Collection[_Key]) -> dict[_Key, _Key]:
    """Old key -> new key for each declared (new, old) rename still to do: the old object exists
    and the new one does not. Done already (only the new one exists) it is nothing; with both
    present the file's meaning cannot be told, so the plan stops."""
    todo: dict[_Key, _Key] = {}
    for new, old in renames:
        if old in live and new in live:
            raise ErpprovError(f"{kind} {'.'.join(new)} is renamed_from {'.'.join(old)}, but both exist",
                               hint=f"drop one of them, or remove renamed_from from {'.'.join(new)}")
        if old in live:
            todo[old] = new
    return todo


# What pruning each kind drops, and what that costs.
_PRUNED = {"trigger": (Phase.DROP_TRIGGER, Hazard.BREAKS_CALLERS),
           "view": (Phase.DROP_VIEW, Hazard.BREAKS_CALLERS),
           "materialized_view": (Phase.DROP_VIEW, Hazard.DELETES_DATA),
           "function": (Phase.DROP_FUNCTION, Hazard.BREAKS_CALLERS),
           "procedure": (Phase.DROP_FUNCTION, Hazard.BREAKS_CALLERS),
           "sequence": (Phase.DROP_SEQUENCE, Hazard.DELETES_DATA),
           "type": (Phase.DROP_TYPE, Hazard.BREAKS_CALLERS)}


def prune_objects(live: SchemaObjects, database: str, managed: Collection[Address],
                  schemas: Collection[str]) -> Result:
    """Drop the live objects of the kinds erpprov manages, in the ``schemas`` that prune, that the
    file does not declare (each a hazard); views that read others go first. Others stay unmanaged,
    as do those a file cannot declare (range types, functions in C or internal or with a BEGIN ATOMIC
    body) and those that cannot be created without such an object (a view, function or trigger
    calling a function in C: no file could bring it back, and export leaves it out)."""
    result = Result()
    if not schemas:  # every plan asks: most prune nothing
        return result
    types = live.enums.keys() | live.composites.keys() | live.domains.keys()
    undeclarable = [o for o in live.objects if not _declarable(o, live, types)]
    kept = set(managed) | {o.address(database) for o in dependents(live, undeclarable)}
    for obj in live.objects:
        address = obj.address(database)
        if obj.schema not in schemas or address in kept or not _declarable(obj, live, types):
            continue
        phase, hazard = _PRUNED[obj.kind]
        statement = _drop(obj, live)
        order = 0
        if obj.kind in ("view", "materialized_view"):  # readers first
            order = len(_readers(live, (obj.schema or "", obj.name)))
        result.actions.append(Action(address, Op.DELETE, phase, database=database, sql=(render(statement),),
                                     before={}, hazards=(hazard,), order=order,
                                     note="not in the file, in a schema that prunes"))
    return result


def _declarable(obj: LiveObject, live: SchemaObjects, types: Collection[tuple[str, str]]) -> bool:
    """Whether a file can declare ``obj``: a kind erpprov manages, but no range type (``types``:
    those it manages) and no function in C or internal or with a BEGIN ATOMIC body
    (`FunctionState.unwritable`)."""
    key = (obj.schema or "", obj.name)
    if obj.kind == "type":
        return key in types
    if obj.kind in ("function", "procedure"):
        return live.functions[key].unwritable() is None
    return obj.kind in _PRUNED


def _readers(live: SchemaObjects, key: tuple[str, str], seen: frozenset[tuple[str, str]] = frozenset()
             ) -> set[tuple[str, str]]:
    """The views that read ``key``, at any depth."""
    direct = {view for view, used in live.view_uses.items() if key in used} - seen - {key}
    return direct.union(*(_readers(live, view, seen | direct | {key}) for view in direct))


def _drop(obj: LiveObject, live: SchemaObjects) -> sql.Composed:
    schema = obj.schema or ""
    if obj.kind == "trigger":
        table = sql.Identifier(schema, obj.table or "")
        return sql.SQL("DROP TRIGGER {} ON {}").format(sql.Identifier(obj.name), table)
    if obj.kind in ("function", "procedure"):
        function = live.functions[(schema, obj.name)]
        return sql.SQL("DROP {}").format(function_clause(obj.kind.upper(), schema, function.name, function.identity))
    words = {"view": "VIEW", "materialized_view": "MATERIALIZED VIEW", "sequence": "SEQUENCE",
             "type": "DOMAIN" if (schema, obj.name) in live.domains else "TYPE"}
    return sql.SQL("DROP {} {}").format(sql.SQL(words[obj.kind]), sql.Identifier(schema, obj.name))


def prune_in_use(actions: list[Action], users: Iterable[PruneUser], database: str,
                 declared: Sequence[model.Type] = ()) -> list[Action]:
    """``actions``: the database's whole plan, its prunes among them; ``users``: what depends on
    the objects they drop; ``declared``: the database's types. PostgreSQL refuses a DROP while
    anything depends on the object: a user the plan drops before it is fine (within a phase, a
    pruned object goes after the objects that use it), and so is a declared type the plan changes
    before it so that it no longer uses it; any other stops the plan, named, rather than an apply
    failing half-way."""
    created = {a.address for a in actions if a.op is Op.CREATE}
    dropped = {a.address: a for a in actions if a.op is Op.DELETE and a.address not in created}
    order: dict[Address, int] = {}
    pending = list(users)
    for _ in range(len(pending) + 1):  # each pass settles one more link of a chain of users
        bumped = False
        for user in pending:
            used = dropped.get(user.used.address(database))
            if used is None:  # taken along by another drop already
                continue
            part = dropped.get(Address(user.part[0], database, *user.part[1:])) if user.part else None
            if part is not None and part.phase < used.phase:  # that part of a table goes first
                continue
            holder = dropped.get(Address(user.holder, database, user.holder_schema or "", user.holder_name or "")
                                 ) if user.holder else None
            if holder is None and user.holder == "type":
                holder = _released(actions, user, declared, database)
            if holder is None or holder.phase > used.phase:
                raise ErpprovError(f"prune would drop {user.used.describe()}, but {user.what} still uses it",
                                   hint="declare it in the files, or stop using it first (apply that), then prune")
            if holder.phase == used.phase:
                rank = order.get(holder.address, holder.order) + 1
                if rank > order.get(used.address, used.order):
                    order[used.address], bumped = rank, True
        if not bumped:
            break
    return [replace(a, order=order[a.address]) if a.address in order else a for a in actions]


def _released(actions: list[Action], user: PruneUser, declared: Sequence[model.Type], database: str
              ) -> Action | None:
    """The plan's first change of the declared domain or composite type that holds ``user``, when
    the file's type no longer names the object the prune drops (its attribute types, base type,
    default and checks; a name in them, even in another sense, keeps the refusal)."""
    key = (user.holder_schema or "", user.holder_name or "")
    want = next((t for t in declared if (t.schema_, t.name) == key), None)
    if want is None:
        return None
    text = " ".join([*(a.type for a in want.attributes or ()), want.base_type or "", want.default or "",
                     *(c.expression for c in want.checks)])
    if re.search(rf"(?<![\w$]){re.escape(user.used.name)}(?![\w$])", text, re.IGNORECASE):
        return None
    address = Address("type", database, *key)
    changes = [a for a in actions if a.address == address]
    return min(changes, key=lambda a: (a.phase, a.order), default=None)


def refuse_reading_dropped(reads: Mapping[tuple[str, str], set[tuple[str, str]]],
                           dropped: Collection[tuple[str, str]]) -> None:
    """``reads``: what each declared view reads (the scratch build's pg_depend); ``dropped``: the
    tables the plan drops. A view the files keep cannot read one: DROP TABLE would fail at apply."""
    for view, read in sorted(reads.items()):
        for table in sorted(read & set(dropped)):
            raise ErpprovError(f"view {'.'.join(view)} reads table {'.'.join(table)}, which this apply drops "
                               "(a schema that prunes, and the files do not declare it)",
                               hint="declare the table, or change the view's query")
