"""Where an object sits: its kind and its name parts, e.g. ("table", ("erp", "public", "users")).

An Address is also its own text, the form plans show and save (`table.erp.public.users`). A kind
has a fixed number of parts, so only a part before the last can be mistaken: one that holds a
dot, a double quote or nothing is written in double quotes (doubled inside). Two objects never
share a text form — `table.erp."a.b".c` and `table.erp.a.b.c` are two tables — and the common
names read as before (`file.out/app.env`). Code that needs the kind or a part reads `.kind` /
`.parts` and never splits the text again.
"""

from __future__ import annotations

from typing import Any


def _part(part: str) -> str:
    if part and "." not in part and '"' not in part:
        return part
    return '"' + part.replace('"', '""') + '"'


class Address(str):
    kind: str
    parts: tuple[str, ...]

    def __new__(cls, kind: str, *parts: str) -> Address:
        text = ".".join([kind, *(_part(p) for p in parts[:-1]), *parts[-1:]])
        address = super().__new__(cls, text)
        address.kind, address.parts = kind, tuple(parts)
        return address

    def __getnewargs__(self) -> tuple[Any, ...]:  # copy and pickle rebuild it from its structure
        return (self.kind, *self.parts)

    @property
    def name(self) -> str:
        """The text after the kind, as a reader says it (`erp.public.users`)."""
        return self[len(self.kind) + 1:]
