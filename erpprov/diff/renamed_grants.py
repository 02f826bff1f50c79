"""The live state as the grants diff sees it once this plan's declared renames ran (pure): a
renamed object keeps its grants and owner, so under its new name they are nothing to grant again;
a type dropped and created again keeps neither."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from erpprov.core.actions import Action, Op
from erpprov.core.cluster import LiveDatabase, ObjectRef
from erpprov.postgres.naming import quote

# The securable kind behind each object kind whose actions rename (views' grants are tables').
_REFS = {"table": "table", "view": "table", "materialized_view": "table", "sequence": "sequence", "type": "type",
         "function": "function", "procedure": "function"}


def after_renames(live: LiveDatabase, actions: Iterable[Action]) -> LiveDatabase:
    """``live`` with each object an UPDATE renames (before/after `name`) under its new name."""
    moves: dict[ObjectRef, tuple[ObjectRef, str, str]] = {}  # old -> (new, old name, new name)
    for action in actions:
        kind = _REFS.get(action.address.kind)
        old, new = (action.before or {}).get("name"), (action.after or {}).get("name")
        if kind is None or action.op is not Op.UPDATE or not isinstance(old, str) or not isinstance(new, str):
            continue
        schema, name = action.address.parts[1], action.address.parts[2]
        # a function's address names it with its arguments, which a rename keeps
        moves[ObjectRef(kind, schema, old + name[len(new):])] = (ObjectRef(kind, schema, name), old, new)
    if not moves:
        return live

    def move(ref: ObjectRef) -> ObjectRef:
        return moves[ref][0] if ref in moves else ref

    def signature(ref: ObjectRef, spelled: str) -> str:  # `quoted_name(argument types)`
        if ref not in moves:
            return spelled
        _, old, new = moves[ref]
        return quote(new) + spelled[len(quote(old)):]

    return replace(live, acl={(move(ref), grantee): p for (ref, grantee), p in live.acl.items()},
                   owners={move(ref): owner for ref, owner in live.owners.items()},
                   signatures={move(ref): signature(ref, s) for ref, s in live.signatures.items()},
                   objects={kind: {(r.schema or "", r.name) for r in (move(ObjectRef(kind, *o)) for o in refs)}
                            for kind, refs in live.objects.items()})


def as_recreated(live: LiveDatabase, actions: Iterable[Action]) -> LiveDatabase:
    """``live`` without each type the plan drops and creates again (its own change, or taken along
    by one it uses), with its grants and owner: to the grants diff it is new, with a new type's ACL."""
    actions = list(actions)
    created = {a.address for a in actions if a.op is Op.CREATE}
    gone = {ObjectRef("type", a.address.parts[1], a.address.parts[2]) for a in actions if a.address.kind == "type"
            and (a.op is Op.REPLACE or (a.op is Op.DELETE and a.address in created))}
    if not gone:
        return live
    objects = {kind: {o for o in refs if ObjectRef(kind, *o) not in gone} for kind, refs in live.objects.items()}
    return replace(live, objects=objects, acl={k: v for k, v in live.acl.items() if k[0] not in gone},
                   owners={k: v for k, v in live.owners.items() if k not in gone})
