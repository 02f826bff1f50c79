"""The loader's bomb guards scale with honest input: a large export is accepted, a bomb hidden in
one is still refused, and the file-size limit is far above what erpprov writes and can be raised.
(The hostile cases through the CLI, with bounded memory, are in tests/reliability/test_bad_input.py.)"""

from __future__ import annotations

import pytest

from erpprov.errors import ErpprovError
from erpprov.load import yamlsrc
from erpprov.load.yamlsrc import parse_yaml


def _export_like(tables: int) -> str:
    """Tables spelled out the way `erpprov export` writes them: no aliases, ~90 values each."""
    lines = ["- name: big", "  hosts: dev", "  databases:", "  - name: erp", "    tables:"]
    for i in range(tables):
        lines += [f"    - name: t{i:05d}", "      schema: public", "      owner: erp_owner",
                  "      grants: [{to: erp_app, privileges: [SELECT, INSERT, UPDATE]}]", "      columns:",
                  "      - {name: id, type: integer, primary_key: true}"]
        lines += [f"      - {{name: c{j}, type: varchar(30), nullable: false, default: \"'x'::character varying\"}}"
                  for j in range(8)]
        lines += ["      indexes:", f"      - {{name: t{i:05d}_c0_idx, columns: [c0, c1]}}",
                  "      foreign_keys:", f"      - {{name: t{i:05d}_c2_fkey, columns: [c2], "
                  f"references: {{table: t{max(i - 1, 0):05d}, schema: public, columns: [id]}}}}"]
    return "\n".join(lines) + "\n"


def _laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "  vars:\n" + "".join(f"    {line}\n" for line in lines)


def test_an_export_of_ten_thousand_tables_is_accepted():
    text = _export_like(10_000)
    assert len(text) > 10 * 1024 * 1024  # past both old bounds: 10 MiB, and 200,000 values
    assert len(parse_yaml(text, "big.yaml").data[0]["databases"][0]["tables"]) == 10_000


def test_honest_aliases_past_the_floor_are_accepted_by_their_ratio():
    # one anchored column list reused by 60,000 tables: 2.2 million values once expanded, past the
    # floor, but less than ten times the values the file spells out
    text = ("- name: big\n  vars:\n    cols: &cols [" + ", ".join(f"{{name: c{j}, type: text}}" for j in range(6))
            + "]\n  databases:\n  - name: erp\n    tables:\n"
            + "".join(f"    - {{name: t{i}, columns: *cols}}\n" for i in range(60_000)))
    assert len(parse_yaml(text, "big.yaml").data[0]["databases"][0]["tables"]) == 60_000


def test_databases_sharing_one_list_of_tables_are_accepted():
    # a hundred tenant databases of one schema: 11,000 values spelled out, 1.1 million once expanded
    tables = "".join(f"      - {{name: t{i}, columns: [{{name: id, type: integer, primary_key: true}}, "
                     f"{{name: a, type: text}}, {{name: b, type: text}}, {{name: c, type: text}}]}}\n"
                     for i in range(100))
    text = ("- name: tenants\n  vars:\n    schema: &erp\n" + tables + "  databases:\n"
            + "".join(f"    - {{name: tenant{i}, tables: *erp}}\n" for i in range(100)))
    source = parse_yaml(text, "tenants.yaml")
    assert sum(len(d["tables"]) for d in source.data[0]["databases"]) == 10_000


def test_a_bomb_inside_a_large_honest_file_is_still_refused():
    text = _export_like(3000).replace("  hosts: dev\n", "  hosts: dev\n" + _laughs(9), 1)  # 3.9e9 values
    with pytest.raises(ErpprovError, match="expands to more than 10 times"):
        parse_yaml(text, "big.yaml")


def test_the_size_limit_is_far_above_an_export_of_ten_thousand_tables(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * (12 * 1024 * 1024) + b"\nk: v\n")  # 10,000 exported tables are ~11 MiB
    assert yamlsrc.load_yaml(path).data == {"k": "v"}


def test_the_size_limit_is_the_users_to_set(tmp_path, monkeypatch):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * (3 * 1024 * 1024) + b"\nk: v\n")
    monkeypatch.setenv(yamlsrc.MAX_MIB_VARIABLE, "2")
    with pytest.raises(ErpprovError, match="larger than 2 MiB") as err:
        yamlsrc.load_yaml(path)
    assert err.value.hint is not None and f"{yamlsrc.MAX_MIB_VARIABLE}=" in err.value.hint
    monkeypatch.setenv(yamlsrc.MAX_MIB_VARIABLE, "4")
    assert yamlsrc.load_yaml(path).data == {"k": "v"}
    monkeypatch.setenv(yamlsrc.MAX_MIB_VARIABLE, "lots")
    with pytest.raises(ErpprovError, match="not a positive whole number"):
        yamlsrc.load_yaml(path)


def test_an_unset_deferred_password_is_located_only_when_its_error_is_read(tmp_path, monkeypatch):
    """An exported playbook's passwords are templates of variables nobody sets while the roles
    exist; every plan asks them (for what to hide) and drops the error. Locating it would compose
    the whole document's nodes: 400 MB and seconds at 10,000 tables."""
    from erpprov.load.project import load_project
    from erpprov.load.taint import known_secrets
    from tests.helpers import PLAYBOOK, write_project

    root = write_project(tmp_path, """
        - name: exported
          hosts: dev
          roles:
            - {name: app, login: true, password: "{{ env.APP_PASSWORD }}", update_password: on_create}
        """)
    monkeypatch.delenv("APP_PASSWORD", raising=False)
    target = load_project(root / PLAYBOOK, root / "inventory.yaml").targets[0]
    composed: list[bool] = []
    compose = yamlsrc.Source._nodes
    monkeypatch.setattr(yamlsrc.Source, "_nodes", lambda self: composed.append(True) or compose(self))
    assert known_secrets(target) == []
    assert not composed
    with pytest.raises(ErpprovError) as err:
        target.play.roles[0].password.get_secret_value()
    assert err.value.location is not None and err.value.location.line == 5 and composed


def test_data_files_and_scripts_load_without_locating_their_entries(tmp_path, monkeypatch):
    """The entries that name a data file or a script are located only for an error: a load that
    finds nothing wrong never composes the playbook's node graph (a served dev plan spent a tenth
    of its Python time there)."""
    from erpprov.load.project import load_project
    from tests.helpers import PLAYBOOK, write_project

    root = write_project(tmp_path, """
        - name: seeded
          hosts: dev
          databases:
            - name: erp
              tables:
                - name: kinds
                  columns: [{name: id, type: integer, primary_key: true}]
                  data: {rows: [{id: 1}, {id: 2}]}
                - name: codes
                  columns: [{name: id, type: integer, primary_key: true}]
                  data: {from: codes.csv}
              scripts:
                - {name: setup, file: setup.sql}
                - {name: missing, file: gone.sql}
        """)
    (root / "playbooks" / "codes.csv").write_text("id\n1\n")
    (root / "playbooks" / "setup.sql").write_text("SELECT 1;\n")
    composed: list[bool] = []
    compose = yamlsrc.Source._nodes
    monkeypatch.setattr(yamlsrc.Source, "_nodes", lambda self: composed.append(True) or compose(self))
    with pytest.raises(ErpprovError, match="not found") as missing:
        load_project(root / PLAYBOOK, root / "inventory.yaml")
    assert composed and str(missing.value.location).endswith("dev.yaml:15:33")  # the entry naming gone.sql
    composed.clear()
    (root / "playbooks" / "gone.sql").write_text("SELECT 2;\n")
    play = load_project(root / PLAYBOOK, root / "inventory.yaml").targets[0].play
    assert [s._text for s in play.databases[0].scripts] == ["SELECT 1;\n", "SELECT 2;\n"]
    assert not composed
