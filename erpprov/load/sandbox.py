"""The Jinja2 environment that playbook values and `templates:` files render in: Jinja2's
immutable sandbox (a template reads variables, never changes them: their values are shared by
every host and with the play itself), StrictUndefined, Ansible's lookup('env'/'file'), and bounds
on time, output and the values single operations build.

The time bound is a deadline checked cooperatively (at every loop iteration, call and `*`/`**`),
not a signal: hosts render in worker threads, where no signal can interrupt them.

The size bound is checked before each operation that can build a large value in one step (`*`,
`~`, `+`, `%`, str.format, ljust, replace, join, the filters center, indent, string, ...): its result size
is estimated from its arguments and refused above MAX_OUTPUT_CHARS. A check after the fact would
come too late: 'x'.ljust(10**10) fills memory inside one C call, before any output is counted.
Lists are bounded the same way, in items: `+`, the filters list, batch and slice. Where a result
cannot be sized first (pprint, tojson), it is built piece by piece into a bounded buffer."""

from __future__ import annotations

import functools
import itertools
import json
import os
import pprint
import re
import string
import threading
import time
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import make_attrgetter, sync_do_join
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from jinja2.utils import pass_eval_context
from markupsafe import Markup

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


# --- the size bound ----------------------------------------------------------------------------

def _refuse_above(size: int, what: str, unit: str = "characters") -> None:
    """Refuses a result of ``size`` ``unit`` (characters of a string, items of a list) above the limit."""
    if size > MAX_OUTPUT_CHARS:
        raise TemplateError(f"{what} would build {size} {unit}, more than the limit of {MAX_OUTPUT_CHARS} {unit}",
                            hint="templates render short values: names, passwords, settings")


def _text_size(value: Any, quoted: bool = False) -> int:
    """len(str(value)) without building it (len(repr(value)) when ``quoted``, as inside a list).
    Counting stops once past the limit, so a list holding one big string 3000 times costs no
    more than the limit to measure."""
    if isinstance(value, str):
        return len(repr(value)) if quoted else len(value)
    items: Iterable[Any]
    if isinstance(value, dict):  # not any Mapping: the variables' own is lazy, and prints no items
        items = itertools.chain.from_iterable(value.items())
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:  # numbers, None, objects: their text is short (ints are bounded by `**`)
        return len(str(value))
    size = 2  # the brackets
    for item in items:
        size += 2 + _text_size(item, quoted=True)  # ", " or ": "
        if size > MAX_OUTPUT_CHARS:
            break
    return size


# [[fill]align][sign][z][#][0][width][grouping][.precision][type] (the format-spec mini-language)
_FORMAT_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?[a-zA-Z%]?", re.DOTALL)
# a %-conversion after its %(key): [flags][width][.precision][length]type, width/precision maybe *
_PRINTF_SPEC = re.compile(r"[-#0 +]*(?P<width>\*|\d*)(?:\.(?P<precision>\*|\d*))?[hlL]?(?P<type>.?)", re.DOTALL)
_FLOAT_DIGITS = 330  # the most a float has before its precision digits: 1e308 formatted with 'f'


def _field_size(value: Any, width: int, precision: int | None, quoted: bool = False) -> int:
    """The most characters one formatted field can have, by str.format or % (``quoted``: %r, %a)."""
    if isinstance(value, str) and not quoted:  # a precision only shortens a string
        return max(width, len(value))
    return max(width, 2 * _text_size(value, quoted) + (precision or 0) + _FLOAT_DIGITS)  # 2*: grouping commas


def _spec_field_size(value: Any, spec: str) -> int:
    parsed = _FORMAT_SPEC.fullmatch(spec)
    if parsed is None:  # another type's own mini-language (dates): output in proportion to the spec
        return _text_size(value) + 10 * len(spec)
    precision = parsed["precision"]
    return _field_size(value, int(parsed["width"] or 0), int(precision) if precision else None)


def _printf_size(fmt: str, values: Any) -> int:
    """An upper bound of len(fmt % values), from each conversion's width, precision and value."""
    positional = iter(values if isinstance(values, tuple) else (values,))
    size, pos = len(fmt), 0
    while (pos := fmt.find("%", pos) + 1) > 0:
        value = None
        if fmt.startswith("(", pos):  # %(key): the key may hold balanced parentheses, as Python allows
            depth, end = 1, pos + 1
            while depth and end < len(fmt):
                depth += {"(": 1, ")": -1}.get(fmt[end], 0)
                end += 1
            key, pos = fmt[pos + 1:end - 1], end
            value = values.get(key) if isinstance(values, Mapping) else None
        spec = _PRINTF_SPEC.match(fmt, pos)
        assert spec is not None  # every part of it is optional
        pos = spec.end()
        if spec["type"] == "%":
            continue
        width, precision = (next(positional, 0) if part == "*" else int(part or 0)
                            for part in (spec["width"], spec["precision"]))
        if value is None:
            value = next(positional, None)
        if not (isinstance(width, int) and isinstance(precision, int)):
            break  # % itself refuses a non-integer * argument
        size += _field_size(value, abs(width), precision, quoted=spec["type"] in ("r", "a"))
    return size


def _str_result_size(text: str, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """The most characters ``text.<method>(*args, **kwargs)`` returns (method "%": text % args[0]);
    the length of ``text`` for a method that cannot grow it much (upper(): at most 3 times)."""
    first = args[0] if args else None
    if method in ("ljust", "rjust", "center", "zfill") and isinstance(first, int):
        return max(len(text), first)
    if method == "expandtabs":
        tabsize = kwargs.get("tabsize", 8) if first is None else first
        return len(text) + text.count("\t") * max(tabsize, 0) if isinstance(tabsize, int) else len(text)
    if method == "replace" and len(args) >= 2 and isinstance(first, str) and isinstance(args[1], str):
        count = text.count(first) if first else len(text) + 1  # '' matches between every character
        limit = args[2] if len(args) > 2 else kwargs.get("count", -1)
        if isinstance(limit, int) and limit >= 0:
            count = min(count, limit)
        return len(text) + count * max(len(args[1]) - len(first), 0)
    if method == "join" and isinstance(first, (list, tuple)):
        return sum(_text_size(item) for item in first) + len(text) * max(len(first) - 1, 0)
    if method == "translate" and isinstance(first, Mapping):
        longest = max((len(v) for v in first.values() if isinstance(v, str)), default=1)
        return len(text) * max(longest, 1)
    if method == "%":
        return _printf_size(text, first)
    return len(text)


class _BoundedFormatterMixin(string.Formatter):
    """str.format and format_map: the fields are sized one by one, as the formatter reaches them
    (a nested width such as '{:{}}' is known only then), and their total is bounded."""

    size = 0

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self.size = len(format_string)  # the most the literal text between fields can add
        return super().vformat(format_string, args, kwargs)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion in ("r", "a"):  # repr() of a list repeating a big string builds it at once
            _refuse_above(_text_size(value, quoted=True), f"{{!{conversion}}} of str.format")
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        self.size += _spec_field_size(value, format_spec)
        _refuse_above(self.size, "str.format")
        return super().format_field(value, format_spec)


class _BoundedFormatter(_BoundedFormatterMixin, SandboxedFormatter):
    pass


class _BoundedEscapeFormatter(_BoundedFormatterMixin, SandboxedEscapeFormatter):
    pass


class _BoundedBuffer(list[str]):
    """What a `{% set %}` block, a macro or a call block collects its output in until it ends: each
    piece may be a new string, so their total is bounded as they arrive, not when joined. Also the
    stream the filters pprint and tojson write to (``what`` names them)."""

    size = 0

    def __init__(self, what: str = "a {% set %} block or macro") -> None:
        super().__init__()
        self.what = what

    def append(self, piece: str) -> None:
        self.size += len(piece)
        _refuse_above(self.size, self.what)
        super().append(piece)

    def extend(self, pieces: Iterable[str]) -> None:
        pieces = tuple(pieces)
        self.size += sum(map(len, pieces))
        _refuse_above(self.size, self.what)
        super().extend(pieces)

    def write(self, piece: str) -> int:  # as a text stream
        self.append(piece)
        return len(piece)


def _sized_operands(operands: tuple[Any, ...]) -> tuple[Any, ...]:
    """The operands of `a ~ b ~ ...`, once the string they join to is known to be within the limit."""
    _refuse_above(sum(_text_size(operand) for operand in operands), "the ~ operator")
    return operands


def _sized_output(value: Any) -> Any:
    """Each `{{ value }}` before it becomes text: str() of a list repeating a big string builds it
    at once."""
    _refuse_above(_text_size(value), "the text of a {{ value }}")
    return value


def _guarded_filter(original: Callable[..., Any], size: Callable[..., int], name: str,
                    unit: str = "characters") -> Callable[..., Any]:
    """``original``, refusing first when ``size`` (called with the same arguments) is above the limit.
    functools.wraps keeps Jinja2's pass_eval_context/pass_environment marks."""

    @functools.wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _refuse_above(size(*args, **kwargs), f"the filter {name}", unit)
        return original(*args, **kwargs)

    return guarded


def _input_bounded(original: Callable[..., Any], name: str) -> Callable[..., Any]:
    """Every filter first measures what it is given (values of the template, not the environment
    or context some filters take first): no filter turns a value already past the limit into
    something larger, so a chain of filters grows by at most a constant factor per step and is
    stopped at the next one (urlencode thrice over is 27 times its input)."""

    @functools.wraps(original)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        for value in itertools.chain(args, kwargs.values()):
            if isinstance(value, (str, list, tuple, dict, set, frozenset)):
                _refuse_above(_text_size(value), f"the value given to the filter {name}")
        return original(*args, **kwargs)

    return bounded


def _indent_size(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> int:
    text = str(s)  # each line (and the first, with first=True) gains the indentation
    per_line = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    return len(text) + (text.count("\n") + 2) * max(per_line, 0)


def _wordwrap_size(environment: jinja2.Environment, s: Any, width: int = 79, break_long_words: bool = True,
                   wrapstring: str | None = None, break_on_hyphens: bool = True) -> int:
    text = str(s)  # a bound, not a guess: at most one line per character, each ended by wrapstring
    return len(text) * (1 + len(environment.newline_sequence if wrapstring is None else str(wrapstring)))


_FILTER_SIZES: dict[str, Callable[..., int]] = {
    "center": lambda value, width=80: _str_result_size(str(value), "center", (width,), {}),
    "indent": _indent_size,
    "wordwrap": _wordwrap_size,
    "format": lambda value, *args, **kwargs: _str_result_size(str(value), "%", (kwargs or args,), {}),
    "replace": lambda eval_ctx, s, old, new, count=None: _str_result_size(
        str(s), "replace", (str(old), str(new), -1 if count is None else count), {}),
    "string": lambda value: _text_size(value),
}

# The items of the lists these filters build: batch pads its last list up to linecount with
# fill_with, slice yields one list per slice.
_FILTER_LENGTHS: dict[str, Callable[..., int]] = {
    "batch": lambda value, linecount, fill_with=None: 0 if fill_with is None else linecount,
    "slice": lambda eval_ctx, value, slices, fill_with=None: slices,
}


def _list_filter(value: Iterable[Any]) -> list[Any]:
    """Jinja2's list, counting the items as they arrive: a generator cannot tell its length first."""
    items = list(itertools.islice(value, MAX_OUTPUT_CHARS + 1))
    _refuse_above(len(items), "the filter list", "items")  # at most one past the limit: "more than"
    return items


def _pprint_filter(value: Any) -> str:
    """Jinja2's pprint (pprint.pformat), written to a bounded buffer: its layout (a line per item,
    indented by depth) can outgrow the value's text, which is bounded first, as pformat builds it
    whole before laying it out."""
    _refuse_above(_text_size(value, quoted=True), "the filter pprint")
    buffer = _BoundedBuffer("the filter pprint")
    pprint.PrettyPrinter(stream=buffer).pprint(value)  # type: ignore[arg-type]  # it only calls write()
    return "".join(buffer)[:-1]  # pprint() ends with a newline, pformat() does not


# What the filter tojson replaces in json.dumps' text, so that it is safe inside HTML
_HTML_UNSAFE_JSON = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"}


def _json_dumps(value: Any, **kwargs: Any) -> str:
    """json.dumps for the filter tojson, encoded piece by piece into a bounded buffer: its text grows
    with indent times depth, and json builds the indentation before it writes anything, so the
    indent is refused first. Each piece is escaped as tojson then escapes the whole text (its
    replacements contain no character they replace), so the buffer counts the filter's result."""
    indent = kwargs.get("indent")
    _refuse_above(len(indent) if isinstance(indent, str) else indent if isinstance(indent, int) else 0,
                  "the indent of the filter tojson")
    buffer = _BoundedBuffer("the filter tojson")
    for piece in json.JSONEncoder(**kwargs).iterencode(value):
        _refuse_above(buffer.size + len(piece) + 5 * sum(map(piece.count, _HTML_UNSAFE_JSON)), "the filter tojson")
        for unsafe, escaped in _HTML_UNSAFE_JSON.items():
            piece = piece.replace(unsafe, escaped)
        buffer.append(piece)
    return "".join(buffer)


@pass_eval_context
def _join_filter(eval_ctx: jinja2.nodes.EvalContext, value: Iterable[Any], d: str = "",
                 attribute: str | int | None = None) -> str:
    """Jinja2's join, on the items listed first (a generator could not be sized, then joined)."""
    if attribute is not None:
        value = map(make_attrgetter(eval_ctx.environment, attribute), value)
    items = list(value)
    _refuse_above(_str_result_size(str(d), "join", (items,), {}), "the filter join")
    return sync_do_join(eval_ctx, items, d)


_LOOP_FILTER = "erpprov_bounded_loop"


class _BoundedCode(CodeGenerator):
    """Compiles each `{% for x in ITER %}` as `{% for x in ITER | erpprov_bounded_loop %}`, the
    buffer of each block as a _BoundedBuffer, and `a ~ b` with its operands sized first."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for loop in node.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _LOOP_FILTER, [], [], None, None, lineno=loop.lineno)
        super().visit_Template(node, frame)

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.bounded_buffer()")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # Jinja2's own join (markup_join when autoescaping), of the operands _sized_operands let by
        if frame.eval_ctx.volatile:
            self.write("(markup_join if context.eval_ctx.volatile else str_join)")
        else:
            self.write("markup_join" if frame.eval_ctx.autoescape else "str_join")
        self.write("(environment.sized_operands((")
        for operand in node.nodes:
            self.visit(operand, frame)
            self.write(", ")
        self.write(")))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus a cap on the values single operations build ('x' * 10**10 would fill
    memory before any output limit could see it)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _BoundedCode
    bounded_buffer = _BoundedBuffer  # reached by the compiled templates as environment.<name>
    sized_operands = staticmethod(_sized_operands)

    def call(self, context: jinja2.runtime.Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _check_deadline()  # every function, method and macro call of a template
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str):
            if obj.__name__ == "join":  # sized from a list: a generator would be used up by sizing it
                args = (list(args[0]), *args[1:]) if args else args
            _refuse_above(_str_result_size(owner, obj.__name__, args, kwargs), f"str.{obj.__name__}")
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
        if op == "%" and isinstance(left, str):
            _refuse_above(_str_result_size(left, "%", (right,), {}), "the % operator")
        if op == "+" and isinstance(left, str) and isinstance(right, str):
            _refuse_above(len(left) + len(right), "the + operator")
        if op == "+" and isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
            _refuse_above(len(left) + len(right), "the + operator", "items")
        return super().call_binop(context, op, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja2's sandboxed str.format and format_map, with the formatter that sizes each field."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text: str = value.__self__
        formatter = _BoundedEscapeFormatter(self, escape=text.escape) if isinstance(text, Markup) \
            else _BoundedFormatter(self)

        @functools.wraps(wrapped)
        def bounded(*args: Any, **kwargs: Any) -> str:
            if value.__name__ == "format_map":
                if kwargs or len(args) != 1:
                    return wrapped(*args, **kwargs)  # Jinja2 raises format_map's own TypeError
                mapping = args[0]
                return type(text)(formatter.vformat(text, (), mapping))
            return type(text)(formatter.vformat(text, args, kwargs))

        return bounded


def environment(loader: jinja2.BaseLoader | None = None) -> BoundedSandbox:
    env = BoundedSandbox(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                         autoescape=False, finalize=_sized_output)
    env.globals["lookup"] = _lookup
    # range is Jinja2's sandboxed one: at most MAX_RANGE (100000) items, fewer than MAX_OUTPUT_CHARS.
    # lorem ipsum has no use in a playbook, and lipsum(n=10**9) would build gigabytes of it
    del env.globals["lipsum"]
    env.filters[_LOOP_FILTER] = _bounded_loop
    for name, size in _FILTER_SIZES.items():
        env.filters[name] = _guarded_filter(env.filters[name], size, name)
    for name, size in _FILTER_LENGTHS.items():
        env.filters[name] = _guarded_filter(env.filters[name], size, name, "items")
    env.filters["join"] = _join_filter
    env.filters["list"] = _list_filter
    env.filters["pprint"] = _pprint_filter
    for name, original in list(env.filters.items()):
        if name != _LOOP_FILTER:  # the loop's own step counter sees every item anyway
            env.filters[name] = _input_bounded(original, name)
    env.policies["json.dumps_function"] = _json_dumps  # what the filter tojson calls
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


def prepare() -> None:
    """Build the environment of playbook values and its lexer (a dozen regular expressions) now:
    the resident process does it once for every command it serves."""
    _strings_environment().lexer  # noqa: B018 (built on first access)


@functools.lru_cache(maxsize=4096)
def string_template(text: str) -> jinja2.Template:
    """A playbook value as a template, in the one environment all values share. Compiled once per
    text: a load renders most values twice (the dev playbook: 31 renders, 16 texts), and a
    compile costs a tenth of a millisecond or more; a template renders in a context of its own."""
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
