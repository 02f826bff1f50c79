"""Plan output in each format, on a fixed scenario (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from erpprov.core.actions import Action, Hazard, HostPlan, Op, Phase, Statement
from erpprov.core.address import Address
from erpprov.plan import planfile, render

ROOT = Path(__file__).resolve().parent.parent
VERIFIER = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"


def scenario() -> list[HostPlan]:
    actions = [
        Action(Address("role", "myapp"), Op.CREATE, Phase.ROLE,
               sql=(Statement(f"CREATE ROLE \"myapp\" WITH LOGIN PASSWORD '{VERIFIER}'",
                              shown="CREATE ROLE \"myapp\" WITH LOGIN PASSWORD '(sensitive)'"),),
               after={"login": True, "password": "(sensitive)"}),
        Action(Address("role", "reporting"), Op.UPDATE, Phase.ROLE,
               sql=(Statement('ALTER ROLE "reporting" WITH LOGIN'),),
               before={"login": False}, after={"login": True}),
        Action(Address("table", "erp", "public", "legacy"), Op.DELETE, Phase.DROP_TABLE, database="erp",
               sql=(Statement('DROP TABLE "public"."legacy"'),), before={"columns": 3},
               hazards=(Hazard.DELETES_DATA,), note="the table holds rows"),
    ]
    unmanaged = [Address("role", "alice"), Address("view", "erp", "public", "v"), Address("view", "erp", "public", "w")]
    return [HostPlan(host="localhost", driver="external", actions=actions, unmanaged=unmanaged,
                     fingerprint="abc123"),
            HostPlan(host="staging", driver="external")]


EXPECTED_TEXT = """\
localhost (driver: external)
  + role.myapp
      login: true
      password: "(sensitive)"
  ~ role.reporting
      login: false → true
  - table.erp.public.legacy  [deletes_data]
      columns: 3
      # the table holds rows
  Unmanaged (left alone): 1 role, 2 views (names with -v)
  Plan: 1 to add, 1 to change, 1 to destroy.

staging (driver: external)
  No changes. The live state matches the files.
  Plan: 0 to add, 0 to change, 0 to destroy.
"""


def test_text_is_grouped_by_host_with_symbols_hazards_and_summary():
    assert render.text(scenario()) == EXPECTED_TEXT


def test_text_names_each_unmanaged_object_when_asked():
    out = render.text(scenario(), names=True).splitlines()
    at = out.index("  Unmanaged (left alone): 1 role, 2 views:")
    assert out[at + 1:at + 4] == ["      role.alice", "      view.erp.public.v", "      view.erp.public.w"]


def test_text_with_sql_shows_statements_but_never_the_verifier():
    out = render.text(scenario(), show_sql=True)
    assert "| CREATE ROLE \"myapp\" WITH LOGIN PASSWORD '(sensitive)';" in out
    assert "| DROP TABLE \"public\".\"legacy\";" in out
    assert VERIFIER not in out


def test_colour_only_when_asked():
    assert "\x1b[" not in render.text(scenario())
    assert "\x1b[" in render.text(scenario(), colour=True)


def test_json_validates_against_the_committed_schema_and_is_stable():
    schema = json.loads((ROOT / "schema/plan.schema.json").read_text())
    first = planfile.dump(planfile.document(scenario(), inputs="f00"))
    assert first == planfile.dump(planfile.document(scenario(), inputs="f00"))
    document = json.loads(first)
    jsonschema.validate(document, schema)
    assert document["format_version"].startswith("1.")
    assert [a["address"] for a in document["hosts"][0]["actions"]] == [
        "role.myapp", "role.reporting", "table.erp.public.legacy"]
    assert VERIFIER not in first and "(sensitive)" in first


def test_markdown_has_a_summary_and_a_collapsible_block_per_host():
    out = render.markdown(scenario())
    assert "**1 to add, 1 to change, 1 to destroy** on 2 hosts." in out
    assert "`deletes_data`" in out
    assert out.count("<details>") == 2 and out.count("```diff") == 2
    assert "+ role.myapp" in out and "- table.erp.public.legacy  [deletes_data]" in out
    assert VERIFIER not in out


def test_markdown_draws_touched_tables_and_names_the_command_when_too_many() -> None:
    from erpprov.core.tables import ColumnState, TablesState, TableState
    from erpprov.plan.diagram import ADDED, Marks

    def tables(count: int) -> TablesState:
        columns = tuple(ColumnState(name=f"column_{n}", type="integer", not_null=True) for n in range(10))
        return TablesState(tables={("public", f"t{n}"): TableState(schema="public", name=f"t{n}", columns=columns)
                                   for n in range(count)})

    few = render.markdown(scenario(), [{"erp": (tables(2), Marks({("public", "t0"): ADDED}))}])
    assert few.count("```mermaid") == 1 and '["public.t0 (added)"]' in few
    many = render.markdown(scenario(), [{"erp": (tables(300), Marks())}])
    assert "```mermaid" not in many
    assert ("The 300 tables touched in <code>erp</code> are too many to draw here; "
            "<code>erpprov diagram --db erp</code>") in many
