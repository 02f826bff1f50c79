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


def _pyyaml(value: Any) -> str:
    return yaml.dump(value, Dumper=SAFE_DUMPER, sort_keys=False, allow_unicode=True, default_flow_style=False,
                     width=100)


@settings(max_examples=300, deadline=None)
@given(_values(_SCALARS))
def test_same_bytes_as_pyyaml(value: Any) -> None:
    assert dump_plain(value) == _pyyaml(value)


def test_shared_containers_become_anchors_and_aliases() -> None:
    shared = {"privileges": ["SELECT"]}
    value = {"grants": [shared, shared], "again": shared["privileges"]}
    assert dump_plain(value) == _pyyaml(value)
    assert "&id" in dump_plain(value)


def test_unsupported_values_fail_as_in_pyyaml() -> None:
    with pytest.raises(yaml.representer.RepresenterError):
        dump_plain({"when": object()})
