"""Random (desired, live) pairs of schema objects: apply(A) then apply(B), the schema pruning,
converges (apply itself fails unless the re-plan inside the lock is empty) and leaves exactly B."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from erpprov.core import model
from erpprov.core.actions import Hazard
from erpprov.diff.sequences import OPTIONS, desired_sequence
from erpprov.state.schema_catalog import read_schema_objects
from tests.helpers import apply_all, load_targets, plan_of

BASE = {"name": "base", "columns": [{"name": "id", "type": "integer"}, {"name": "label", "type": "text"},
                                    {"name": "touched", "type": "timestamptz"}]}
TOUCH = {"name": "touch", "returns": "trigger", "language": "plpgsql",
         "body": "BEGIN NEW.touched = now(); RETURN NEW; END"}
QUERIES = ["SELECT id FROM base", "SELECT id, label FROM base", "SELECT label, id FROM base WHERE id > 1",
           "SELECT count(*) AS n FROM base"]
COLUMNS = {query: query.split("SELECT ")[1].split(" FROM")[0].replace("count(*) AS ", "").split(", ")
           for query in QUERIES}


@st.composite
def database(draw) -> dict:  # type: ignore[no-untyped-def]
    types = [{"name": name, "enum": draw(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=4, unique=True))}
             for name in draw(st.lists(st.sampled_from(["e1", "e2"]), unique=True))]
    enums = [t["name"] for t in types]
    domains = []
    if draw(st.booleans()):
        domains = ["d1"]
        types.append({"name": "d1", "base_type": draw(st.sampled_from(["integer", "bigint", "text", *enums])),
                      "not_null": draw(st.booleans()),
                      "checks": draw(st.sampled_from([[], [{"expression": "VALUE IS NOT NULL"}],
                                                      [{"name": "d1_set", "expression": "VALUE IS NOT NULL"}]]))})
    if draw(st.booleans()):
        attributes = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, unique=True))
        types.append({"name": "c1", "attributes": [
            {"name": a, "type": draw(st.sampled_from(["integer", "text", "numeric(8, 2)", *enums, *domains]))}
            for a in attributes]})
    sequences = []
    for name in draw(st.lists(st.sampled_from(["s1", "s2"]), unique=True)):
        seq = {"name": name, "type": draw(st.sampled_from(["integer", "bigint"])),
               "increment": draw(st.sampled_from([1, 2, 5])), "cache": draw(st.integers(1, 3)),
               "cycle": draw(st.booleans())}
        seq |= {k: v for k, v in (("start", draw(st.sampled_from([None, 10]))),
                                  ("max_value", draw(st.sampled_from([None, 10000])))) if v is not None}
        sequences.append(seq)
    views = [{"name": "v1", "query": draw(st.sampled_from(QUERIES)), "security_barrier": draw(st.booleans())}
             ] if draw(st.booleans()) else []
    views += [{"name": "v2", "query": "SELECT * FROM v1"}] if views and draw(st.booleans()) else []
    materialized = [{"name": "m1", "query": draw(st.sampled_from(QUERIES))}] if draw(st.booleans()) else []
    if materialized:  # declared always: B's rebuild could not put back an index of A over a column it lacks
        materialized[0]["indexes"] = [
            {"columns": [draw(st.sampled_from([column, f"lower({column}::text)"]))], "unique": draw(st.booleans()),
             **({"where": f"{column} IS NOT NULL"} if draw(st.booleans()) else {})}
            for column in draw(st.lists(st.sampled_from(COLUMNS[materialized[0]["query"]]), max_size=2, unique=True))]
    functions = [TOUCH]
    if draw(st.booleans()):
        functions.append({"name": "f1", "returns": draw(st.sampled_from(["integer", "bigint"])),
                          "arguments": draw(st.sampled_from([[], [{"name": "a", "type": "int"}]])),
                          "body": draw(st.sampled_from(["SELECT 1", "SELECT 2"])),
                          "volatility": draw(st.sampled_from(["volatile", "stable", "immutable"]))})
    triggers = [{"name": "t1", "table": "base", "timing": "before", "function": "touch",
                 "events": draw(st.lists(st.sampled_from(["insert", "update"]), min_size=1, unique=True)),
                 "enabled": draw(st.booleans())}] if draw(st.booleans()) else []
    return {"schemas": [{"name": "public", "prune": True}], "tables": [BASE], "types": types,
            "sequences": sequences, "views": views, "materialized_views": materialized, "functions": functions,
            "triggers": triggers}


# No shrinking: each example applies twice to a real server; the failing example prints as found.
SETTINGS = settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.reuse, Phase.generate])


@SETTINGS
@given(a=database(), b=database())
def test_random_schema_objects_converge_and_transition(tmp_path_factory, pg, a, b):
    with pg.connect() as conn:  # each example starts from an empty schema, not the last one's B
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    for declared in (a, b):
        play = [{"name": "p", "hosts": "all", "databases": [{"name": pg.dbname, **declared}]}]
        targets = load_targets(tmp_path_factory.mktemp("h"), pg, yaml.safe_dump(play))
        apply_all(targets, allow=frozenset(Hazard))
        assert plan_of(targets) == []
    with pg.connect() as conn:
        live = read_schema_objects(conn)
    assert {name: list(e.values) for (_, name), e in live.enums.items()} == {
        t["name"]: t["enum"] for t in b["types"] if "enum" in t}
    assert {name for _, name in [*live.domains, *live.composites]} == {t["name"] for t in b["types"] if "enum" not in t}
    for _, composite in live.composites.items():
        [declared] = [t for t in b["types"] if t["name"] == composite.name]
        assert [a[0] for a in composite.attributes] == [a["name"] for a in declared["attributes"]]
    assert {name for _, name in live.views} == {v["name"] for v in b["views"] + b["materialized_views"]}
    for view in b["materialized_views"]:
        assert len(live.views[("public", view["name"])].indexes) == len(view["indexes"])
    assert {f.name for f in live.functions.values()} == {f["name"] for f in b["functions"]}
    for seq in b["sequences"]:
        want = desired_sequence(model.Sequence.model_validate(seq))
        assert [getattr(live.sequences[("public", seq["name"])], k) for k in OPTIONS] == \
            [getattr(want, k) for k in OPTIONS]
    bodies = {f.name: f.body for f in live.functions.values()}
    assert all(bodies[f["name"]] == f["body"] for f in b["functions"])
    assert all(live.triggers[("public", "base", t["name"])].enabled == t["enabled"] for t in b["triggers"])
