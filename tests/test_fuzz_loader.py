"""The loader must answer any YAML document with erpprov's own error, never another exception or a
hang, and read values exactly as PyYAML does. Random bytes and fuzzed plays are in
tests/reliability/test_bad_input.py."""

import string
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erpprov.errors import ErpprovError
from erpprov.load.project import load_project
from erpprov.load.yamlsrc import parse_yaml
from tests.helpers import PLAYBOOK, write_project

KEYS = ["name", "hosts", "roles", "databases", "tables", "columns", "type", "grants", "to", "privileges",
        "login", "password", "container", "image", "ports", "vars", "schemas", "indexes", "member_of"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=False),
    st.text(string.printable, max_size=12), st.sampled_from(["{{ x }}", "{{ env.HOME }}", "{%", "ALL", "5432:5432"]),
)
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), children, max_size=5),
    max_leaves=30,
)


def _load(tmp: Path, text: str) -> None:
    write_project(tmp, text, dedent=False)
    try:
        load_project(tmp / PLAYBOOK, tmp / "inventory.yaml", environ={})
    except ErpprovError as exc:
        assert str(exc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=documents)
def test_any_yaml_document_gives_only_erpprov_errors(tmp_path, doc):
    _load(tmp_path, yaml.safe_dump(doc))


@settings(max_examples=300, deadline=None)
@given(doc=documents, flow=st.sampled_from([None, True, False]))
def test_values_equal_pyyaml_safe_load(doc, flow):
    """erpprov builds values from the parser's events itself; they must be PyYAML's own."""
    text = yaml.safe_dump(doc, default_flow_style=flow)
    assert parse_yaml(text, "f.yaml").data == yaml.safe_load(text)


@settings(max_examples=200, deadline=None)
@given(shared=documents.filter(lambda d: isinstance(d, (list, dict))), doc=documents,
       extra=st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=4), documents, max_size=3))
def test_anchors_and_merges_equal_pyyaml_safe_load(shared, doc, extra):
    """safe_dump writes a value used twice as &id001 / *id001; a mapping merged with '<<' keeps
    its own keys over the merged ones, in both loaders."""
    text = yaml.safe_dump({"a": shared, "b": [doc, shared], "c": {"x": shared}})
    if isinstance(shared, dict):
        text += "base: &base " + yaml.safe_dump(shared, default_flow_style=True)
        text += "merged: " + yaml.safe_dump({"<<": "*base", **extra}, default_flow_style=True).replace(
            "'<<': '*base'", "<<: *base")
    data = parse_yaml(text, "f.yaml").data
    assert data == yaml.safe_load(text)
    if isinstance(shared, dict):
        assert data["merged"] == {**shared, **extra}
