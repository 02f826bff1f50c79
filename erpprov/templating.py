"""Jinja2 rendering of playbook values, sandboxed, strict and bounded.

Every string in a play is a template. Variables may refer to other variables, so they are
rendered lazily, on first use, with a guard against cycles. Rendering runs in Jinja2's sandbox:
a playbook is data and must not reach Python internals, nor run for ever or fill the memory.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import ChainMap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import jinja2
from jinja2.sandbox import SandboxedEnvironment

MAX_TEMPLATE_CHARS = 100_000  # of a template's source
MAX_OUTPUT_CHARS = 1_000_000  # of what one template renders, and of any value built by * or **
RENDER_SECONDS = 5.0


class TemplateError(Exception):
    """A rendering failure; the loader adds the file:line of the value being rendered."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


def _lookup(kind: str, name: str) -> str:
    """Ansible's lookup('env', NAME) and lookup('file', PATH): secrets kept outside the repository,
    such as /run/secrets/db_password, without putting them in a variable file."""
    if kind == "env":
        return os.environ.get(name, "")
    if kind == "file":
        try:
            return Path(name).expanduser().read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            raise TemplateError(f"lookup('file', {name!r}): {exc.strerror}") from None
    raise TemplateError(f"lookup({kind!r}, ...) is not supported", hint="use lookup('env', NAME) or lookup('file', PATH)")


class BoundedSandbox(SandboxedEnvironment):
    """The sandbox, plus a cap on the values `*` and `**` build ('x' * 10**10 would fill memory
    before any output limit could see it)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: jinja2.runtime.Context, op: str, left: Any, right: Any) -> Any:
        if op == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 4096:
            raise TemplateError(f"{left} ** {right} is too large")
        if op == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and len(seq) * times > MAX_OUTPUT_CHARS:
                    raise TemplateError(f"a value of {len(seq) * times} elements is too large")
        return super().call_binop(context, op, left, right)


def environment(loader: jinja2.BaseLoader | None = None) -> BoundedSandbox:
    env = BoundedSandbox(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                         autoescape=False)
    env.globals["lookup"] = _lookup
    # urlencode keeps "/" as it is, which breaks a password inside postgresql://user:password@host
    env.filters["urlquote"] = lambda value: quote(str(value), safe="")
    return env


_ENV = environment()
_armed = threading.local()


@contextmanager
def deadline(seconds: float = RENDER_SECONDS) -> Iterator[None]:
    """Stop a template that runs too long (nested loops over huge ranges). SIGALRM only exists in
    the main thread, where files are loaded; elsewhere the output and value caps still hold."""
    if threading.current_thread() is not threading.main_thread() or getattr(_armed, "on", False) \
            or not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise TemplateError(f"template still rendering after {seconds:.0f}s; it was stopped",
                            hint="templates must not loop over huge ranges")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    _armed.on = True
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        _armed.on = False


def render_template(template: jinja2.Template, variables: Mapping[str, Any]) -> str:
    """Render within the time and size bounds. shared=True keeps the variables lazy (no copy);
    the globals (range, lookup) come after them."""
    context = template.new_context(ChainMap(variables, template.globals), shared=True)  # type: ignore[arg-type]
    with deadline():
        return bounded_concat(template.root_render_func(context))


def bounded_concat(pieces: Iterator[str]) -> str:
    out: list[str] = []
    size = 0
    for piece in pieces:
        size += len(piece)
        if size > MAX_OUTPUT_CHARS:
            raise TemplateError(f"template renders more than {MAX_OUTPUT_CHARS} characters")
        out.append(piece)
    return "".join(out)


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
    try:
        return render_template(_ENV.from_string(text), variables)
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"undefined variable: {exc.message}",
            hint="define it in the inventory, the play's vars, or pass -e name=value",
        ) from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"template not allowed: {exc}", hint="templates cannot reach Python internals") from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message}") from None
    except TemplateError:
        raise
    except RecursionError:
        raise TemplateError("template recursion too deep") from None
    except Exception as exc:  # a filter or expression failed at render time (e.g. 1/0, int('x'))
        raise TemplateError(f"template failed: {type(exc).__name__}: {exc}") from None


def render_value(value: Any, variables: Mapping[str, Any]) -> Any:
    """Render every string inside ``value`` (recursively through lists and mappings)."""
    return walk_strings(value, lambda s, _path: render_string(s, variables))


def walk_strings(value: Any, fn: Callable[[str, tuple[Any, ...]], Any], path: tuple[Any, ...] = ()) -> Any:
    if isinstance(value, str):
        return fn(value, path)
    if isinstance(value, list):
        return [walk_strings(v, fn, path + (i,)) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: walk_strings(v, fn, path + (k,)) for k, v in value.items()}
    return value
