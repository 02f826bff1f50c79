"""YAML text of plain values (dicts, lists, strings, numbers, booleans, None), byte for byte what
`yaml.dump(..., Dumper=CSafeDumper)` writes, at a fraction of its cost.

PyYAML turns every value into a node through a generic, per-value dispatch (the alias check, the
type's representer, the style bookkeeping), and its serializer asks the resolver, per scalar,
which tag the plain text would load as: at 10,000 tables (a million values) that was two thirds
of an export. Here the plain types get their node straight away, and a scalar's resolved tag is
asked once per distinct text; anything else goes through PyYAML's own representer, so shared
containers still become anchors and aliases, and unsupported values fail as they did.
"""

from __future__ import annotations

import gc
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


def dump_plain(value: Any, *, width: int = 100) -> str:
    """Block-style YAML of ``value``, keys unsorted, unicode as is."""
    # A node per value, none of them in a cycle the collector could free: at a million nodes its
    # passes over them were a fifth of the dump.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return yaml.dump(value, Dumper=_PlainDumper, sort_keys=False,
                         allow_unicode=True, default_flow_style=False, width=width)
    finally:
        if collecting:
            gc.enable()
