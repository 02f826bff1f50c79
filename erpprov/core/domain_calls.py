"""Which parts of a declared domain call a function its database declares (docs/design.md,
decision 4). A domain is created before the functions, which may take or return it; its default
and checks that call one of the declared functions are added after them (`ALTER DOMAIN`), in the
scratch builds of `plan` as in `apply`. A function that the domain's own default or check calls
and that takes or returns the domain is a cycle no order resolves: the file is refused.

Calls are read by name from the parsed expression: a qualified name is that schema's function, an
unqualified one may be any schema's (the search path decides, which the file does not say).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from erpprov.core import fragments

if TYPE_CHECKING:
    from erpprov.core import model


def calls(expression: str, functions: Sequence[model.Function]) -> list[model.Function]:
    """The functions of ``functions`` that ``expression`` (proven) calls by name."""
    if not functions:
        return []
    called = fragments.called_functions(expression)
    return [f for f in functions if (f.schema_, f.name) in called or (None, f.name) in called]


def waiting_default(domain: model.Type, functions: Sequence[model.Function]) -> bool:
    return domain.default is not None and bool(calls(domain.default, functions))


def waiting_checks(domain: model.Type, functions: Sequence[model.Function]) -> list[model.Check]:
    return [c for c in domain.checks if calls(c.expression, functions)]


def waits(domain: model.Type, functions: Sequence[model.Function]) -> bool:
    """Whether part of ``domain`` can only be added once ``functions`` exist."""
    return waiting_default(domain, functions) or bool(waiting_checks(domain, functions))


def _uses(function: model.Function, domain: model.Type) -> bool:
    types = [a.type for a in function.arguments] + [c.type for c in function.returns_table]
    types += [function.returns] if function.returns is not None else []
    return any(fragments.type_reference(t) in ((domain.schema_, domain.name), (None, domain.name)) for t in types)


def cycle(domain: model.Type, functions: Sequence[model.Function]) -> tuple[int | None, model.Function] | None:
    """The first part of ``domain`` that calls a function of ``functions`` taking or returning the
    domain itself — None for its default, else the index of the check — with that function; None
    when there is none."""
    parts: list[tuple[int | None, str]] = [(None, domain.default)] if domain.default is not None else []
    parts += list(enumerate(c.expression for c in domain.checks))
    for part, expression in parts:
        for function in calls(expression, functions):
            if _uses(function, domain):
                return part, function
    return None
