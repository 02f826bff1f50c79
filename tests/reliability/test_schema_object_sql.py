"""The SQL of the schema objects (view queries, function bodies and argument types, trigger
conditions, domain defaults and checks, composite attribute types) is proven before any server sees
it, and `plan` runs none of it: a body only ever travels as one string literal and is neither run
nor compiled on the server (check_function_bodies is off in the scratch build)."""

from __future__ import annotations

import pytest
import yaml

from erpprov.errors import ErpprovError
from erpprov.load.project import load_project
from tests.helpers import apply_all, load_targets, plan_of, write_project

from .kinds import covers
from .test_sql_fragments import COMMITS, PAYLOADS

_BASE = {"tables": [{"name": "canary", "columns": [{"name": "id", "type": "integer"}]}]}
# Every place a schema object's string becomes SQL, each given the payload `p`.
PLACES = {
    "view query": lambda p: {"views": [{"name": "v", "query": p}]},
    "materialized view query": lambda p: {"materialized_views": [{"name": "m", "query": p}]},
    "materialized view index entry": lambda p: {"materialized_views": [{
        "name": "m", "query": "SELECT id FROM canary", "indexes": [{"columns": [p]}]}]},
    "materialized view index predicate": lambda p: {"materialized_views": [{
        "name": "m", "query": "SELECT id FROM canary", "indexes": [{"columns": ["id"], "where": p}]}]},
    "function argument type": lambda p: {"functions": [{"name": "f", "returns": "int", "body": "SELECT 1",
                                                         "arguments": [{"name": "a", "type": p}]}]},
    "function argument default": lambda p: {"functions": [{
        "name": "f", "returns": "int", "body": "SELECT 1", "arguments": [{"name": "a", "type": "int", "default": p}]}]},
    "function result": lambda p: {"functions": [{"name": "f", "returns": p, "body": "SELECT 1"}]},
    "sql body": lambda p: {"functions": [{"name": "f", "returns": "int", "body": p}]},
    "trigger condition": lambda p: {"triggers": [{"name": "t", "table": "canary", "timing": "before",
                                                  "events": ["insert"], "function": "f", "when": p}]},
    "domain base type": lambda p: {"types": [{"name": "d", "base_type": p}]},
    "domain default": lambda p: {"types": [{"name": "d", "base_type": "int", "default": p}]},
    "domain check": lambda p: {"types": [{"name": "d", "base_type": "int", "checks": [{"expression": p}]}]},
    "composite attribute type": lambda p: {"types": [{"name": "c", "attributes": [{"name": "a", "type": p}]}]},
}
QUERY_PAYLOADS = [f"SELECT 1; {COMMITS}", "WITH gone AS (DELETE FROM canary RETURNING *) SELECT * FROM gone",
                  "SELECT * INTO pwned FROM canary", "SELECT * FROM canary FOR UPDATE",
                  "SELECT 1 UNION (SELECT 2 FOR UPDATE)"]
# Bodies that are not SQL at all (a string or dollar quote left open to end the literal around them).
BODY_PAYLOADS = ["'); DROP TABLE canary; --", "$$; DROP TABLE canary; --", "SELECT 1) + (2"]


def _playbook(objects: dict[str, object], db: str = "erp") -> str:
    return yaml.safe_dump([{"name": "p", "hosts": "all", "databases": [{"name": db, **_BASE, **objects}]}])


@covers("sql_fragment_injection")
@pytest.mark.parametrize("place", sorted(PLACES))
def test_every_schema_object_place_refuses_what_is_not_its_sql(tmp_path, place):
    root = write_project(tmp_path, "")
    playbook = root / "playbooks" / "dev.yaml"
    payloads = PAYLOADS + (QUERY_PAYLOADS if "query" in place else []) + (BODY_PAYLOADS if "body" in place else [])
    for payload in payloads:
        if "body" in place and payload in ("integer -- swallows what follows", "1 /* unterminated"):
            continue  # a body that parses (or a comment) is a body: it is sent as a literal, never spliced
        playbook.write_text(_playbook(PLACES[place](payload)))
        with pytest.raises(ErpprovError) as caught:
            load_project(playbook, root / "inventory.yaml", environ={})
            pytest.fail(f"{place}: {payload!r} was accepted")
        assert "dev.yaml:" in str(caught.value), str(caught.value)


@covers("sql_fragment_injection")
def test_plan_runs_no_function_body_and_apply_creates_it_as_written(tmp_path, pg):
    """Bodies are code by nature: one that would drop a table is the user's to write. plan neither runs
    nor creates it; apply creates it without running it."""
    body = "DROP TABLE canary; SELECT 1"
    plpgsql = "BEGIN DROP TABLE canary; RETURN 1; END"
    objects = {"functions": [{"name": "f", "returns": "int", "body": body},
                             {"name": "g", "returns": "int", "language": "plpgsql", "body": plpgsql}]}
    with pg.connect() as conn:
        conn.execute("CREATE TABLE canary (id integer)")
        targets = load_targets(tmp_path, pg, _playbook(objects, pg.dbname))
        assert len(plan_of(targets)) == 2
        assert conn.execute("SELECT count(*) FROM pg_proc WHERE proname IN ('f', 'g')").fetchone()[0] == 0
        apply_all(targets)
        assert conn.execute("SELECT to_regclass('canary') IS NOT NULL").fetchone()[0]
        assert conn.execute("SELECT prosrc FROM pg_proc WHERE proname = 'f'").fetchone()[0] == body
