"""The Jinja2 environment that playbook values and `templates:` files render in: Jinja2's
immutable sandbox (a template reads variables, never changes them: their values are shared by
every host and with the play itself), StrictUndefined, Ansible's lookup('env'/'file'), and bounds
on time, output and the values `*` and `**` build.

The time bound is a deadline checked cooperatively (at every loop iteration, call and `*`/`**`),
not a signal: hosts render in worker threads, where no signal can interrupt them."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import ChainMap
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment

from erpprov.load.reading import NotARegularFile, read_regular
from erpprov.load.template_errors import MAX_OUTPUT_CHARS, RENDER_SECONDS, TemplateError


def _lookup(kind: str, name: str) -> str:
    """Ansible's lookup('env', NAME) and lookup('file', PATH): secrets kept outside the repository,
    such as /run/secrets/db_password, without putting them in a variable file."""
    if kind == "env":
        return os.environ.get(name, "")
    if kind == "file":
        return _read_lookup_file(name)
    raise TemplateError(f"lookup({kind!r}, ...) is not supported",
                        hint="use lookup('env', NAME) or lookup('file', PATH)")


def _read_lookup_file(name: str) -> str:
    """A regular file of at most MAX_OUTPUT_CHARS bytes: /dev/zero or a FIFO would never end."""
    what = f"lookup('file', {name!r})"
    try:
        raw = read_regular(Path(name).expanduser(), MAX_OUTPUT_CHARS)
    except NotARegularFile:
        raise TemplateError(f"{what}: not a regular file", hint="point at a file holding the secret") from None
    except OSError as exc:
        raise TemplateError(f"{what}: {exc.strerror or exc}") from None
    if len(raw) > MAX_OUTPUT_CHARS:
        raise TemplateError(f"{what}: the file is larger than {MAX_OUTPUT_CHARS} bytes")
    try:
        return raw.decode("utf-8").rstrip("\n")
    except UnicodeDecodeError:
        raise TemplateError(f"{what}: not valid UTF-8") from None


# --- the time bound ----------------------------------------------------------------------------

_deadline = threading.local()  # .at: the time.monotonic() by which the render in this thread must end


def _check_deadline() -> None:
    at = getattr(_deadline, "at", None)
    if at is not None and time.monotonic() > at:
        raise TemplateError(f"template still rendering after {RENDER_SECONDS:.0f}s; it was stopped",
                            hint="templates must not loop over huge ranges")


def _bounded_loop(iterable: Iterable[Any]) -> Iterator[Any]:
    """What every `{% for %}` iterates over: the iterable, with the deadline checked at each step
    (an empty loop body calls nothing else that could check it)."""
    for item in iterable:
        _check_deadline()
        yield item


_LOOP_FILTER = "erpprov_bounded_loop"


class _BoundedLoops(CodeGenerator):
    """Compiles each `{% for x in ITER %}` as `{% for x in ITER | erpprov_bounded_loop %}`."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for loop in node.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _LOOP_FILTER, [], [], None, None, lineno=loop.lineno)
        super().visit_Template(node, frame)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus a cap on the values `*` and `**` build ('x' * 10**10 would fill memory
    before any output limit could see it)."""

    intercepted_binops = frozenset({"*", "**"})
    code_generator_class = _BoundedLoops

    def call(self, context: jinja2.runtime.Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _check_deadline()  # every function, method and macro call of a template
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: jinja2.runtime.Context, op: str, left: Any, right: Any) -> Any:
        _check_deadline()
        if op == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 4096:
            raise TemplateError(f"{left} ** {right} is too large")
        if op == "*":
            for seq, times in ((left, right), (right, left)):
                if (isinstance(seq, (str, list, tuple)) and isinstance(times, int)
                        and len(seq) * times > MAX_OUTPUT_CHARS):
                    raise TemplateError(f"a value of {len(seq) * times} elements is too large")
        return super().call_binop(context, op, left, right)


def environment(loader: jinja2.BaseLoader | None = None) -> BoundedSandbox:
    env = BoundedSandbox(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                         autoescape=False)
    env.globals["lookup"] = _lookup
    env.filters[_LOOP_FILTER] = _bounded_loop
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


@contextmanager
def deadline(seconds: float = RENDER_SECONDS) -> Iterator[None]:
    """Bound the render in this thread. A template rendered while another renders (a variable used
    by it) shares the outer deadline: the bound is for the whole render."""
    if getattr(_deadline, "at", None) is not None:
        yield
        return
    _deadline.at = time.monotonic() + seconds
    try:
        yield
    finally:
        _deadline.at = None


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
        _check_deadline()
        size += len(piece)
        if size > MAX_OUTPUT_CHARS:
            raise TemplateError(f"template renders more than {MAX_OUTPUT_CHARS} characters")
        out.append(piece)
    return "".join(out)
