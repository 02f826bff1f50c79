"""YAML loading that remembers where every value came from.

PyYAML's plain loaders forget line numbers, accept duplicate keys (last one wins) and expand
aliases without limit. Playbooks are written by people, so every later error must point back to a
file:line:column. Values are built straight from the parser's events, checking keys, tags, depth
and size on the way; the node graph that positions come from is composed only when an error
needs one.
"""

from __future__ import annotations

import gc
import os
import pickle
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import yaml
from yaml import events

from erpprov.errors import ErpprovError, Location
from erpprov.load import parsecache
from erpprov.load.reading import NotARegularFile, read_regular

if TYPE_CHECKING:
    from yaml._yaml import Mark as _CMark

    # Events carry the C parser's marks when libyaml does the parsing, the Python parser's otherwise.
    Mark: TypeAlias = yaml.Mark | _CMark

CACHE_MIN_BYTES = 64 * 1024  # below this a parse takes less than reading an entry back

# Bounds that keep hostile input (alias bombs, pathological nesting, huge files) from hanging us,
# while a file erpprov itself writes always fits: an export of 10,000 tables is about 11 MiB and
# half a million values.
MAX_MIB = 64  # about 60,000 exported tables
MAX_MIB_VARIABLE = "ERPPROV_MAX_FILE_MIB"  # raises (or lowers) it, for a larger export
MAX_DEPTH = 64
# An alias stands for its whole anchored value without copying it, so what a bomb grows is not
# memory but the work of everything that later walks the values (templates, validation). That
# work is bounded: a document may expand to ALIAS_FLOOR values (as many as an export of 20,000
# tables spells out: 100 tenant databases may share one list of 100 tables, `tables: *erp`), and a
# larger one to ALIAS_FACTOR times the values it spells out.
ALIAS_FLOOR = 2_000_000
ALIAS_FACTOR = 10


def max_bytes() -> int:
    """The largest YAML file read: MAX_MIB, or what the environment sets."""
    raw = os.environ.get(MAX_MIB_VARIABLE, "").strip()
    if not raw:
        return MAX_MIB * 1024 * 1024
    try:
        mib = int(raw)
    except ValueError:
        mib = 0
    if mib <= 0:
        raise ErpprovError(f"{MAX_MIB_VARIABLE}={raw!r} is not a positive whole number of MiB")
    return mib * 1024 * 1024


def _too_large(file: str, limit: int) -> ErpprovError:
    return ErpprovError(f"file is larger than {limit // (1024 * 1024)} MiB", location=Location(file),
                        hint=f"if it is meant to be this large, raise the limit: {MAX_MIB_VARIABLE}=<MiB> erpprov ...")

Path_ = tuple[Any, ...]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser when libyaml is there

_TAG = "tag:yaml.org,2002:"
_STR, _MERGE, _BOOL = _TAG + "str", _TAG + "merge", _TAG + "bool"
_MAP_TAGS = {None, "!", _TAG + "map"}
_SEQ_TAGS = {None, "!", _TAG + "seq"}
# Kept as the text written: a playbook wants `2024-01-01` or `=` as a string, not a date.
_SCALAR_AS_STRING = {_STR, _TAG + "timestamp", _TAG + "binary", _TAG + "value"}
_SCALAR_TAGS = _SCALAR_AS_STRING | {_TAG + "null", _BOOL, _TAG + "int", _TAG + "float", _MERGE}


@dataclass
class Source:
    """A parsed YAML document, and its text for finding where a value stands.

    Positions are looked up only when an error needs one, by composing the document's nodes and
    walking them along the value's path: recording them for every value up front cost more than
    parsing a large playbook."""

    file: str
    data: Any
    text: str = field(default="", repr=False)
    _root: yaml.Node | None = field(default=None, repr=False)
    cacheable: bool = field(default=False, repr=False)  # large, and JSON holds its values as they are

    def locate(self, path: Path_, *, prefer_key: bool = False) -> Location:
        """The closest known position for ``path``: the value's (or its key's), else a parent's."""
        node = self._nodes()
        if node is None:
            return Location(self.file)
        mark = node.start_mark
        for index, part in enumerate(path):
            last = index == len(path) - 1
            if isinstance(node, yaml.MappingNode):
                _MERGER.flatten_mapping(node)  # `<<` merges become pairs of their own
                # The last pair wins, as in the data: an explicit key overrides a merged one.
                pair = next(((k, v) for k, v in reversed(node.value) if str(k.value) == str(part)), None)
                if pair is None:
                    break
                node = pair[1]
                mark = pair[0].start_mark if last and prefer_key else node.start_mark
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                mark = node.start_mark
            else:
                break
        return _mark(self.file, mark)

    def _nodes(self) -> yaml.Node | None:
        if self._root is None and self.text:
            # The document already built without error, so composing it again cannot fail and
            # its nesting is bounded (the C composer recurses).
            loader = _Loader(self.text)
            try:
                self._root = loader.get_single_node()
            finally:
                loader.dispose()
        return self._root


_MERGE_KEY = object()
_MERGER = yaml.constructor.SafeConstructor()


class _Open:
    """A mapping or sequence whose end event has not come yet."""

    __slots__ = ("anchor", "counted", "is_map", "key", "key_mark", "key_marks", "mark", "merges", "value")

    def __init__(self, is_map: bool, mark: Mark, anchor: str | None, counted: int):
        self.value: Any = {} if is_map else []
        self.is_map = is_map
        self.mark = mark
        self.anchor = anchor
        self.counted = counted  # values counted before this one began: its own size is the difference
        self.key: Any = None
        self.key_mark: Mark | None = None
        self.key_marks: dict[Any, Mark] = {}
        self.merges: list[tuple[Any, Mark]] = []


class _Builder:
    """Python values from one document's events, with the checks a hand-written file needs."""

    def __init__(self, file: str, loader: yaml.SafeLoader):
        self.file = file
        self.loader = loader
        self.count = 0  # values, each alias counting as the values it stands for
        self.aliased = 0  # of which expanded from aliases
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.anchor_marks: dict[str, Mark] = {}
        self.tags: dict[str, str] = {}  # plain scalar text -> resolved tag; a playbook repeats most
        self.constants: dict[tuple[str, str], Any] = {}
        self.string_keys = True  # JSON keeps only string keys

    def error(self, message: str, mark: Mark | None, hint: str | None = None) -> ErpprovError:
        return ErpprovError(message, location=_mark(self.file, mark), hint=hint)

    def document(self) -> Any:
        """The single document's value (None for an empty stream)."""
        get = self.loader.get_event
        get()  # stream start
        if isinstance(self.loader.peek_event(), events.StreamEndEvent):
            return None
        get()  # document start
        value = self._value()
        get()  # document end
        extra = get()
        if not isinstance(extra, events.StreamEndEvent):
            raise self.error("expected a single document in the stream, but found another", extra.start_mark,
                             hint="remove the second '---' document or move it to its own file")
        return value

    def _value(self) -> Any:
        """The next value, however deep: one loop with an explicit stack, since a hundred
        thousand values make every function call per event count."""
        get = self.loader.get_event
        scalar, alias = events.ScalarEvent, events.AliasEvent
        starts = (events.MappingStartEvent, events.SequenceStartEvent)
        stack: list[_Open] = []
        top: _Open | None = None
        want_key = False  # the next value is a key of `top`
        while True:
            event = get()
            kind = event.__class__
            if kind is scalar:
                self.count += 1
                if event.tag is None and not event.implicit[0]:
                    value = event.value  # quoted or block: a string whatever it looks like
                else:
                    value = self._scalar(event, want_key)
                if event.anchor is not None:
                    self._anchor(event.anchor, value, 1, event.start_mark)
            elif kind in starts:
                if want_key:
                    raise self.error("a mapping key must be a plain value", event.start_mark)
                is_map = kind is events.MappingStartEvent
                if event.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
                    raise self.error(f"unsupported YAML tag {event.tag}", event.start_mark,
                                     hint="only plain YAML values are allowed (no !tags)")
                if len(stack) >= MAX_DEPTH:
                    raise self.error(f"document is nested deeper than {MAX_DEPTH} levels", event.start_mark)
                self.count += 1
                if top is not None:
                    stack.append(top)
                top = _Open(is_map, event.start_mark, event.anchor, self.count - 1)
                if event.anchor is not None:
                    self.anchor_marks[event.anchor] = event.start_mark
                want_key = is_map
                continue
            elif kind is alias:
                value = self._alias(event)
            elif top is not None:  # the end of `top`
                value = self._merged(top) if top.merges else top.value
                if top.anchor is not None:
                    self._anchor(top.anchor, value, self.count - top.counted, top.mark)
                top = stack.pop() if stack else None
                want_key = False  # a collection is never a key (refused at its start)
            else:
                raise self.error(f"unexpected YAML event {kind.__name__}", event.start_mark)
            if self.aliased and self.count > ALIAS_FLOOR and self.count > ALIAS_FACTOR * (self.count - self.aliased):
                raise self.error(
                    f"document expands to more than {ALIAS_FACTOR} times the {self.count - self.aliased} values "
                    "it spells out", event.start_mark, hint="YAML aliases (*name) may be expanding exponentially")
            if top is None:
                return value
            if not top.is_map:
                top.value.append(value)
            elif want_key:
                if isinstance(value, (list, dict)):  # an alias to a collection, used as a key
                    raise self.error("a mapping key must be a plain value", event.start_mark)
                top.key, top.key_mark = value, event.start_mark
                want_key = False
            else:
                self._set(top, value)
                want_key = True

    def _scalar(self, event: events.ScalarEvent, as_key: bool) -> Any:
        tag, text = event.tag, event.value
        if tag is None or tag == "!":
            tag = self.tags.get(text)
            if tag is None:
                tag = self.tags[text] = self.loader.resolve(yaml.ScalarNode, text, (True, False))
        if tag in _SCALAR_AS_STRING:
            return text
        if tag not in _SCALAR_TAGS:
            raise self.error(f"unsupported YAML tag {tag}", event.start_mark,
                             hint="only plain YAML values are allowed (no !tags)")
        if as_key and tag == _BOOL:
            return text  # YAML 1.1 reads `on:`/`yes:` as booleans; as keys they are always meant as words
        if tag == _MERGE:
            return _MERGE_KEY if as_key else text
        try:
            return self.constants[(tag, text)]
        except KeyError:
            pass
        try:
            value = self.loader.yaml_constructors[tag](self.loader, yaml.ScalarNode(tag, text))
        except (ValueError, KeyError, TypeError):
            raise self.error(f"{text!r} is not a valid {tag.removeprefix(_TAG)}", event.start_mark) from None
        self.constants[(tag, text)] = value
        return value

    def _set(self, top: _Open, value: Any) -> None:
        key, key_mark = top.key, top.key_mark
        assert key_mark is not None  # set with the key, from its event's mark
        if key is _MERGE_KEY:
            top.merges.append((value, key_mark))
            return
        first = top.key_marks.get(key)
        if first is not None:
            raise self.error(f"duplicate key {key!r} (first defined on line {first.line + 1})", key_mark,
                             hint="YAML would silently keep only the last one; remove or rename one of them")
        top.key_marks[key] = key_mark
        top.value[key] = value
        if key.__class__ is not str:
            self.string_keys = False

    def _anchor(self, name: str, value: Any, size: int, mark: Mark) -> None:
        if name in self.anchors:
            raise self.error(f"duplicate anchor &{name}", mark, hint="give each anchor its own name")
        self.anchors[name] = (value, size)

    def _alias(self, event: events.AliasEvent) -> Any:
        anchor = event.anchor
        assert anchor is not None  # an alias is the name of its anchor
        found = self.anchors.get(anchor)
        if found is None:
            if anchor in self.anchor_marks:
                raise self.error(f"alias *{anchor} refers to a value that contains it", event.start_mark)
            raise self.error(f"alias *{anchor} has no anchor &{anchor} before it", event.start_mark)
        value, size = found
        self.count += size
        self.aliased += size
        return value

    def _merged(self, top: _Open) -> dict[Any, Any]:
        """`<<: *base` (or a list of them): merged keys first, then the mapping's own override them;
        in a list the earlier mapping wins, as in YAML's merge key type."""
        result: dict[Any, Any] = {}
        for value, mark in top.merges:
            sources = list(reversed(value)) if isinstance(value, list) else [value]
            for source in sources:
                if not isinstance(source, dict):
                    raise self.error("'<<' merges a mapping or a list of mappings", mark)
                result.update(source)
        result.update(top.value)
        return result


def _mark(file: str, mark: Mark | None) -> Location:
    if mark is None:
        return Location(file)
    return Location(file, mark.line + 1, mark.column + 1)


def _tab_at(text: str, mark: Mark | None) -> bool:
    if mark is None:
        return "\t" in text
    lines = text.splitlines()
    return mark.line < len(lines) and "\t" in lines[mark.line][: mark.column + 1]


def parse_yaml(text: str | bytes, file: str) -> Source:
    """Parse one YAML document; every failure is an ErpprovError with a position."""
    limit = max_bytes()
    if isinstance(text, bytes):
        if len(text) > limit:
            raise _too_large(file, limit)
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ErpprovError(
                f"file is not valid UTF-8 (byte {exc.start})", location=Location(file), hint="save it as UTF-8"
            ) from None
    if len(text) > limit:
        raise _too_large(file, limit)
    source = Source(file=file, data=None, text=text)
    loader: yaml.SafeLoader | None = None
    collecting = gc.isenabled()
    try:
        # A large playbook is a hundred thousand values that all stay: the garbage collector
        # would rescan them over and over as they are built.
        gc.disable()
        loader = _Loader(text)  # its reader rejects control characters right here
        builder = _Builder(file, loader)
        source.data = builder.document()
        # aliases would be written out in full: only a document without them is kept as JSON
        source.cacheable = len(text) >= CACHE_MIN_BYTES and builder.string_keys and not builder.aliased
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or exc.context or "invalid YAML"
        hint = "YAML does not allow tabs for indentation; use spaces" if _tab_at(text, exc.problem_mark) else None
        raise ErpprovError(f"YAML syntax error: {problem}", location=_mark(file, exc.problem_mark), hint=hint) from None
    except yaml.reader.ReaderError as exc:
        raise ErpprovError(f"the file holds a control character (#x{exc.character:04x}) at position {exc.position}",
                           location=Location(file), hint="YAML allows only printable characters") from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ErpprovError(f"YAML error: {first}", location=Location(file)) from None
    finally:
        if collecting:
            gc.enable()
        if loader is not None:
            loader.dispose()
    return source


def load_yaml(path: Path, *, what: str = "file", missing_hint: str | None = None) -> Source:
    """Read and parse ``path`` (or take its values from the parse cache, or from the child that
    parsed it); a missing or unreadable file is an ErpprovError too."""
    raw = read_bounded(path, what, missing_hint)
    source = _collect(path, raw)
    if source is None and len(raw) >= CACHE_MIN_BYTES:
        hit, data = parsecache.get(raw)
        if hit:
            return Source(file=str(path), data=data, text=raw.decode("utf-8"))
    if source is None:
        source = parse_yaml(raw, str(path))
    if source.cacheable:  # the first run after a change pays for the entry, as for a .pyc
        parsecache.put(raw, source.data)
    return source


def read_bounded(path: Path, what: str, missing_hint: str | None, limit: int | None = None) -> bytes:
    """At most ``limit + 1`` bytes of ``path`` (by default, the YAML limit: max_bytes()); a missing or
    unreadable file is an ErpprovError."""
    try:
        return read_regular(path, max_bytes() if limit is None else limit)
    except FileNotFoundError:
        raise ErpprovError(f"{what} not found: {path}", hint=missing_hint) from None
    except IsADirectoryError:
        raise ErpprovError(f"{what} is a directory, not a file: {path}") from None
    except NotARegularFile:
        raise ErpprovError(f"{what} is not a regular file: {path}", hint="point at a YAML file") from None
    except OSError as exc:
        raise ErpprovError(f"cannot read {what} {path}: {exc.strerror}") from None


# --- parsing a large file on another core ------------------------------------------------------

PREFETCH_MIN_BYTES = 64 * 1024  # below this a parse takes less than starting a child
_pending: dict[str, tuple[int, int, bytes]] = {}  # path -> (child pid, read end of its pipe, bytes it parses)


def prefetch(path: Path) -> None:
    """Start parsing a large ``path`` in a forked child, so that the parse (a third of a second
    for a thousand tables) runs on another core while this process imports psycopg and pydantic;
    `load_yaml(path)` collects the values. Only values travel back: whenever the child fails, or the
    file changed in between, load_yaml parses the file itself and reports what it finds as usual."""
    # fork() copies only the calling thread: with others running, a lock one of them holds would
    # never be released in the child. Linux only: elsewhere fork without exec is not safe enough.
    if not sys.platform.startswith("linux") or threading.active_count() > 1 or str(path) in _pending:
        return
    try:
        raw = read_bounded(path, "file", None)
    except ErpprovError:
        return  # load_yaml reports it
    if len(raw) < PREFETCH_MIN_BYTES or parsecache.has(raw):
        return
    try:
        read_end, write_end = os.pipe()
    except OSError:  # out of file descriptors: parse in this process
        return
    try:
        pid = os.fork()
    except OSError:  # out of processes or memory: parse in this process
        os.close(read_end)
        os.close(write_end)
        return
    if pid == 0:  # the child: parse, send the values, exit without running the parent's exit handlers
        try:
            os.close(read_end)
            parsed = parse_yaml(raw, str(path))
            payload = pickle.dumps((parsed.data, parsed.cacheable), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
            os._exit(0)
        finally:  # any failure, Ctrl-C included
            os._exit(1)
    os.close(write_end)
    _pending[str(path)] = (pid, read_end, raw)


def _collect(path: Path, raw: bytes) -> Source | None:
    """The prefetched parse of ``path`` if there is one, it succeeded and read these very bytes."""
    pending = _pending.pop(str(path), None)
    if pending is None:
        return None
    pid, read_end, parsed = pending
    with os.fdopen(read_end, "rb") as pipe:
        payload = pipe.read()
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # reaped elsewhere: its outcome is unknown
        return None
    if status != 0 or parsed != raw:
        return None
    data, cacheable = pickle.loads(payload)
    return Source(file=str(path), data=data, text=raw.decode("utf-8"), cacheable=cacheable)
