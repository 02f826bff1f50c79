"""How PostgreSQL prints a name (`quote`, `unquote`), and the names it gives unnamed keys, unique
constraints, foreign keys and plain indexes.

Building every table in the scratch schema just to learn `users_pkey` costs seconds at a thousand
tables (each index is a relation with files), so for these four shapes we follow PostgreSQL's own
rule (makeObjectName / ChooseRelationName in src/backend/commands/indexcmds.c): `table_cols_label`,
both parts shortened alternately to fit 63 bytes on a character boundary, then a number appended to
the label until the name is free. Checks and expression indexes get their names from the scratch
build instead. Convergence never rests on this prediction: the diff matches an unnamed object to a
live one by its shape first, and creates new ones with the predicted name spelled out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

NAMEDATALEN = 64
_PLAIN = re.compile(r"[a-z_][a-z0-9_]*")


@lru_cache(maxsize=1)
def _keywords_needing_quotes() -> frozenset[str]:
    # Imported on first use, like the parser in core.fragments; pglast's lists are the server's.
    from pglast import keywords

    return frozenset(keywords.RESERVED_KEYWORDS | keywords.COL_NAME_KEYWORDS | keywords.TYPE_FUNC_NAME_KEYWORDS)


def quote(name: str) -> str:
    """``name`` as PostgreSQL prints an identifier (quote_identifier in ruleutils.c): bare when it
    is lower-case letters, digits and `_` not starting with a digit and no keyword beyond the
    unreserved ones, else in double quotes with inner quotes doubled. pg_get_expr and the stored
    text of list settings (search_path) spell names this way."""
    if _PLAIN.fullmatch(name) and name not in _keywords_needing_quotes():
        return name
    return '"' + name.replace('"', '""') + '"'


def unquote(name: str) -> str:
    """``name`` without the double quotes an identifier may be printed in (`"C"` -> `C`)."""
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name


def _clip(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` within max_bytes of UTF-8, never splitting a character."""
    out = text.encode("utf-8")[:max_bytes]
    return out.decode("utf-8", errors="ignore")


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def make_object_name(name1: str, name2: str | None, label: str) -> str:
    len1 = _size(name1)
    len2 = _size(name2) if name2 else 0
    overhead = _size(label) + 1 + (1 if name2 else 0)
    available = NAMEDATALEN - 1 - overhead
    if len1 + len2 <= available:  # the common case: nothing to shorten
        return f"{name1}_{name2}_{label}" if name2 else f"{name1}_{label}"
    while len1 + len2 > available:
        if len1 > len2:
            len1 -= 1
        else:
            len2 -= 1
    parts = [_clip(name1, len1)]
    if name2:
        parts.append(_clip(name2, len2))
    return "_".join(parts) + "_" + label


def column_addition(columns: Iterable[str]) -> str:
    """ChooseIndexNameAddition: the column names joined by '_', cut once it is long enough."""
    text = ""
    for column in columns:
        text = column if not text else text + "_" + column
        if _size(text) >= NAMEDATALEN:
            break
    return text if _size(text) < NAMEDATALEN else _clip(text, NAMEDATALEN - 1)


def choose_name(table: str, columns: Iterable[str] | None, label: str, taken: set[str]) -> str:
    """A free name in the schema whose used names are `taken`; the choice is added to it."""
    addition = column_addition(columns) if columns is not None else None
    suffix = 0
    while True:
        name = make_object_name(table, addition, label if suffix == 0 else f"{label}{suffix}")
        if name not in taken:
            taken.add(name)
            return name
        suffix += 1
