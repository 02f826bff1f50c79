"""Jinja2 rendering of playbook values, sandboxed, strict and bounded.

Every string in a play is a template. Variables may refer to other variables, so they are
rendered lazily, on first use, with a guard against cycles. Rendering runs in Jinja2's sandbox:
a playbook is data and must not reach Python internals, nor run for ever or fill the memory.
Jinja2 itself (`erpprov.load.sandbox`) is imported only once a value holds a template.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from erpprov.load.template_errors import MAX_TEMPLATE_CHARS, TemplateError


class LazyVars(Mapping[str, Any]):
    """Variables whose string values are templates, rendered on first lookup."""

    def __init__(self, raw: Mapping[str, Any], fixed: Mapping[str, Any]):
        self._raw = dict(raw)
        self._fixed = dict(fixed)  # already-final values: env, playbook_dir, inventory_hostname
        self._done: dict[str, Any] = {}
        self._active: list[str] = []

    def __getitem__(self, key: str) -> Any:
        if key in self._fixed:
            return self._fixed[key]
        if key in self._done:
            return self._done[key]
        if key not in self._raw:
            raise KeyError(key)
        if key in self._active:
            cycle = " -> ".join(self._active[self._active.index(key) :] + [key])
            raise TemplateError(f"variables refer to each other in a cycle: {cycle}")
        self._active.append(key)
        try:
            value = render_value(self._raw[key], self)
        finally:
            self._active.pop()
        self._done[key] = value
        return value

    @property
    def raw(self) -> Mapping[str, Any]:
        return self._raw

    @property
    def fixed(self) -> Mapping[str, Any]:
        return self._fixed

    def __contains__(self, key: object) -> bool:
        # Mapping's own `in` renders the value: a failing template would escape a membership test.
        return key in self._fixed or key in self._raw

    def __iter__(self) -> Iterator[str]:
        yield from self._fixed
        yield from (k for k in self._raw if k not in self._fixed)

    def __len__(self) -> int:
        return len(set(self._raw) | set(self._fixed))


def render_string(text: str, variables: Mapping[str, Any]) -> str:
    if "{" not in text:  # fast path: most values hold no template at all
        return text
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"template longer than {MAX_TEMPLATE_CHARS} characters")
    from erpprov.load.sandbox import render_template, string_template

    try:
        return render_template(string_template(text), variables)
    except Exception as exc:
        raise translated(exc) from None


def translated(exc: Exception) -> TemplateError:
    """The TemplateError to report for ``exc``, raised while rendering a template: Jinja2's own
    errors, a recursion too deep, or any error of a filter or expression (1/0, int('x'))."""
    if isinstance(exc, TemplateError):
        return exc
    if isinstance(exc, RecursionError):
        return TemplateError("template recursion too deep")
    import jinja2  # already loaded: the template that failed was compiled by it

    if isinstance(exc, jinja2.UndefinedError):
        return TemplateError(f"undefined variable: {exc.message}",
                             hint="define it in the inventory, the play's vars, or pass -e name=value")
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return TemplateError(f"template not allowed: {exc}", hint="templates cannot reach Python internals")
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return TemplateError(f"template syntax error: {exc.message}")
    return TemplateError(f"template failed: {type(exc).__name__}: {exc}")


def render_value(value: Any, variables: Mapping[str, Any]) -> Any:
    """Render every string inside ``value`` (recursively through lists and mappings)."""
    return walk_strings(value, lambda s, _path: render_string(s, variables))


def walk_strings(value: Any, fn: Callable[[str, tuple[Any, ...]], Any], path: tuple[Any, ...] = ()) -> Any:
    """``value`` with fn(text, path) applied to every string that may hold a template (has a "{").
    A container is copied only when something inside it changed: a thousand-table playbook without
    templates is walked, not rebuilt, and paths are built only on the way to a template."""
    if isinstance(value, str):
        return fn(value, path) if "{" in value else value
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return value
    copy: Any = None
    for key, item in items:
        if isinstance(item, str):
            if "{" not in item:
                continue
            new = fn(item, path + (key,))
        elif isinstance(item, (dict, list)):
            new = walk_strings(item, fn, path + (key,))
        else:
            continue
        if new is not item:
            if copy is None:
                copy = dict(value) if isinstance(value, dict) else list(value)
            copy[key] = new
    return value if copy is None else copy
