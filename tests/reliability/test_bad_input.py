"""Hostile and broken input files: every one gets erpprov's own one-line error (`error: ...` on
stderr, exit 1, no traceback) from `erpprov validate`, within bounded time and memory.

Each case runs the real CLI in a subprocess with a timeout and an RLIMIT_AS of 1 GiB; the cases
are started together by a module fixture (they are independent) and each test checks its own.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erpprov.errors import ErpprovError
from erpprov.load.project import load_project
from erpprov.load.yamlsrc import MAX_MIB, MAX_MIB_VARIABLE, parse_yaml
from tests.helpers import MiB, Run, assert_clean_error, erpprov, write_project

from .conftest import erpprov_many
from .kinds import covers

TIMEOUT = 12.0      # seconds any single validate may take before we call it a hang

MARKER = Path("/tmp") / f"erpprov-reliability-pwned-{os.getpid()}"


@dataclass
class Case:
    playbook: str | bytes
    args: tuple[str, ...] = ()
    setup: Callable[[Path], None] | None = None
    timeout: float = TIMEOUT
    dedent: bool = False


def _billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "- name: bomb\n  vars:\n" + "".join(f"    {line}\n" for line in lines)


def _block_nesting(depth: int) -> str:
    text = "- name: deep\n  vars:\n"
    for level in range(depth):
        text += "  " * (level + 2) + f"k{level}:\n"
    return text + "  " * (depth + 2) + "leaf: 1\n"


def _huge_vars(root: Path) -> None:
    (root / "playbooks" / "big.yaml").write_bytes(b"# " + b"x" * ((MAX_MIB + 1) * MiB) + b"\nk: v\n")


def _fifo(root: Path) -> None:
    os.mkfifo(root / "playbooks" / "vars.fifo")


def _latin1_env(root: Path) -> None:
    (root / ".env").write_bytes(b"PASSWORD=caf\xe9\n")


def _bad_env(root: Path) -> None:
    (root / ".env").write_text("GOOD=1\nthis line is not KEY=VALUE\n")


def _bad_env_quote(root: Path) -> None:
    (root / ".env").write_text('PW="unterminated\n')


def _alias_bomb_inventory(root: Path) -> None:
    (root / "inventory.yaml").write_text("all:\n  vars:\n" + "".join(
        f"    {line}\n" for line in _billion_laughs().splitlines()[2:]))


def _dup_inventory(root: Path) -> None:
    (root / "inventory.yaml").write_text("all:\n  hosts:\n    localhost: {driver: external}\n"
                                         "    localhost: {driver: local}\n")


def _random_inventory(root: Path) -> None:
    (root / "inventory.yaml").write_bytes(random.Random(3).randbytes(2048))


def _evil_vars_file(root: Path) -> None:
    (root / "playbooks" / "evil.yaml").write_text(f'!!python/object/apply:os.system ["touch {MARKER}"]\n')


def _chain(length: int) -> str:
    chain = "".join(f'    v{i}: "{{{{ v{i + 1} }}}}"\n' for i in range(length))
    return f'- name: "{{{{ v0 }}}}"\n  vars:\n{chain}    v{length}: end\n'


SANDBOX = {
    "mro": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "globals_cycler": "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "globals_lipsum": "{{ lipsum.__globals__['os'].popen('touch MARKER').read() }}",
    "self_context": "{{ self._TemplateReference__context }}",
    "format_attr": "{{ '{0.__class__.__init__.__globals__}'.format(env) }}",
    "format_map": "{{ '{x.__class__}'.format_map({'x': env}) }}",
    "func_globals": "{{ env.get.__self__.__class__.__init__.__globals__ }}",
    "subclass_walk": "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "getattr_filter": "{{ env|attr('__class__')|attr('__mro__') }}",
    "namespace": "{{ namespace.__init__.__globals__ }}",
    "config": "{{ config.items() }}",
    "import": "{% import 'os' as os %}{{ os }}",
    "include": "{% include '/etc/passwd' %}",
}

# One operation each that would build gigabytes before any output check could see the result: each
# must be refused from its arguments, before it allocates (issue #14).
HUGE_RESULTS = {
    "ljust": "{{ 'x'.ljust(10**10) }}",
    "rjust": "{{ 'x'.rjust(10**10) }}",
    "center": "{{ 'x'.center(10**10) }}",
    "zfill": "{{ '1'.zfill(10**10) }}",
    "expandtabs": "{{ 'a\\tb'.expandtabs(10**10) }}",
    "format_width": "{{ '{:10000000000}'.format(1) }}",
    "format_nested_width": "{{ '{:{}}'.format('x', 10**10) }}",
    "format_precision": "{{ '{:.2000000000f}'.format(1.5) }}",
    "format_repeated_field": "{{ ('{0}' * 3000).format('x' * 999999) }}",
    "format_map": "{{ '{x:10000000000}'.format_map({'x': 1}) }}",
    "percent_width": "{{ '%10000000000s' % 'x' }}",
    "percent_star_width": "{{ '%*s' % (10**10, 'x') }}",
    "percent_repeated_key": "{{ ('%(a)s' * 3000) % {'a': 'x' * 999999} }}",
    "replace": "{{ ('x' * 99999).replace('', 'y' * 99999) }}",
    "join": "{{ ('y' * 999999).join(['a'] * 3000) }}",
    "translate": "{{ ('x' * 999999).translate({120: 'y' * 9999}) }}",
    "filter_center": "{{ 'x' | center(10**10) }}",
    "filter_indent": "{{ 'a' | indent(10**10, true) }}",
    "filter_wordwrap": "{{ ('x ' * 99999) | wordwrap(1, wrapstring='y' * 99999) }}",
    "filter_format": "{{ '%10000000000s' | format('x') }}",
    "filter_replace": "{{ ('x' * 99999) | replace('', 'y' * 99999) }}",
    "filter_join": "{{ (['y' * 999999] * 3000) | join }}",
    "concat": "{% set s = 'x' * 999999 %}{{ " + " ~ ".join(["s"] * 3000) + " }}",
    "plus": "{% set s = 'x' * 999999 %}" + "{% set s = s + s + s + s %}" * 6 + "{{ s }}",
    "list_as_text": "{{ ['x' * 999999] * 3000 }}",
    "set_block": "{% set b %}{% for i in range(3000) %}{{ 'x' * 999990 ~ i }}{% endfor %}{% endset %}{{ b | length }}",
    "macro": "{% macro m() %}{% for i in range(3000) %}{{ 'x' * 999990 ~ i }}{% endfor %}{% endmacro %}"
             "{{ m() | length }}",
    "filter_string": "{{ (['x' * 999999] * 3000) | string | length }}",
    "filter_tojson": "{{ (['x' * 999999] * 3000) | tojson | length }}",
    "filter_tojson_indent": "{{ [1] | tojson(indent=10**9) | length }}",
    "filter_pprint": "{{ (['x' * 999999] * 3000) | pprint | length }}",
    "filter_batch_fill": "{{ [1] | batch(10**10, 'x') | list | length }}",
    "filter_slice": "{{ [1] | slice(10**10) | list | length }}",
    "plus_list": "{% set l = ['x'] * 1000000 %}" + "{% set l = l + l + l + l %}" * 6 + "{{ l | length }}",
    # any filter, given a value past the limit: refused before it turns it into something larger
    "filter_center_of_a_big_list": "{{ (['x' * 999999] * 3000) | center(5) | length }}",
    "filter_upper_of_a_big_list": "{{ (['x' * 999999] * 3000) | upper | length }}",
    "filter_escape_of_a_big_list": "{{ (['x' * 999999] * 3000) | e | length }}",
    "filter_urlencode_chain": "{{ (' ' * 999999) | urlencode | urlencode | urlencode | urlencode | urlencode "
                              "| urlencode | urlencode | length }}",
}

# Huge values that Jinja2's sandbox itself refuses, or that are not there to build: pinned, so
# that a change of Jinja2 or of the sandbox's globals cannot reopen them unseen (issue #14).
HUGE_ELSEWHERE = {
    "range_list": ("{{ range(10**10) | list | length }}", "MAX_RANGE (100000)"),
    "range_loop": ("{% for i in range(10**10) %}{% endfor %}", "MAX_RANGE (100000)"),
    "lipsum": ("{{ lipsum(n=10**9) | length }}", "'lipsum' is undefined"),
}

CASES: dict[str, Case] = {
    # arbitrary bytes, as the playbook and as the inventory
    "bytes_playbook_0": Case(random.Random(0).randbytes(4096)),
    "bytes_playbook_1": Case(random.Random(1).randbytes(65536)),
    "bytes_inventory": Case("- name: ok\n", setup=_random_inventory),
    # nesting
    "deep_flow": Case("[" * 100_000 + "]" * 100_000),
    "deep_flow_mapping": Case("{a: " * 50_000 + "1" + "}" * 50_000),
    "deep_block": Case(_block_nesting(200)),
    # alias bombs
    "bomb_playbook": Case(_billion_laughs()),
    "bomb_inventory": Case("- name: ok\n", setup=_alias_bomb_inventory),
    "bomb_merge_keys": Case("- name: merge\n  vars:\n    a: &a {x: 1}\n" + "".join(
        f"    b{i}: &b{i} {{<<: *{'a' if i == 0 else f'b{i - 1}'}, y{i}: [*{'a' if i == 0 else f'b{i - 1}'}, "
        f"*{'a' if i == 0 else f'b{i - 1}'}]}}\n" for i in range(30))),
    # size
    "huge_playbook": Case(b"- name: big\n#" + b"x" * ((MAX_MIB + 1) * MiB) + b"\n"),
    "huge_vars_file": Case("- name: big\n  vars_files: [big.yaml]\n", setup=_huge_vars),
    # encodings and characters
    "latin1_playbook": Case("- name: café\n".encode("latin-1")),
    "utf16_playbook": Case("- name: x\n".encode("utf-16")),
    "latin1_env": Case("- name: ok\n", setup=_latin1_env),
    "tabs": Case("- name: x\n\troles: []\n"),
    "tabs_in_flow": Case("- name: x\n  roles:\n\t- name: y\n"),
    "nul_byte": Case(b"- name: x\x00y\n"),
    "control_char": Case(b"- name: x\x07y\n"),
    # duplicate keys
    "dup_play_key": Case("- name: x\n  hosts: dev\n  name: y\n"),
    "dup_nested_key": Case("- name: x\n  roles:\n    - {name: a, login: true, login: false}\n"),
    "dup_inventory_host": Case("- name: ok\n", setup=_dup_inventory),
    # tags
    "python_tag": Case(f'- name: !!python/object/apply:os.system ["touch {MARKER}"]\n'),
    "python_tag_vars_file": Case("- name: x\n  vars_files: [evil.yaml]\n", setup=_evil_vars_file),
    "custom_tag": Case("- name: !vault |\n    abc\n"),
    # special files
    "dev_zero_vars_file": Case("- name: x\n  vars_files: [/dev/zero]\n"),
    "dev_zero_inventory": Case("- name: x\n", args=("-i", "/dev/zero")),
    "fifo_vars_file": Case("- name: x\n  vars_files: [vars.fifo]\n", setup=_fifo, timeout=5),
    "directory_playbook": Case("- name: x\n", args=("playbooks",)),
    # variables
    "cycle_pair": Case('- name: "{{ a }}"\n  vars: {a: "{{ b }}", b: "{{ a }}"}\n'),
    "cycle_self": Case('- name: "{{ a }}"\n  vars: {a: "x{{ a }}"}\n'),
    "cycle_via_host_var": Case('- name: "{{ pg_user }}"\n  vars: {pg_user: "{{ x }}", x: "{{ pg_user }}"}\n'),
    "chain_5000": Case(_chain(5000)),
    # runaway templates
    "nested_loops": Case("- name: \"{% for a in 'x' * 100000 %}{% for b in 'x' * 100000 %}{% endfor %}"
                         "{% endfor %}\"\n", timeout=6),
    "list_multiply": Case('- name: "{{ [1] * 10**8 }}"\n', timeout=6),
    "string_multiply": Case("- name: \"{{ 'x' * 10**10 }}\"\n"),
    "string_power": Case('- name: "{{ (10 ** 100000) | string }}"\n'),
    "huge_name": Case("- name: x\n  roles:\n    - name: \"{{ 'r' * 10**6 }}\"\n"),
    "recursive_macro": Case('- name: "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"\n'),
    # plain template mistakes
    "undefined": Case('- name: "{{ nope }}"\n'),
    "syntax": Case('- name: "{{ 1 + }}"\n'),
    "division": Case('- name: "{{ 1 / 0 }}"\n'),
    "int_filter": Case("- name: x\n  roles:\n    - {name: a, connection_limit: \"{{ 'abc' | int + [] }}\"}\n"),
    # extra vars and .env
    "extra_var_no_equals": Case("- name: x\n", args=("-e", "justaword")),
    "extra_var_bad_name": Case("- name: x\n", args=("-e", "1abc=2")),
    "extra_var_missing_file": Case("- name: x\n", args=("-e", "@nope.yaml")),
    "extra_var_list_file": Case("- name: x\n", args=("-e", "@playbooks/dev.yaml")),
    "env_bad_line": Case("- name: ok\n", setup=_bad_env),
    "env_bad_quote": Case("- name: ok\n", setup=_bad_env_quote),
}
CASES.update({f"huge_{k}": Case(f'- name: "{v}"\n') for k, v in HUGE_RESULTS.items()})
CASES.update({f"huge_{k}": Case(f'- name: "{v}"\n') for k, (v, _) in HUGE_ELSEWHERE.items()})
CASES.update({f"sandbox_{k}": Case(f'- name: "{v.replace("MARKER", str(MARKER))}"\n') for k, v in SANDBOX.items()})


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every case through the real `erpprov validate` (see forkcli.py), several at a time."""
    MARKER.unlink(missing_ok=True)
    jobs = []
    for name, case in CASES.items():
        root = write_project(tmp_path_factory.mktemp(name), case.playbook, dedent=case.dedent)
        if case.setup:
            case.setup(root)
        positional = () if (case.args and not case.args[0].startswith("-")) else ("playbooks/dev.yaml",)
        jobs.append((root, ("validate", *positional, *case.args), case.timeout))
    return dict(zip(CASES, erpprov_many(jobs, parallel=3), strict=True))


def check(results: dict[str, Run], name: str, *fragments: str) -> None:
    assert_clean_error(results[name], *fragments)


@covers("arbitrary_bytes")
@pytest.mark.parametrize("name", ["bytes_playbook_0", "bytes_playbook_1", "bytes_inventory"])
def test_arbitrary_bytes_cli(results, name):
    check(results, name)


@covers("arbitrary_bytes")
@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=512))
def test_arbitrary_bytes_parse_only_erpprov_errors(raw):
    try:
        parse_yaml(raw, "fuzz.yaml")
    except ErpprovError as exc:
        assert exc.location is not None and exc.location.file == "fuzz.yaml"


@covers("deep_nesting")
@pytest.mark.parametrize("name", ["deep_flow", "deep_flow_mapping", "deep_block"])
def test_deep_nesting(results, name):
    check(results, name, "nested deeper than 64 levels")


@covers("alias_bomb")
@pytest.mark.parametrize("name", ["bomb_playbook", "bomb_inventory", "bomb_merge_keys"])
def test_alias_bombs(results, name):
    check(results, name, "expands to more than")


@covers("huge_file")
@pytest.mark.parametrize("name", ["huge_playbook", "huge_vars_file"])
def test_huge_files(results, name):
    check(results, name, f"larger than {MAX_MIB} MiB", f"{MAX_MIB_VARIABLE}=")


@covers("non_utf8")
@pytest.mark.parametrize("name,fragment", [("latin1_playbook", "not valid UTF-8"),
                                           ("utf16_playbook", "not valid UTF-8"),
                                           ("latin1_env", ".env")])
def test_non_utf8(results, name, fragment):
    check(results, name, fragment)


@covers("tabs")
@pytest.mark.parametrize("name", ["tabs", "tabs_in_flow"])
def test_tabs(results, name):
    check(results, name, "tab")


@covers("control_chars")
@pytest.mark.parametrize("name", ["nul_byte", "control_char"])
def test_control_characters(results, name):
    check(results, name, "control character")


@covers("duplicate_keys")
@pytest.mark.parametrize("name,fragment", [("dup_play_key", "duplicate key 'name'"),
                                           ("dup_nested_key", "duplicate key 'login'"),
                                           ("dup_inventory_host", "duplicate key 'localhost'")])
def test_duplicate_keys_are_errors_not_last_one_wins(results, name, fragment):
    check(results, name, fragment, "line")


@covers("yaml_tags")
@pytest.mark.parametrize("name", ["custom_tag"])
def test_yaml_tags_are_refused_and_never_run(results, name):
    check(results, name, "tag")
    assert not MARKER.exists(), "a YAML tag executed code"


@covers("yaml_tags")
def test_tagged_collections_never_run_code(results):
    for name in ("python_tag", "python_tag_vars_file"):
        check(results, name)
    assert not MARKER.exists(), "a YAML tag executed code"


@covers("yaml_tags")
@pytest.mark.parametrize("name", ["python_tag", "python_tag_vars_file"])
def test_tags_on_collections_are_refused(results, name):
    check(results, name, "unsupported YAML tag")


@covers("special_files")
@pytest.mark.parametrize("name,fragment", [("directory_playbook", "directory")])
def test_directory_instead_of_file(results, name, fragment):
    check(results, name, fragment)


@covers("special_files")
@pytest.mark.parametrize("name", ["dev_zero_vars_file", "dev_zero_inventory", "fifo_vars_file"])
def test_special_files_are_refused(results, name):
    check(results, name, "not a regular file")


@covers("sandbox_escape")
@pytest.mark.parametrize("name", sorted(f"sandbox_{k}" for k in SANDBOX))
def test_templates_cannot_reach_python_internals(results, name):
    run = results[name]
    assert_clean_error(run)
    assert any(word in run.stderr for word in ("not allowed", "undefined", "unsafe", "template")), str(run)
    assert "root:" not in run.stdout + run.stderr  # /etc/passwd never included
    assert not MARKER.exists(), "a template ran a shell command"


@covers("variable_cycle")
@pytest.mark.parametrize("name", ["cycle_pair", "cycle_self", "cycle_via_host_var"])
def test_variable_cycles(results, name):
    check(results, name, "cycle")


@covers("variable_cycle")
def test_very_long_variable_chain(results):
    run = results["chain_5000"]
    # 5000 variables each naming the next nest 5000 renders deep: erpprov stops with a clean error at
    # the first value, rather than exhausting the stack (a Python RecursionError) or running on.
    assert_clean_error(run, "dev.yaml:1:", "template recursion too deep")


@covers("template_runaway_loop")
def test_nested_loops_end_in_bounded_time(results):
    check(results, "nested_loops", "template")


@covers("template_runaway_loop")
def test_recursive_macro(results):
    check(results, "recursive_macro", "recursion")


@covers("template_huge_value")
@pytest.mark.parametrize("name", ["string_multiply", "string_power"])
def test_huge_strings_end_in_bounded_time_and_memory(results, name):
    check(results, name, "too large")


@covers("template_huge_value")
def test_huge_list_ends_in_bounded_time(results):
    check(results, "list_multiply", "too large")


@covers("template_huge_value")
@pytest.mark.parametrize("name", sorted(f"huge_{k}" for k in HUGE_RESULTS))
def test_one_operation_cannot_build_a_huge_value(results, name):
    check(results, name, "more than the limit of 1000000 ")  # characters, or items of a list
    assert len(results[name].stderr) < 2000, f"{len(results[name].stderr)} bytes of error"


@covers("template_huge_value")
@pytest.mark.parametrize("name", sorted(HUGE_ELSEWHERE))
def test_huge_ranges_and_lipsum_are_refused_by_the_sandbox(results, name):
    check(results, f"huge_{name}", HUGE_ELSEWHERE[name][1])


@covers("template_huge_value", "invalid_identifiers")
def test_huge_name_gives_a_short_error(results):
    check(results, "huge_name", "bytes long")
    assert len(results["huge_name"].stderr) < 2000, f"{len(results['huge_name'].stderr)} bytes of error"


@covers("template_errors")
@pytest.mark.parametrize("name,fragment", [("undefined", "undefined variable"), ("syntax", "syntax error"),
                                           ("division", "ZeroDivisionError"), ("int_filter", "template failed")])
def test_template_mistakes(results, name, fragment):
    check(results, name, fragment, "dev.yaml:")


@covers("bad_extra_vars")
@pytest.mark.parametrize("name,fragment", [("extra_var_no_equals", "name=value"),
                                           ("extra_var_bad_name", "name=value"),
                                           ("extra_var_missing_file", "not found"),
                                           ("extra_var_list_file", "mapping")])
def test_bad_extra_vars(results, name, fragment):
    check(results, name, fragment)


@covers("bad_env_file")
@pytest.mark.parametrize("name,fragment", [("env_bad_line", "KEY=VALUE"), ("env_bad_quote", "unterminated")])
def test_bad_env_file(results, name, fragment):
    check(results, name, fragment, ".env:")


# --- fuzzed structure (in-process: the CLI adds nothing but startup time here) -------------------

KEYS = ["name", "hosts", "roles", "databases", "tables", "columns", "type", "grants", "to", "privileges",
        "login", "password", "connection_limit", "valid_until", "settings", "schemas", "extensions",
        "version", "encoding", "comment", "member_of", "prune", "owner", "vars", "templates", "container",
        "image", "ports", "indexes"]
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=6))  # known keys, and keys no model has
values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(),
              st.text(max_size=20), st.sampled_from(["{{ x }}", "{{ 1/0 }}", "{% if %}", "{{ env }}", "'; DROP", "ALL",
                                                     "{{ a }}", "x" * 70, ""])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=25,
)


@covers("schema_violations")
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plays=st.lists(st.dictionaries(keys, values, max_size=5), max_size=3),
       play_vars=st.dictionaries(st.sampled_from(["a", "b", "x"]), values, max_size=3))
def test_fuzzed_plays_give_only_erpprov_errors(tmp_path, plays, play_vars):
    for play in plays:
        play.setdefault("vars", play_vars)
    root = write_project(tmp_path, yaml.safe_dump(plays, allow_unicode=True))
    try:
        load_project(root / "playbooks" / "dev.yaml", root / "inventory.yaml", environ={})
    except ErpprovError as exc:
        assert str(exc).strip()


@covers("schema_violations")
def test_schema_violation_points_at_the_line(tmp_path):
    root = write_project(tmp_path, "- name: x\n  roles:\n    - name: a\n      conection_limit: 3\n")
    run = erpprov(root, "validate", "playbooks/dev.yaml", mem=1024 * MiB)
    assert_clean_error(run, "dev.yaml:4", "unknown key 'conection_limit'", "did you mean")
