"""A stable digest of plain data: the same data gives the same digest in any run."""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from typing import Any


def fingerprint(data: Any) -> str:
    """A stable digest of plain data (never fed secrets: callers pass redacted state)."""
    blob = json.dumps(_canonical(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    """Dataclasses, tuple-keyed dicts and sets as JSON, in an order that does not depend on history."""
    if hasattr(value, "__dataclass_fields__"):
        return {name: _canonical(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, dict):
        return sorted(([_canonical(k), _canonical(v)] for k, v in value.items()), key=repr)
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)
