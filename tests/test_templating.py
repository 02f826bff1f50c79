"""walk_strings: which strings it hands to the renderer, with which path, and what it copies."""

from __future__ import annotations

import copy
import os
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erpprov.load.template_errors import TemplateError
from erpprov.load.templating import LazyVars, walk_strings

_text = st.sampled_from(["plain", "{{ x }}", "a{b", "", "{% if y %}z{% endif %}", "}"])
_leaf = st.one_of(_text, st.integers(), st.booleans(), st.none())
_tree = st.recursive(_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), inner, max_size=4)),
    max_leaves=30)


def _reference(value: Any, path: tuple[Any, ...] = ()) -> Any:
    """The obvious rebuild-everything walk, as the specification."""
    if isinstance(value, str):
        return f"<{value}@{path}>" if "{" in value else value
    if isinstance(value, list):
        return [_reference(v, path + (i,)) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _reference(v, path + (k,)) for k, v in value.items()}
    return value


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


@given(_tree)
def test_walk_renders_exactly_the_template_strings_at_their_paths(tree: Any) -> None:
    before = copy.deepcopy(tree)
    seen: list[tuple[Any, ...]] = []

    def render(text: str, path: tuple[Any, ...]) -> str:
        assert _at(tree, path) is text  # the path leads to the string in the original
        seen.append(path)
        return f"<{text}@{path}>"

    result = walk_strings(tree, render)
    assert result == _reference(tree)
    assert tree == before  # the input is never modified
    assert len(seen) == len(set(seen))  # each template rendered once


@given(_tree)
def test_walk_shares_what_holds_no_template(tree: Any) -> None:
    result = walk_strings(tree, lambda text, path: text.upper())

    def check(old: Any, new: Any) -> None:
        if isinstance(old, (dict, list)):
            keys = old.keys() if isinstance(old, dict) else range(len(old))
            if all(_reference(old[k]) == old[k] for k in keys):
                assert new is old
            for k in keys:
                check(old[k], new[k])

    check(tree, result)


def test_walk_of_a_template_free_tree_returns_it_unchanged() -> None:
    tree = {"databases": [{"name": "erp", "tables": [{"name": "users", "columns": [{"type": "int"}]}]}]}
    assert walk_strings(tree, lambda text, path: "changed") is tree


def test_templates_read_variables_but_cannot_change_them() -> None:
    """Rendered values share the playbook's lists and dicts (nothing is copied): every host, and
    the play itself, must see them as written."""
    raw = {"xs": [1, 2], "conf": {"a": 1}, "n": "{{ xs.append(3) or xs | length }}",
           "k": "{{ conf.update(b=2) or conf | length }}", "first": "{{ xs[0] }}-{{ xs.index(2) }}-{{ conf.get('a') }}"}
    for _host in ("a", "b"):
        variables = LazyVars(raw, {})
        for name in ("n", "k"):
            with pytest.raises(TemplateError, match="not allowed"):
                variables[name]
        assert variables["first"] == "1-1-1"
    assert raw["xs"] == [1, 2] and raw["conf"] == {"a": 1}


def _in_a_thread(fn: Any) -> BaseException | None:
    """What ``fn`` raised in a worker thread (where hosts render), or None."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # handed back to the test
            raised.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=120)  # a hang, not a speed limit
    assert not worker.is_alive(), "the render was not stopped"
    return raised[0] if raised else None


def test_runaway_loops_are_stopped_off_the_main_thread() -> None:
    from erpprov.load.templating import render_string

    error = _in_a_thread(lambda: render_string(
        "{% set r = range(100000) | list %}{% for a in r %}{% for b in r %}{% endfor %}{% endfor %}", {}))
    assert isinstance(error, TemplateError) and "still rendering" in error.message


def test_lookup_file_refuses_special_and_oversized_files(tmp_path: Any) -> None:
    from erpprov.load.template_errors import MAX_OUTPUT_CHARS
    from erpprov.load.templating import render_string

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big"
    big.write_bytes(b"x" * (MAX_OUTPUT_CHARS + 1))
    for path, message in (("/dev/zero", "not a regular file"), (str(fifo), "not a regular file"),
                          (str(big), "larger than")):
        error = _in_a_thread(lambda p=path: render_string("{{ lookup('file', '" + p + "') }}", {}))
        assert isinstance(error, TemplateError) and message in error.message, (path, error)
    (tmp_path / "secret").write_text("s3cret\n")
    assert render_string("{{ lookup('file', '" + str(tmp_path / "secret") + "') }}", {}) == "s3cret"


# Each renders a value just past MAX_OUTPUT_CHARS characters (or items, for a list) with one operation,
# mostly by exactly one: small enough to build safely here, so each must be refused by name (issue #14).
JUST_PAST_THE_LIMIT = [
    "{{ 'x'.ljust(1000001) }}",
    "{{ 'x'.center(1000001) }}",
    "{{ '1'.zfill(1000001) }}",
    "{{ ('x' * 1001).replace('x', 'y' * 1000) }}",
    "{{ '{:1000001}'.format(1) }}",
    "{{ '%1000001s' % 'x' }}",
    "{{ 'x' | center(1000001) }}",
    "{{ (['x' * 1000] * 1000) | join('-') }}",
    "{% set s = 'x' * 500000 %}{{ s ~ s ~ 'z' }}",
    "{% set b %}{% for i in range(1001) %}{{ 'x' * 1000 }}{% endfor %}{% endset %}{{ b | length }}",
    "{{ (['x' * 999992] + ['x']) | string | length }}",
    "{{ ('x' * 999999) | tojson | length }}",
    "{{ (('<' * 166666) ~ 'xxx') | tojson | length }}",
    "{{ ['x' * 999997] | pprint | length }}",
    "{{ [1] | tojson(indent=1000001) | length }}",
    "{{ [1] | batch(1000001, 0) | list | length }}",
    "{{ [1] | slice(1000001) | list | length }}",
    "{{ ('\u0390' * 333334) | upper | list | length }}",
    "{{ (['x'] * 1000000 + ['y']) | length }}",
]


@pytest.mark.parametrize("text", JUST_PAST_THE_LIMIT)
def test_one_operation_just_past_the_output_limit_is_refused_by_name(text: str) -> None:
    from erpprov.load.templating import render_string

    with pytest.raises(TemplateError, match="more than the limit of 1000000 "):
        render_string(text, {})


@pytest.mark.parametrize("text,expected", [
    ("{{ 'x'.ljust(10) }}|", "x         |"),
    ("{{ 'x'.rjust(3, '-') }} {{ 'x'.center(5) }} {{ '7'.zfill(3) }}", "--x   x   007"),
    ("{{ 'a\tb'.expandtabs(4) }}", "a   b"),
    ("{{ '{:>8}'.format(n) }}", "      42"),
    ("{{ '{:,}'.format(1234567) }} {{ '{:.2f}'.format(2.5) }} {{ '{x:0>4}'.format_map({'x': n}) }}",
     "1,234,567 2.50 0042"),
    ("{{ '%05d' % n }} {{ '%(a)s-%(a)s' % {'a': 'b'} }} {{ '%*d' % (4, n) }} {{ '100%%' % () }}",
     "00042 b-b   42 100%"),
    ("{{ s.replace('a', 'b') }} {{ s | replace('a', 'c', 1) }}", "bbb caa"),
    ("{{ 'a\nb' | indent(4) }}|{{ 'a\nb' | indent('> ', first=true) }}", "a\n    b|> a\n> b"),
    ("{{ 'x' | center(5) }}|{{ 'aa bb cc' | wordwrap(5) }}|{{ '%s=%d' | format('k', n) }}", "  x  |aa bb\ncc|k=42"),
    ("{{ [1, 2, 3] | join(',') }} {{ users | join(',', attribute='name') }} {{ '-'.join(['a', 'b']) }}",
     "1,2,3 u1,u2 a-b"),
    ("{{ s ~ n ~ s }} {{ s + 'b' }} {{ [1, 'a'] }} {{ {'k': (1, 2)} }}", "aaa42aaa aaab [1, 'a'] {'k': (1, 2)}"),
    ("{% set b %}<{{ n }}>{% endset %}{% macro m(x) %}[{{ x }}]{% endmacro %}{{ b }}{{ m(b) }}", "<42>[<42>]"),
    ("{{ 'ab'.translate({97: 'xy'}) }}", "xyb"),
    ("{{ [1, 2] | string }} {{ {'a': [1, 'b']} | pprint }} {{ 'ab' | list }}", "[1, 2] {'a': [1, 'b']} ['a', 'b']"),
    ("{{ {'a': 1} | tojson }} {{ {'b': 1, 'a': none} | tojson }}", '{"a": 1} {"a": null, "b": 1}'),
    ("{{ {'b': [1, \"<a href='x'>&\"], 'a': '\u00e9'} | tojson(indent=2) }}",
     '{\n  "a": "\\u00e9",\n  "b": [\n    1,\n    "\\u003ca href=\\u0027x\\u0027\\u003e\\u0026"\n  ]\n}'),
    ("{{ [1, 2, 3] | batch(2) | list }} {{ [1, 2, 3] | batch(2, 0) | list }} {{ [1, 2, 3] | slice(2, 0) | list }}",
     "[[1, 2], [3]] [[1, 2], [3, 0]] [[1, 2], [3, 0]]"),
    ("{{ range(5) | list }} {{ range(100000) | list | length }} {{ [1] + [2] }}", "[0, 1, 2, 3, 4] 100000 [1, 2]"),
])
def test_ordinary_uses_of_the_bounded_operations_still_render(text: str, expected: str) -> None:
    from erpprov.load.templating import render_string

    variables = {"n": 42, "s": "aaa", "users": [{"name": "u1"}, {"name": "u2"}]}
    assert render_string(text, variables) == expected
