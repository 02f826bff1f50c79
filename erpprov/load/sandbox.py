"""The Jinja2 environment that playbook values and `templates:` files render in: Jinja2's
immutable sandbox (a template reads variables, never changes them: their values are shared by
every host and with the play itself), StrictUndefined, Ansible's lookup('env'/'file'), and bounds on time, output and the
values `*` and `**` build."""

from __future__ import annotations

import functools
import os
import signal
import threading
from collections import ChainMap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from erpprov.load.templating import MAX_OUTPUT_CHARS, RENDER_SECONDS, TemplateError


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


class BoundedSandbox(ImmutableSandboxedEnvironment):
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


@functools.cache
def _strings_environment() -> BoundedSandbox:
    return environment()


@functools.cache
def files_environment(directory: str) -> BoundedSandbox:
    """The environment of one templates/ directory: each file is read and compiled once, for every
    host and for both plan and apply (Jinja2 reloads a file that changed)."""
    return environment(jinja2.FileSystemLoader(directory))


def string_template(text: str) -> jinja2.Template:
    """A playbook value as a template, in the one environment all values share."""
    return _strings_environment().from_string(text)


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
