from pathlib import Path

import pytest

from erpprov.errors import ErpprovError
from erpprov.load.project import load_project, parse_extra_vars
from tests.helpers import PLAYBOOK, write_project

ROOT = Path(__file__).resolve().parent.parent


def load(path: Path, **kwargs):
    return load_project(path, path.parent.parent / "inventory.yaml", environ={}, **kwargs)


def test_shipped_playbook_is_valid():
    project = load_project(ROOT / "playbooks/dev.yaml", ROOT / "inventory.yaml", environ={})
    [target] = project.targets
    play = target.play
    assert target.host == "localhost"
    assert play.container.name == "erp-postgres"
    assert play.container.data_dir == "dev-environment/volumes/postgres"
    assert [r.name for r in play.roles] == ["myapp"]
    assert play.roles[0].password.get_secret_value() == "mypassword"
    assert [t.name for t in play.databases[0].tables] == ["users", "posts", "orders"]
    assert target.connection.pg_password.get_secret_value() == "postgres"


def test_environment_overrides_shipped_defaults():
    project = load_project(ROOT / "playbooks/dev.yaml", ROOT / "inventory.yaml",
                           environ={"MYAPP_PASSWORD": "from-env", "POSTGRES_PASSWORD": "pw"})
    target = project.targets[0]
    assert target.play.roles[0].password.get_secret_value() == "from-env"
    assert target.play.container.env["POSTGRES_PASSWORD"] == "pw"


PRECEDENCE_INVENTORY = """
all:
  vars: {a: all, b: all, c: all, d: all, e: all}
  children:
    dev:
      vars: {b: group, c: group, d: group, e: group}
      hosts:
        localhost: {c: host, d: host, e: host, driver: external}
"""


def test_variable_precedence_all_group_host_play_extra(tmp_path):
    path = write_project(tmp_path, """
        - name: p
          hosts: dev
          vars: {d: play, e: play}
          roles:
            - {name: "{{ a }}-{{ b }}-{{ c }}-{{ d }}-{{ e }}"}
    """, inventory=PRECEDENCE_INVENTORY) / PLAYBOOK
    project = load(path, extra_vars={"e": "extra"})
    assert project.targets[0].play.roles[0].name == "all-group-host-play-extra"


def test_env_file_beside_inventory_and_process_env_wins(tmp_path):
    path = write_project(tmp_path, """
        - name: p
          hosts: all
          roles:
            - {name: "{{ env.ROLE_A }}"}
            - {name: "{{ env.ROLE_B }}"}
    """, env_file="ROLE_A=from_file\nexport ROLE_B='file_b'\n") / PLAYBOOK
    project = load_project(path, tmp_path / "inventory.yaml", environ={"ROLE_B": "from_process"})
    assert [r.name for r in project.targets[0].play.roles] == ["from_file", "from_process"]


def test_vars_refer_to_each_other_and_builtins(tmp_path):
    path = write_project(tmp_path, """
        - name: p
          hosts: all
          vars:
            prefix: "{{ inventory_hostname }}"
            role: "{{ prefix }}_app"
          roles: [{name: "{{ role }}"}]
    """) / PLAYBOOK
    assert load(path).targets[0].play.roles[0].name == "localhost_app"


def test_vars_files_and_extra_vars_file(tmp_path):
    path = write_project(tmp_path, """
        - name: p
          hosts: all
          vars_files: [more.yaml]
          roles: [{name: "{{ from_file }}"}, {name: "{{ from_extra }}"}]
    """) / PLAYBOOK
    (path.parent / "more.yaml").write_text("from_file: f1\nfrom_extra: overridden\n")
    (tmp_path / "extra.yaml").write_text("from_extra: e1\n")
    extra = parse_extra_vars(["@extra.yaml"], tmp_path)
    assert [r.name for r in load(path, extra_vars=extra).targets[0].play.roles] == ["f1", "e1"]


def test_parse_extra_vars_pairs():
    assert parse_extra_vars(["a=1 b=two", "c=x=y"], Path(".")) == {"a": "1", "b": "two", "c": "x=y"}
    with pytest.raises(ErpprovError):
        parse_extra_vars(["novalue"], Path("."))


def test_limit_and_play_patterns(tmp_path):
    path = write_project(tmp_path, """
        - name: p
          hosts: "all:!b"
          roles: [{name: r}]
    """, inventory="""
        all:
          hosts: {a: {}, b: {}, c: {}}
    """) / PLAYBOOK
    assert [t.host for t in load(path).targets] == ["a", "c"]
    assert [t.host for t in load(path, limit="c").targets] == ["c"]


ERROR_CASES = {
    "misspelled key": ("""
        - name: p
          hosts: all
          roles:
            - name: app
              logn: true
    """, 6, "unknown key 'logn'", "did you mean 'login'?"),
    "misspelled nested key": ("""
        - name: p
          databases:
            - name: erp
              tables:
                - name: t
                  columns:
                    - {name: id, tpye: int}
    """, 8, "unknown key 'tpye'", "did you mean 'type'?"),
    "wrong type": ("""
        - name: p
          roles:
            - name: app
              login: maybe
    """, 5, "login", None),
    "duplicate role": ("""
        - name: p
          roles:
            - name: myapp
            - name: myapp
    """, 5, "two roles are named 'myapp'", None),
    "undefined variable": ("""
        - name: p
          roles:
            - name: "{{ nope }}"
    """, 4, "undefined variable: 'nope' is undefined", "define it"),
    "broken yaml": ("""
        - name: p
          roles: [a, b
    """, 4, "YAML syntax error", None),
    "duplicate key": ("""
        - name: p
          roles: []
          roles: []
    """, 4, "duplicate key 'roles'", None),
    "unknown group": ("""
        - name: p
          hosts: prod
    """, 3, "no host or group named 'prod'", None),
    "name too long": ("""
        - name: p
          roles:
            - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    """, 4, "at most 63 bytes", None),
    "reserved role name": ("""
        - name: p
          roles:
            - name: app
            - name: pg_app
    """, 5, "reserved for PostgreSQL's own roles", None),
    "bad privilege": ("""
        - name: p
          databases:
            - name: erp
              grants: [{to: app, privileges: [SELECT]}]
    """, 5, "'SELECT' is not a privilege on a database", None),
    "missing name": ("""
        - name: p
          roles:
            - login: true
    """, 4, "missing required key 'name'", None),
    "variable cycle": ("""
        - name: p
          vars: {a: "{{ b }}", b: "{{ a }}"}
          roles: [{name: "{{ a }}"}]
    """, 4, "cycle", None),
    "sandbox escape": ("""
        - name: p
          roles: [{name: "{{ ''.__class__.__mro__ }}"}]
    """, 3, "not allowed", None),
    "not a list": ("""
        name: p
    """, 2, "a playbook is a list of plays", None),
}


@pytest.mark.parametrize("case", ERROR_CASES, ids=list(ERROR_CASES))
def test_errors_carry_file_line_and_a_clear_message(tmp_path, case):
    text, line, words, hint = ERROR_CASES[case]
    path = write_project(tmp_path, text) / PLAYBOOK
    with pytest.raises(ErpprovError) as err:
        load(path)
    assert words in err.value.message
    assert err.value.location.file == str(path)
    assert err.value.location.line == line
    if hint:
        assert hint in err.value.hint


def test_missing_files(tmp_path):
    with pytest.raises(ErpprovError, match="playbook not found"):
        load_project(tmp_path / "nope.yaml", write_project(tmp_path, "[]") / "inventory.yaml")
    with pytest.raises(ErpprovError, match="inventory not found"):
        load_project(tmp_path / PLAYBOOK, tmp_path / "missing.yaml")
    path = write_project(tmp_path, "- {name: p, vars_files: [gone.yaml]}") / PLAYBOOK
    with pytest.raises(ErpprovError, match="vars file not found") as err:
        load(path)
    assert err.value.location.line == 1
    assert err.value.hint == "vars_files are relative to the playbook"  # not an option it does not have


def test_yaml_boolean_words_as_keys_stay_words(tmp_path):
    from erpprov.load.yamlsrc import parse_yaml

    assert parse_yaml("{on: tables, yes: 1, key: on}", "f.yaml").data == {"on": "tables", "yes": 1, "key": True}


def test_yaml_merge_keys_override_and_aliases_share(tmp_path):
    from erpprov.load.yamlsrc import parse_yaml

    source = parse_yaml("base: &b {login: false, connection_limit: 5}\n"
                        "app: {<<: *b, login: true}\n"
                        "two: {<<: [{x: 1}, {x: 2, y: 2}], z: 3}\n"
                        "copy: *b\n", "f.yaml")
    assert source.data["app"] == {"login": True, "connection_limit": 5}
    assert source.data["two"] == {"x": 1, "y": 2, "z": 3}  # in a merge list the earlier mapping wins
    assert source.data["copy"] == source.data["base"]
    # positions follow what the data holds: the explicit key, or the anchored mapping for a merged one
    assert (source.locate(("app", "login")).line, source.locate(("app", "login")).column) == (2, 22)
    assert source.locate(("app", "connection_limit")).line == 1


@pytest.mark.parametrize(("text", "line", "words"), [
    ("a: 1\nb: !!int abc\n", 2, "'abc' is not a valid int"),
    ("a: &x 1\nb: &x 2\n", 2, "duplicate anchor &x"),
    ("a: &x [1, *x]\n", 1, "refers to a value that contains it"),
    ("a: *nowhere\n", 1, "has no anchor &nowhere"),
    ("a: 1\n---\nb: 2\n", 2, "expected a single document"),
    ("? [a, b]\n: 1\n", 1, "a mapping key must be a plain value"),
    ("k: &k [1]\nm: {*k : 1}\n", 2, "a mapping key must be a plain value"),
    ("a: !!set {x}\n", 1, "unsupported YAML tag"),
    ("m: {<<: 5}\n", 1, "'<<' merges a mapping"),
])
def test_yaml_structure_errors_name_their_line(text, line, words):
    from erpprov.load.yamlsrc import parse_yaml

    with pytest.raises(ErpprovError) as err:
        parse_yaml(text, "f.yaml")
    assert words in err.value.message
    assert err.value.location.line == line
