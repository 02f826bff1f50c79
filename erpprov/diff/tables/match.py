"""Pairing a table's desired keys, checks, foreign keys or indexes with its live ones.

A declared name matches by name. An unnamed object (whose name in the desired state is
PostgreSQL's choice) first matches a live object of the same shape whatever its name — so a
renamed table keeps its `old_pkey` — and only then by name. A name alone never pairs a key with
a check, nor a constraint with an index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, NamedTuple, TypeVar

from erpprov.core.tables import ConstraintState, IndexState

# Constrained rather than bound: both sides of one match are the same kind of object.
Obj = TypeVar("Obj", ConstraintState, IndexState)


class Matching(NamedTuple, Generic[Obj]):
    pairs: list[tuple[Obj, Obj]]  # (desired, live)
    missing: list[Obj]  # desired, with no live counterpart
    extra: list[Obj]  # usable live ones that no desired object claimed


def _everything(obj: ConstraintState | IndexState) -> bool:
    return True


def match(wanted: Iterable[Obj], live: Iterable[Obj],
          usable: Callable[[Obj], bool] = _everything) -> Matching[Obj]:
    """Live objects that are not `usable` take no part: neither paired nor reported extra."""
    wanted, pool = list(wanted), [o for o in live if usable(o)]
    pairs: list[tuple[Obj, Obj]] = []
    missing: list[Obj] = []
    by_name = {o.name: o for o in pool}
    claimed: set[str] = set()

    def claim(w: Obj, o: Obj) -> None:
        pairs.append((w, o))
        claimed.add(o.name)

    # Declared names first, so that no shape match takes a live object a name asks for.
    rest = []
    for w in wanted:
        o = by_name.get(w.name)
        if w.declared_name and o is not None and _kind(o) == _kind(w):
            claim(w, o)
        else:
            rest.append(w)
    second = []
    for w in rest:
        twin = next((o for o in pool if o.name not in claimed and o.shape() == w.shape()), None) \
            if not w.declared_name else None
        if twin is not None:
            claim(w, twin)
        else:
            second.append(w)
    for w in second:
        o = by_name.get(w.name)
        if o is not None and o.name not in claimed and _kind(o) == _kind(w):
            claim(w, o)
        else:
            missing.append(w)
    return Matching(pairs, missing, [o for o in pool if o.name not in claimed])


def _kind(obj: ConstraintState | IndexState) -> str:
    return obj.kind if isinstance(obj, ConstraintState) else "index"
