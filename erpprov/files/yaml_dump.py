"""YAML text of plain values (dicts, lists, strings, numbers, booleans, None), byte for byte what
`yaml.dump(..., Dumper=CSafeDumper)` writes, at a fraction of its cost.

At 10,000 tables an export is a million values, and PyYAML spent most of the export's CPU on
them: a generic per-value dispatch to build nodes, two resolver calls per scalar, then libyaml's
emitter. Block-style output of plain values is regular enough to write directly: `_Writer` lays
out the mappings and sequences as PyYAML does (sequences in a mapping not indented, empty ones in
flow style) and writes every scalar of one printable line itself, with the emitter's rules: plain
when the emitter's analysis allows it and the text reads back as itself, else single-quoted, and
folded at a space past the width as the emitter folds. Any other scalar (line breaks, tabs,
control characters) is cut out of PyYAML's own output for the same value at the same indentation
and column; anything else the writer does not handle
(shared containers, which PyYAML writes as anchors and aliases, other types, nested sequences,
keys that are not plain) sends the whole document through PyYAML. `_PlainDumper` is that path,
itself faster than PyYAML's representer: the plain types get their node straight away, and a
scalar's resolved tag is asked once per distinct text.
"""

from __future__ import annotations

import gc
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"


class _PlainDumper(_Dumper):  # type: ignore[valid-type,misc]
    """Block style only (``default_flow_style=False``), keys in their given order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resolved: dict[tuple[str, tuple[bool, bool]], str] = {}

    def represent(self, data: Any) -> None:
        node = self._node(data)
        self.serialize(node)
        self.represented_objects: dict[int, Node] = {}
        self.object_keeper: list[Any] = []
        self.alias_key = None

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
        # A scalar's tag depends on its text alone (a safe dumper has no path resolvers).
        if kind is not ScalarNode:
            return str(super().resolve(kind, value, implicit))
        key = (value, implicit)
        tag = self._resolved.get(key)
        if tag is None:
            tag = self._resolved[key] = super().resolve(kind, value, implicit)
        return tag

    def _node(self, data: Any) -> Node:
        kind = type(data)
        style = self.default_style
        if kind is str:
            return ScalarNode(_STR, data, style=style)
        if kind is bool:
            return ScalarNode(_BOOL, "true" if data else "false", style=style)
        if kind is int:
            return ScalarNode(_INT, str(data), style=style)
        if data is None:
            return ScalarNode(_NULL, "null", style=style)
        if kind is dict or kind is list:
            seen = self.represented_objects.get(id(data))
            if seen is not None:
                return seen
            self.object_keeper.append(data)
            if kind is dict:
                pairs: list[tuple[Node, Node]] = []
                node: Node = MappingNode(_MAP, pairs, flow_style=self.default_flow_style)
                self.represented_objects[id(data)] = node
                pairs += [(self._node(k), self._node(v)) for k, v in data.items()]
            else:
                items: list[Node] = []
                node = SequenceNode(_SEQ, items, flow_style=self.default_flow_style)
                self.represented_objects[id(data)] = node
                items += [self._node(v) for v in data]
            return node
        return self.represent_data(data)


# Keys the writer writes itself: plain, short, nothing to quote.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_(](?:[A-Za-z0-9_ .,()/$+=<>'-]*[A-Za-z0-9_.,()/$+=<>'-])?")
# One line of characters an emitter that allows unicode writes as they are: libyaml's printable
# set (the Basic Multilingual Plane; it escapes the planes above) without its line breaks \x85,
# \u2028 and \u2029, the BOM, and the tab, which forces quotes.
_ONE_LINE = re.compile("[\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]*")
_SPACES_OR_WORD = re.compile(r" +|[^ ]+")
# A leading indicator (or one of `?:-` followed by a space) forbids plain text.
_LEADING_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")
_SCALAR_TAGS = {str: _STR, bool: _BOOL, int: _INT}


def _plain_allowed(text: str) -> bool:
    """Whether the emitter may write one line of printable text plain in a block (its
    analyze_scalar for that case): no leading or trailing space, no document marker or indicator
    at the start, no `: `, no ` #`, no `:` at the end."""
    if not text or text[0] == " " or text[-1] == " " or text.startswith(("---", "...")):
        return False
    first = text[0]
    if first in _LEADING_INDICATORS or (first in "?:-" and (len(text) == 1 or text[1] == " ")):
        return False
    return ": " not in text and " #" not in text and text[-1] != ":"


class _Fallback(Exception):
    """The writer met something only PyYAML's own path writes exactly."""


class _Writer:
    def __init__(self, width: int) -> None:
        self.width = width
        self.out: list[str] = []
        self.seen: set[int] = set()
        self.resolver = yaml.resolver.Resolver()
        self.tags: dict[str, str] = {}
        self.cut: dict[tuple[Any, int, str], str] = {}

    def document(self, value: Any) -> str:
        if type(value) is list and value:
            self._items(value, 0)
        elif type(value) is dict and value:
            self._mapping(value, 0, "")
        else:
            raise _Fallback
        return "".join(self.out)

    def _container(self, value: Any) -> None:
        if id(value) in self.seen:
            raise _Fallback  # PyYAML writes it once, with an anchor, and aliases it after
        self.seen.add(id(value))

    def _mapping(self, mapping: dict[Any, Any], indent: int, first: str) -> None:
        self._container(mapping)
        out = self.out
        pad = " " * indent
        start = first
        for key, value in mapping.items():
            if type(key) is not str or len(key) >= 128 or not _PLAIN_KEY.fullmatch(key) or self._tag(key) != _STR:
                raise _Fallback
            kind = type(value)
            if kind is dict:
                if value:
                    out.append(f"{start}{key}:\n")
                    self._mapping(value, indent + 2, " " * (indent + 2))
                else:
                    out.append(f"{start}{key}: {{}}\n")
            elif kind is list:
                if value:
                    out.append(f"{start}{key}:\n")
                    self._items(value, indent)
                else:
                    out.append(f"{start}{key}: []\n")
            else:
                head = f"{start}{key}:"
                out.append(f"{head} {self._scalar(value, indent, len(head) + 1, key)}\n")
            start = pad

    def _items(self, items: list[Any], indent: int) -> None:
        self._container(items)
        out = self.out
        dash = " " * indent + "- "
        for item in items:
            kind = type(item)
            if kind is dict:
                if item:
                    self._mapping(item, indent + 2, dash)
                else:
                    out.append(dash + "{}\n")
            elif kind is list:
                if item:
                    raise _Fallback  # a sequence in a sequence
                out.append(dash + "[]\n")
            else:
                out.append(dash + self._scalar(item, indent, indent + 2, None) + "\n")

    def _tag(self, text: str) -> str:
        tag = self.tags.get(text)
        if tag is None:
            tag = self.tags[text] = self.resolver.resolve(ScalarNode, text, (True, False))
        return tag

    def _scalar(self, value: Any, indent: int, column: int, key: str | None) -> str:
        """The scalar's text where it starts at `column`: a mapping value under `key`, or a
        sequence item (key None), in a block at `indent`."""
        if value is None:
            return "null"
        tag = _SCALAR_TAGS.get(type(value))
        if tag is None:
            raise _Fallback
        text = ("true" if value else "false") if tag is _BOOL else str(value)
        if not _ONE_LINE.fullmatch(text):
            return self._cut(value, indent, key)
        if self._tag(text) == tag and _plain_allowed(text):
            return text if column + len(text) <= self.width else self._fold(text, column, indent + 2, False)
        if tag is not _STR:
            return self._cut(value, indent, key)
        # read as another type, or not allowed plain: one line of printable text takes single quotes
        quoted = text.replace("'", "''")
        if column + len(quoted) + 2 <= self.width:
            return f"'{quoted}'"
        return f"'{self._fold(quoted, column + 1, indent + 2, True)}'"

    def _fold(self, text: str, column: int, indent: int, quoted: bool) -> str:
        """`text` written from `column` as the emitter writes a plain or single-quoted scalar: a
        single space met past the width (in quotes, not the first or last character) becomes a
        line break and the indentation of the continuation."""
        pieces: list[str] = []
        for match in _SPACES_OR_WORD.finditer(text):
            piece = match.group()
            if (piece == " " and column > self.width
                    and not (quoted and (match.start() == 0 or match.end() == len(text)))):
                pieces.append("\n" + " " * indent)
                column = indent
            else:
                pieces.append(piece)
                column += len(piece)
        return "".join(pieces)

    def _cut(self, value: Any, indent: int, key: str | None) -> str:
        """PyYAML's text of `value` in the same place: the same indentation and the same column,
        so it folds its lines where it would in the whole document."""
        place = (value, indent, key or "")
        text = self.cut.get(place)
        if text is None:
            if indent % 2:
                raise _Fallback
            # the key (or, for an item, the key of its sequence) sits `indent` deep under keys "a"
            document: Any = {key: value} if key is not None else {"x": [value]} if indent else [value]
            head = "" if key is None and not indent else "".join(f"{' ' * i}a:\n" for i in range(0, indent, 2))
            for _ in range(0, indent, 2):
                document = {"a": document}
            pad = " " * indent
            head += f"{pad}{key}: " if key is not None else f"{pad}x:\n{pad}- " if indent else "- "
            full = _pyyaml(document, self.width)
            if not full.startswith(head) or not full.endswith("\n"):
                raise _Fallback
            text = self.cut[place] = full[len(head):-1]
        return text


def _pyyaml(value: Any, width: int) -> str:
    return yaml.dump(value, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
                     width=width)


def dump_plain(value: Any, *, width: int = 100) -> str:
    """Block-style YAML of ``value``, keys unsorted, unicode as is."""
    try:
        return _Writer(width).document(value)
    except _Fallback:
        pass
    # A node per value, none of them in a cycle the collector could free: at a million nodes its
    # passes over them were a fifth of the dump.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _pyyaml(value, width)
    finally:
        if collecting:
            gc.enable()
