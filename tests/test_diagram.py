"""`erpprov diagram` and the plan's Mermaid diagram: from the files and from a real server, drawn
by the real Graphviz, read back by Mermaid's own parser where node and the `mermaid` package are
at hand (installed globally by npm, or in the node_modules ERPPROV_MERMAID_MODULES names), and
everywhere by the grammar check below, which holds each emitted line to the patterns of Mermaid's
erDiagram lexer. (CI does not install node, npm and mermaid: about two minutes on a fresh machine.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erpprov.core.tables import FOREIGN_KEY, PRIMARY_KEY, ColumnState, ConstraintState, TablesState, TableState
from erpprov.plan.diagram import dot, mermaid
from tests.helpers import assert_clean_error, assert_converged, erpprov, write_project

HOSTILE = ['we"ird', "a\nb", "x\x1b[2Ky", "```", "</td><b>", "#quot;", "%% c", "t1", "}o--||", "a\\b",
           "\u202eevil", "é ü", "1st", "x] {"]

# Mermaid's erDiagram lexer (mermaid 11): a word, a quoted string, the relationship ends we write.
_WORD = r"[*A-Za-z_\u00C0-\uFFFF][A-Za-z0-9\-_\[\]().,\u00C0-\uFFFF*]*"
_QUOTED = r'"[^"\n]*"'
_LABEL = r'"[^"%\r\n\v\b\\]+"'  # an entity's label: the lexer's stricter string
_LINES = [re.compile(p) for p in (
    r"erDiagram",
    rf"    (t\d+)\[{_LABEL}\] \{{",
    rf"        {_WORD} {_WORD}( (PK|FK|UK)(, (PK|FK|UK))*)?( {_QUOTED})?",
    r"    \}",
    rf"    (t\d+) \}}o--(\|\||o\|) (t\d+) : {_QUOTED}",
)]


def grammar_check(text: str) -> tuple[int, int, int]:
    """(entities, attributes, relationships) of an erDiagram as we write it; AssertionError on any
    line Mermaid's lexer would read otherwise."""
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "erDiagram", text
    counts = [0, 0, 0]
    declared: set[str] = set()
    inside = False
    for line in lines[1:]:
        kind = next((k for k, p in enumerate(_LINES) if p.fullmatch(line)), None)
        assert kind not in (None, 0), f"not erDiagram syntax: {line!r}"
        assert (kind in (2, 3)) == inside, f"out of place: {line!r}"
        if kind == 1:
            match = _LINES[1].fullmatch(line)
            assert match is not None
            declared.add(match.group(1))
            counts[0] += 1
            inside = True
        elif kind == 2:
            counts[1] += 1
        elif kind == 3:
            inside = False
        else:
            match = _LINES[4].fullmatch(line)
            assert match is not None and {match.group(1), match.group(3)} <= declared
            counts[2] += 1
    assert not inside
    return counts[0], counts[1], counts[2]


def _mermaid_parse(texts: list[str]) -> list[dict[str, Any]]:
    """Each diagram read by Mermaid's own parser: its entities (label, attributes) and relationships."""
    modules = os.environ.get("ERPPROV_MERMAID_MODULES", "")
    if not modules and shutil.which("npm"):  # `npm install -g mermaid` puts it there
        modules = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True, timeout=60).stdout.strip()
    core = Path(modules) / "mermaid" / "dist" / "mermaid.core.mjs"
    if shutil.which("node") is None or not core.is_file():
        # .ci/run installs both: there, a missing parser is a broken setup, not a reason to skip
        missing = pytest.fail if os.environ.get("CI") == "true" else pytest.skip
        missing("Mermaid's parser needs node and the `mermaid` package (npm install -g mermaid, or "
                "ERPPROV_MERMAID_MODULES naming a node_modules that holds it)")
    program = f"""
import mermaid from {json.dumps(core.as_uri())};
let input = '';
for await (const chunk of process.stdin) input += chunk;
const out = [];
for (const text of JSON.parse(input)) {{
  try {{
    await mermaid.parse(text);
    const db = (await mermaid.mermaidAPI.getDiagramFromText(text)).db;
    out.push({{entities: [...db.getEntities().values()].map(e => [e.alias, e.attributes.length]),
               relationships: db.getRelationships().length}});
  }} catch (e) {{ out.push({{error: String(e.message || e)}}); }}
}}
console.log(JSON.stringify(out));
"""
    done = subprocess.run(["node", "--input-type=module", "-e", program], input=json.dumps(texts),
                          capture_output=True, text=True, timeout=120, check=True)
    return list(json.loads(done.stdout))


def _hostile_tables() -> TablesState:
    tables = {}
    for n, name in enumerate(HOSTILE):
        columns = (ColumnState(name="id", type="integer", not_null=True),
                   ColumnState(name=name, type=f"character varying({n + 1})", not_null=False),
                   ColumnState(name="parent", type="integer", not_null=False))
        constraints = (ConstraintState(name=f"pk{n}", kind=PRIMARY_KEY, columns=("id",)),
                       ConstraintState(name=f"fk{n}", kind=FOREIGN_KEY, columns=("parent",), ref_schema=name,
                                       ref_table=HOSTILE[n - 1], ref_columns=("id",)))
        tables[(name, name)] = TableState(schema=name, name=name, columns=columns, constraints=constraints)
    return TablesState(tables=tables)


def test_hostile_names_stay_names_in_the_grammar() -> None:
    state = _hostile_tables()
    text = mermaid(state)
    assert grammar_check(text) == (len(HOSTILE), 3 * len(HOSTILE), _relationships(state))
    with pytest.raises(AssertionError):
        grammar_check(text.replace('"]', '"', 1))


def _relationships(state: TablesState) -> int:
    return sum(1 for t in state.tables.values() for c in t.constraints
               if c.kind == FOREIGN_KEY and (c.ref_schema, c.ref_table) in state.tables)


def test_mermaids_own_parser_reads_exactly_the_tables(tmp_path: Path) -> None:
    state = _hostile_tables()
    text = mermaid(state)
    write_project(tmp_path, PLAYBOOK.format(db="shop"), {"pg_port": 1})
    from_files = erpprov(tmp_path, "diagram").stdout
    hostile, files, refused = _mermaid_parse([text, from_files, text.replace('"]', '"', 1)])
    assert "error" in refused, "the parser accepts anything: it proves nothing"
    assert "error" not in hostile and "error" not in files, (hostile, files)
    assert [count for _, count in hostile["entities"]] == [3] * len(HOSTILE)
    assert hostile["relationships"] == _relationships(state)
    assert sorted(files["entities"]) == [["public.customers", 3], ["public.orders", 2]]
    assert files["relationships"] == 1


names = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(names, names, names), min_size=1, max_size=4, unique_by=lambda t: t[0]))
def test_any_names_and_types_give_a_diagram_of_exactly_the_tables(spec: list[tuple[str, str, str]]) -> None:
    tables = {("s", name): TableState(schema="s", name=name,
                                      columns=(ColumnState(name=column, type=type_, not_null=True),))
              for name, column, type_ in spec}
    assert grammar_check(mermaid(TablesState(tables=tables))) == (len(spec), len(spec), 0)
    graph = dot(TablesState(tables=tables))
    assert graph.count(" [label=<") == len(spec)


PLAYBOOK = """\
- name: shop
  hosts: all
  databases:
    - name: {db}
      tables:
        - name: customers
          columns:
            - {{name: id, type: bigserial, primary_key: true}}
            - {{name: email, type: varchar(200), nullable: false, unique: true}}
            - {{name: "we\\"ird </td> name", type: text}}
        - name: orders
          columns:
            - {{name: id, type: bigserial, primary_key: true}}
            - {{name: customer_id, type: bigint, nullable: false}}
          foreign_keys:
            - {{columns: [customer_id], references: {{table: customers}}}}
"""


def test_diagram_from_the_files_needs_no_server(tmp_path: Path) -> None:
    write_project(tmp_path, PLAYBOOK.format(db="shop"), {"pg_port": 1})
    run = erpprov(tmp_path, "diagram")
    assert run.returncode == 0, str(run)
    assert grammar_check(run.stdout) == (2, 5, 1)
    assert "varchar(200) email UK" in run.stdout and "bigint customer_id FK" in run.stdout
    graph = erpprov(tmp_path, "diagram", "--format", "dot")
    assert "we&quot;ird &lt;/td&gt; name" in graph.stdout and "t2:c1:e -> t1:c0:w" in graph.stdout


def test_svg_is_drawn_by_graphviz_with_every_name_as_text(tmp_path: Path) -> None:
    if shutil.which("dot") is None:
        pytest.skip("Graphviz is not installed")
    write_project(tmp_path, PLAYBOOK.format(db="shop"), {"pg_port": 1})
    run = erpprov(tmp_path, "diagram", "--format", "svg", "-o", "tables.svg")
    assert run.returncode == 0, str(run)
    svg = ET.parse(tmp_path / "tables.svg").getroot()
    texts = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert {"public.customers", "public.orders", 'we"ird </td> name', "customer_id", "varchar(200)"} <= texts
    assert len([g for g in svg.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "edge"]) == 1


def test_svg_without_graphviz_says_how_to_get_it(tmp_path: Path) -> None:
    write_project(tmp_path, PLAYBOOK.format(db="shop"), {"pg_port": 1})
    (tmp_path / "bin").mkdir()
    run = erpprov(tmp_path, "diagram", "--format", "svg", env={"PATH": str(tmp_path / "bin")})
    assert_clean_error(run, "graphviz", "apt install graphviz", "--format dot")


def test_several_databases_need_db(tmp_path: Path) -> None:
    two = PLAYBOOK.format(db="a") + PLAYBOOK.format(db="b").split("databases:\n", 1)[1]
    write_project(tmp_path, two, {"pg_port": 1})
    assert_clean_error(erpprov(tmp_path, "diagram"), "2 databases", "--db")
    assert grammar_check(erpprov(tmp_path, "diagram", "--db", "b").stdout)[0] == 2


def test_live_diagram_reads_what_the_server_stores(tmp_path: Path, pg: Any) -> None:
    write_project(tmp_path, PLAYBOOK.format(db=pg.dbname), {**_vars(pg)})
    assert erpprov(tmp_path, "apply").returncode == 0
    with pg.connect() as conn:
        conn.execute('CREATE TABLE "by hand" (id int REFERENCES orders (id))')
    run = erpprov(tmp_path, "diagram", "--live")
    assert run.returncode == 0, str(run)
    assert grammar_check(run.stdout) == (3, 6, 2)
    assert "character_varying(200) email UK" in run.stdout and '["public.by hand"]' in run.stdout


def _vars(pg: Any) -> dict[str, Any]:
    return {"pg_host": pg.host, "pg_port": pg.port, "pg_user": pg.user, "pg_password": pg.password}


def test_plan_markdown_draws_what_it_adds_changes_and_drops(tmp_path: Path, pg: Any) -> None:
    with pg.connect() as conn:
        conn.execute("CREATE TABLE customers (id bigserial PRIMARY KEY, email varchar(200) NOT NULL UNIQUE, "
                     "legacy text)")
        conn.execute("CREATE TABLE old_log (id int)")
    playbook = PLAYBOOK.format(db=pg.dbname).replace("  databases:\n    - name: " + pg.dbname,
                                                     "  databases:\n    - name: " + pg.dbname + "\n      prune: true")
    write_project(tmp_path, playbook, _vars(pg))
    run = erpprov(tmp_path, "plan", "--format", "markdown")
    assert run.returncode == 0, str(run)
    blocks = re.findall(r"```mermaid\n(.*?)```", run.stdout, re.S)
    assert len(blocks) == 1, run.stdout
    diagram = blocks[0]
    assert grammar_check(diagram) == (3, 6, 1)
    assert '["public.orders (added)"]' in diagram and '["public.customers (changed)"]' in diagram
    assert '["public.old_log (dropped)"]' in diagram
    assert 'text legacy "dropped"' in diagram and '"added; we#quot;ird #lt;/td#gt; name"' in diagram
    assert erpprov(tmp_path, "apply", "--allow-destructive").returncode == 0
    assert_converged(tmp_path)
