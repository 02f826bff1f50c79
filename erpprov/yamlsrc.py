"""YAML loading that remembers where every value came from.

PyYAML's plain loaders forget line numbers, accept duplicate keys (last one wins) and expand
aliases without limit. Playbooks are written by people, so every later error must point back to a
file:line:column; hence we compose the node graph ourselves and keep a map from each value's path
(``(0, "roles", 1, "name")``) to its position.
"""

from __future__ import annotations

import gc
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from erpprov.errors import ErpprovError, Location

# Bounds that keep hostile input (alias bombs, pathological nesting, huge files) from hanging us.
MAX_BYTES = 10 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 64

Path_ = tuple[Any, ...]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser when libyaml is there

_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_SCALAR_AS_STRING = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}


@dataclass
class Source:
    """A parsed YAML document, and the node graph it came from for finding where a value stands.

    Positions are looked up only when an error needs one, by walking the nodes along the value's
    path: recording them for every value up front cost more than parsing a large playbook."""

    file: str
    data: Any
    root: yaml.Node | None = None

    def locate(self, path: Path_, *, prefer_key: bool = False) -> Location:
        """The closest known position for ``path``: the value's (or its key's), else a parent's."""
        node = self.root
        if node is None:
            return Location(self.file)
        mark = node.start_mark
        for index, part in enumerate(path):
            last = index == len(path) - 1
            if isinstance(node, yaml.MappingNode):
                pair = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
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


class _Builder:
    def __init__(self, source: Source, loader: yaml.SafeLoader):
        self.source = source
        self.loader = loader
        self.count = 0

    def build(self, node: yaml.Node, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise ErpprovError(
                f"document expands to more than {MAX_NODES} values",
                location=_mark(self.source.file, node.start_mark),
                hint="YAML aliases (*name) may be expanding exponentially",
            )
        if depth > MAX_DEPTH:
            raise ErpprovError(
                f"document is nested deeper than {MAX_DEPTH} levels",
                location=_mark(self.source.file, node.start_mark),
            )
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _COLLECTION_TAGS:
            raise ErpprovError(
                f"unsupported YAML tag {node.tag}",
                location=_mark(self.source.file, node.start_mark),
                hint="only plain YAML values are allowed (no !tags)",
            )
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, depth + 1) for item in node.value]
        if node.tag in _SCALAR_AS_STRING:
            return str(node.value)
        constructor = self.loader.yaml_constructors.get(node.tag)
        if constructor is None:
            raise ErpprovError(
                f"unsupported YAML tag {node.tag}",
                location=_mark(self.source.file, node.start_mark),
                hint="only plain YAML values are allowed (no !tags)",
            )
        return constructor(self.loader, node)

    def _mapping(self, node: yaml.MappingNode, depth: int) -> dict[Any, Any]:
        self.loader.flatten_mapping(node)  # resolves "<<" merge keys
        result: dict[Any, Any] = {}
        seen: dict[Any, yaml.Mark] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:bool":
                # YAML 1.1 reads `on:`/`yes:` as booleans; as keys they are always meant as words.
                key: Any = key_node.value
            else:
                key = self.build(key_node, depth + 1)
            if isinstance(key, (list, dict)):
                raise ErpprovError(
                    "a mapping key must be a plain value",
                    location=_mark(self.source.file, key_node.start_mark),
                )
            if key in seen:
                first = seen[key]
                raise ErpprovError(
                    f"duplicate key {key!r} (first defined on line {first.line + 1})",
                    location=_mark(self.source.file, key_node.start_mark),
                    hint="YAML would silently keep only the last one; remove or rename one of them",
                )
            seen[key] = key_node.start_mark
            result[key] = self.build(value_node, depth + 1)
        return result


def _mark(file: str, mark: yaml.Mark | None) -> Location:
    if mark is None:
        return Location(file)
    return Location(file, mark.line + 1, mark.column + 1)


def _tab_at(text: str, mark: yaml.Mark | None) -> bool:
    if mark is None:
        return "\t" in text
    lines = text.splitlines()
    return mark.line < len(lines) and "\t" in lines[mark.line][: mark.column + 1]


def _flow_depth(text: str) -> int:
    """How deep [ and { nest, counted naively (brackets inside strings count too)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


def _loader_for(text: str) -> yaml.SafeLoader:
    # libyaml composes recursively in C: pathological nesting would overflow the C stack and crash
    # the process, where the Python parser raises an error we can report.
    if _Loader is not yaml.SafeLoader and ("[" in text or "{" in text) and _flow_depth(text) > MAX_DEPTH:
        return yaml.SafeLoader(text)
    return _Loader(text)


def parse_yaml(text: str | bytes, file: str) -> Source:
    """Parse one YAML document; every failure is an ErpprovError with a position."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise ErpprovError(f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB", location=Location(file))
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ErpprovError(
                f"file is not valid UTF-8 (byte {exc.start})", location=Location(file), hint="save it as UTF-8"
            ) from None
    if len(text) > MAX_BYTES:
        raise ErpprovError(f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB", location=Location(file))
    source = Source(file=file, data=None)
    loader: yaml.SafeLoader | None = None
    collecting = gc.isenabled()
    try:
        # The C parser composes a playbook of a thousand tables in a fraction of the pure-Python
        # one's time; the garbage collector would rescan the growing node graph over and over.
        gc.disable()
        loader = _loader_for(text)  # its reader rejects control characters right here
        node = loader.get_single_node()
        if node is not None:
            source.root = node
            source.data = _Builder(source, loader).build(node, 0)
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
    except RecursionError:
        raise ErpprovError(f"document is nested deeper than {MAX_DEPTH} levels", location=Location(file)) from None
    finally:
        if collecting:
            gc.enable()
        if loader is not None:
            loader.dispose()
    return source


def load_yaml(path: Path, *, what: str = "file") -> Source:
    """Read and parse ``path``; a missing or unreadable file is an ErpprovError too."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ErpprovError(f"{what} not found: {path}", hint="check the path, or pass another with its option") from None
    except IsADirectoryError:
        raise ErpprovError(f"{what} is a directory, not a file: {path}") from None
    except OSError as exc:
        raise ErpprovError(f"cannot read {what} {path}: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise ErpprovError(f"{what} is a directory, not a file: {path}")
        raise ErpprovError(f"{what} is not a regular file: {path}", hint="point at a YAML file")
    with os.fdopen(fd, "rb") as handle:
        try:
            raw = handle.read(MAX_BYTES + 1)  # never more than the limit, whatever the file claims
        except OSError as exc:
            raise ErpprovError(f"cannot read {what} {path}: {exc.strerror}") from None
    return parse_yaml(raw, str(path))
