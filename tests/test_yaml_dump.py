"""The export's YAML writer: the same bytes as PyYAML's safe dumper for any plain value."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from erpprov.files.yaml_dump import dump_plain

SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# Texts that load as something else unless quoted: booleans, nulls, numbers, dates, indicators.
_TRICKY = st.sampled_from(["", "yes", "No", "null", "~", "0x1F", "1e3", "1_000", "2024-01-01", ".inf", "- a",
                           "a: b", "#c", "&x", "*y", "!t", "{{ env.X }}", "'q'", '"d"', " lead", "trail ",
                           "multi\nline", "tab\there", "ü", "\x85", "\ufeff"])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(), _TRICKY)
_KEYS = st.one_of(st.text(max_size=12), _TRICKY, st.integers())


def _values(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                         st.dictionaries(_KEYS, inner, max_size=5)), max_leaves=30)


# What an export holds: identifier keys, SQL types and defaults, names, comments of any length
# (folded past the width), templates, numbers; nested as plays, databases, tables and columns.
_WORDS = st.sampled_from(["id", "integer", "character varying(30)", "numeric(12,2)", "CURRENT_TIMESTAMP", "0",
                          "true", "t0001", "public", "SELECT", "a b", "it's", "x: y", "(a + b)", "now()", "-1",
                          "{{ env.R_PASSWORD }}", "on_create", "2024-01-01", "1.5", "#no", "a #b", "ü", "Straße",
                          "状態", "'q'", "a  b", "end:", "- x", "tab\there", "\U00010000"])
_SENTENCES = st.lists(_WORDS, min_size=1, max_size=30).map(" ".join)
_EXPORT_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), _WORDS, _SENTENCES, _TRICKY, st.text(max_size=8))
_IDENTIFIERS = st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True)


def _export_like(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    mappings = st.recursive(st.dictionaries(_IDENTIFIERS, scalars, min_size=1, max_size=6),
                            lambda inner: st.dictionaries(_IDENTIFIERS, st.one_of(
                                scalars, inner, st.lists(st.one_of(inner, scalars), max_size=4)),
                                min_size=1, max_size=6), max_leaves=40)
    return st.lists(mappings, min_size=1, max_size=3)


def _pyyaml(value: Any) -> str:
    return yaml.dump(value, Dumper=SAFE_DUMPER, sort_keys=False, allow_unicode=True, default_flow_style=False,
                     width=100)


@settings(max_examples=300, deadline=None)
@given(_values(_SCALARS))
def test_same_bytes_as_pyyaml(value: Any) -> None:
    assert dump_plain(value) == _pyyaml(value)


@settings(max_examples=100, deadline=None)
@given(_export_like(_EXPORT_SCALARS))
def test_same_bytes_as_pyyaml_for_export_shapes(value: Any) -> None:
    assert dump_plain(value) == _pyyaml(value)


def test_shared_containers_become_anchors_and_aliases() -> None:
    shared = {"privileges": ["SELECT"]}
    value = {"grants": [shared, shared], "again": shared["privileges"]}
    assert dump_plain(value) == _pyyaml(value)
    assert "&id" in dump_plain(value)


def test_unsupported_values_fail_as_in_pyyaml() -> None:
    with pytest.raises(yaml.representer.RepresenterError):
        dump_plain({"when": object()})


def test_lines_near_the_width_fold_as_in_pyyaml() -> None:
    for length in range(85, 115):
        for text in ("w" * (length - 30) + " a b c d e f g h i j k l m n o", "{" + "q" * (length - 6) + " x y",
                     "ß" * (length - 8) + " it's a", "1" * (length - 4) + " 2 3", "x" * (length - 3) + "  y "):
            value = [{"name": text, "table": {"comment": text}, "privileges": [text]}]
            assert dump_plain(value) == _pyyaml(value)
