"""What changing a column's type risks: the rule reads both types as PostgreSQL prints them."""

from __future__ import annotations

import re

from erpprov.core.actions import Hazard

_TYPE = re.compile(r"^(?P<base>[^(\[]+)\s*(?:\((?P<args>[^)]*)\))?(?P<rest>.*)$", re.DOTALL)
_INTEGER_RANK = {"smallint": 1, "integer": 2, "bigint": 3}
_NO_REWRITE_WIDENING = {"character varying", "numeric", "bit varying"}  # larger limits keep the bytes
_TEXTUAL = {"character varying", "text"}


def _parts(type_: str) -> tuple[str, tuple[int, ...], str]:
    match = _TYPE.match(type_)
    if not match:
        return type_, (), ""
    args = tuple(int(a) for a in match.group("args").split(",") if a.strip().isdigit()) if match.group("args") else ()
    return match.group("base").strip(), args, match.group("rest").strip()


def type_change(old: str, new: str) -> tuple[set[Hazard], str]:
    """Hazards of ALTER COLUMN TYPE old -> new (both in format_type spelling), and a note.
    Without rows nothing can be lost; the caller drops data-dependent hazards for empty tables."""
    if old == new:
        return set(), ""
    (ob, oa, orest), (nb, na, nrest) = _parts(old), _parts(new)
    if ob == nb and orest == nrest:
        if not na or (len(na) == len(oa) and all(n >= o for n, o in zip(na, oa, strict=True))
                      and (ob != "numeric" or na[1:] == oa[1:])):
            if ob in _NO_REWRITE_WIDENING:
                return set(), f"{old} -> {new} widens the limit: no rewrite"
            return {Hazard.REWRITES_TABLE}, f"{old} -> {new} rewrites the table"
        return ({Hazard.DELETES_DATA, Hazard.REWRITES_TABLE, Hazard.VALIDATES_DATA},
                f"{old} -> {new} narrows the type: longer values fail the cast or are cut")
    if ob in _TEXTUAL and nb == "text" and not orest and not nrest:
        return set(), f"{old} -> {new} is binary compatible: no rewrite"
    if ob in _INTEGER_RANK and nb in _INTEGER_RANK and not orest and not nrest:
        if _INTEGER_RANK[nb] > _INTEGER_RANK[ob]:
            return {Hazard.REWRITES_TABLE}, f"{old} -> {new} rewrites the table"
        return ({Hazard.DELETES_DATA, Hazard.REWRITES_TABLE, Hazard.VALIDATES_DATA},
                f"{old} -> {new} narrows the type: values out of range make it fail")
    if nb in _TEXTUAL and not na and not nrest:  # anything prints as text
        return {Hazard.REWRITES_TABLE}, f"{old} -> {new} rewrites the table"
    return ({Hazard.REWRITES_TABLE, Hazard.VALIDATES_DATA, Hazard.DELETES_DATA},
            f"{old} -> {new} casts every value: values that do not convert make it fail, some may lose precision")
