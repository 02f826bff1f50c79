"""The registry of bad-input kinds the suite covers (issue #9: "the suite counts how many kinds are
covered"). Every test of a kind is decorated with ``@covers("kind")``; test_kinds_count.py checks
that each kind listed here has at least one test and that nothing unlisted sneaks in."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

BAD_INPUT_KINDS: dict[str, str] = {
    # loader: files, YAML, Jinja2 (test_bad_input.py)
    "arbitrary_bytes": "random bytes as a playbook or inventory",
    "deep_nesting": "YAML nested far deeper than any playbook (flow and block style)",
    "alias_bomb": "billion-laughs YAML aliases",
    "huge_file": "files larger than 64 MiB (playbook, vars_files)",
    "non_utf8": "playbooks and .env files that are not UTF-8",
    "tabs": "tabs used for indentation",
    "duplicate_keys": "the same key twice in one mapping (playbook and inventory)",
    "yaml_tags": "!!python/... and other explicit tags",
    "control_chars": "NUL and other control characters in a file",
    "special_files": "a playbook/vars/inventory path that is /dev/zero or a FIFO",
    "sandbox_escape": "Jinja2 templates reaching for Python internals",
    "variable_cycle": "variables that refer to each other (and very long chains)",
    "template_runaway_loop": "templates that loop (practically) forever",
    "template_huge_value": "templates that build huge strings or lists",
    "template_errors": "undefined variables, syntax errors, exceptions inside templates",
    "schema_violations": "wrong types and unknown keys, fuzzed",
    "bad_extra_vars": "malformed -e values and -e @files",
    "bad_env_file": "malformed .env lines",
    # SQL side (test_hostile_sql.py)
    "hostile_identifiers": "quotes, semicolons, --, spaces, dots, upper case, unicode in every kind of name",
    "invalid_identifiers": "empty, NUL, and longer than 63 bytes names",
    "hostile_passwords": "passwords with quotes, backslashes, $$ and SQL",
    "sql_looking_values": "'; DROP TABLE x; -- in comments, settings, valid_until, versions, encodings",
    "sql_fragment_injection": "types, defaults, checks and index expressions that hold statements or escape",
}

COVERED: dict[str, list[str]] = defaultdict(list)


def covers(*kinds: str) -> Callable[[Any], Any]:
    for kind in kinds:
        assert kind in BAD_INPUT_KINDS, f"unknown bad-input kind {kind!r}: add it to BAD_INPUT_KINDS"

    def mark(fn: Any) -> Any:
        for kind in kinds:
            COVERED[kind].append(f"{fn.__module__}::{fn.__name__}")
        return pytest.mark.bad_input(*kinds)(fn)

    return mark
