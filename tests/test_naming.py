"""How PostgreSQL prints a name: the one quote/unquote pair every caller uses (no server)."""

from __future__ import annotations

import pytest

from erpprov.postgres.naming import quote, unquote


@pytest.mark.parametrize(("name", "printed"), [
    ("public", "public"), ("_x1", "_x1"), ("key", "key"),  # an unreserved keyword stays bare
    ("Ab", '"Ab"'), ("a$b", '"a$b"'), ("$user", '"$user"'), ("1a", '"1a"'), ("", '""'),
    ("user", '"user"'), ("select", '"select"'), ('a"b', '"a""b"'),
])
def test_quote_spells_a_name_as_quote_identifier_does(name: str, printed: str) -> None:
    assert quote(name) == printed
    assert unquote(printed) == name


def test_unquote_leaves_a_bare_name_alone() -> None:
    assert unquote("C") == "C"
    assert unquote('"') == '"'
