"""Nothing invisible: every schema object beside tables is read, listed as unmanaged by plan and
reported by export (issue #16, first step)."""

from __future__ import annotations

import json

import pytest
import yaml

from erpprov.state.schema_catalog import read_schema_objects
from tests.helpers import PLAYBOOK, count_round_trips, erpprov

ERP = """
CREATE TYPE order_status AS ENUM ('new', 'paid');
CREATE TYPE money_pair AS (amount numeric, currency text);
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE TYPE floatrange AS RANGE (subtype = float8);
CREATE SEQUENCE invoice_no;
CREATE TABLE orders (id serial PRIMARY KEY, n int GENERATED ALWAYS AS IDENTITY, status order_status,
                     updated_at timestamptz);
CREATE VIEW open_orders AS SELECT id FROM orders WHERE status = 'new';
CREATE MATERIALIZED VIEW order_counts AS SELECT status, count(*) FROM orders GROUP BY status;
CREATE UNIQUE INDEX order_counts_status ON order_counts (status);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.updated_at = now(); RETURN NEW; END$$;
CREATE PROCEDURE archive(keep int) LANGUAGE sql AS $$DELETE FROM orders WHERE id < keep$$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch();
CREATE AGGREGATE total(int) (sfunc = int4pl, stype = int);
CREATE RULE no_delete AS ON DELETE TO orders DO INSTEAD NOTHING;
CREATE FUNCTION evt() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;
CREATE EVENT TRIGGER audit_ddl ON ddl_command_end EXECUTE FUNCTION evt();
"""

EXPECTED = {
    ("type", "public", "order_status", "enum"), ("type", "public", "money_pair", "composite"),
    ("type", "public", "positive", "domain"), ("type", "public", "floatrange", "range"),
    ("sequence", "public", "invoice_no", None), ("view", "public", "open_orders", None),
    ("materialized_view", "public", "order_counts", None), ("function", "public", "touch()", None),
    ("function", "public", "evt()", None), ("procedure", "public", "archive(IN keep integer)", None),
    ("trigger", "public", "orders_touch", None), ("aggregate", "public", "total(integer)", None),
    ("rule", "public", "no_delete", None), ("event_trigger", None, "audit_ddl", None),
    ("materialized_view_index", "public", "order_counts_status", None),
}


def _seen(conn) -> set[tuple[str, str | None, str, str | None]]:
    return {(o.kind, o.schema, o.name, o.variety) for o in read_schema_objects(conn).objects}


@pytest.mark.contrib
def test_every_kind_is_read_and_extension_members_are_not(conn):
    conn.execute(ERP)
    conn.execute("CREATE EXTENSION citext")  # its type and functions are the extension's
    assert _seen(conn) == EXPECTED  # neither the serial nor the identity sequence: the table's


def test_plan_of_an_export_lists_what_export_left_out_and_export_says_so(tmp_path, pg, conn):
    """The issue's first finding: an exported playbook planned "No changes" over a view, a function,
    a trigger, a sequence and an enum, and the export dropped them without a word."""
    conn.execute(ERP)
    pg.inventory(tmp_path)
    (tmp_path / PLAYBOOK).parent.mkdir()
    exported = erpprov(tmp_path, "export", "--db", pg.dbname, "-o", str(PLAYBOOK))
    assert exported.returncode == 0, exported.stderr
    header = (tmp_path / PLAYBOOK).read_text().split("\n- name:")[0]
    for said in (exported.stderr, header):
        assert f"database {pg.dbname}: range type public.floatrange" in said
        assert not any(name in said for name in ("order_status", "invoice_no", "open_orders", "touch", "archive",
                                                 "view public.order_counts", "orders_touch", "money_pair", "positive",
                                                 "order_counts_status"))  # a materialized view's index too
        assert f"database {pg.dbname}: rule no_delete on public.orders" in said
        # and what the table code leaves of a table, as plan lists it (property.DB.public.orders.rules)
        assert f"database {pg.dbname}: rules of table public.orders" in said
        assert f"database {pg.dbname}: event trigger audit_ddl" in said
        assert f"database {pg.dbname}: aggregate public.total(integer)" in said
    [database] = yaml.safe_load((tmp_path / PLAYBOOK).read_text())[0]["databases"]  # the file still loads
    assert [t["name"] for t in database["types"]] == ["order_status", "positive", "money_pair"]
    assert [s["name"] for s in database["sequences"]] == ["invoice_no"]

    plan = erpprov(tmp_path, "plan")
    assert plan.returncode == 0, plan.stderr
    assert "No changes." in plan.stdout  # the file holds the enum and the sequence exactly
    counts = plan.stdout.split("Unmanaged (left alone): ")[1].split(" (names with -v)")[0].split(", ")
    # the schema objects export could not write (the table code lists what it leaves of a table too)
    assert {"1 aggregate", "1 event trigger", "1 rule", "1 type"} <= set(counts)
    assert not any("materialized view index" in count for count in counts)  # exported, so declared
    kinds = {count.split(" ", 1)[1] for count in counts}
    assert not kinds & {"view", "views", "function", "functions", "sequence", "procedure", "trigger", "triggers"}
    named = erpprov(tmp_path, "plan", "-v")
    assert f"      rule.{pg.dbname}.public.orders.no_delete" in named.stdout.splitlines()
    document = json.loads(erpprov(tmp_path, "plan", "--format", "json").stdout)
    unmanaged = set(document["hosts"][0]["unmanaged"])
    assert {f"type.{pg.dbname}.public.floatrange", f"rule.{pg.dbname}.public.orders.no_delete",
            f"aggregate.{pg.dbname}.public.total(integer)"} <= unmanaged
    for managed in ("type.{}.public.order_status", "view.{}.public.open_orders", "sequence.{}.public.invoice_no",
                    "function.{}.public.touch()", "trigger.{}.public.orders.orders_touch", "type.{}.public.money_pair"):
        assert managed.format(pg.dbname) not in unmanaged  # the exported file holds them


def test_reading_costs_one_query_whatever_the_count(pg, conn, monkeypatch):
    def make(start: int, stop: int) -> str:
        return "".join(f"CREATE TYPE e{i} AS ENUM ('a'); CREATE VIEW v{i} AS SELECT {i} AS x; "
                       f"CREATE FUNCTION f{i}() RETURNS int LANGUAGE sql AS 'SELECT {i}'; "
                       f"CREATE SEQUENCE s{i};" for i in range(start, stop))
    counts = []
    for start, stop in ((0, 3), (3, 60)):
        conn.execute(make(start, stop))
        with pg.connect() as fresh, count_round_trips(monkeypatch) as seen:
            assert len(read_schema_objects(fresh).objects) == 4 * stop
        counts.append(seen.count)
    assert counts[0] == counts[1] == 2  # what exists, then the details of its kinds


def _sent_by(conn, monkeypatch, **options) -> list[str]:
    """The statements read_schema_objects sends on ``conn``."""
    sent: list[str] = []
    execute = type(conn).execute

    def recorded(self, query, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(str(query))
        return execute(self, query, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(type(conn), "execute", recorded)
        read_schema_objects(conn, **options)
    return sent


def test_only_the_details_of_kinds_that_exist_are_asked(pg, conn, monkeypatch):
    """A database of tables alone (most of them, and the dev playbook's) is not asked for views,
    functions, triggers, types or sequences: planning those catalog joins was a tenth of its plan."""
    conn.execute("CREATE TABLE t (id serial PRIMARY KEY)")  # a serial's sequence is the table's
    with pg.connect() as fresh:
        assert len(_sent_by(fresh, monkeypatch)) == 2
    conn.execute("CREATE VIEW v AS SELECT id FROM t; CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    with pg.connect() as fresh:
        sent = _sent_by(fresh, monkeypatch)
        live = read_schema_objects(fresh)
    assert any("pg_get_viewdef" in q for q in sent) and any("pg_get_function_result" in q for q in sent)
    assert not any("pg_enum" in q or "pg_trigger t JOIN" in q for q in sent)
    # what a function needs matters to export and to a plan that prunes, not to the others
    assert any("WITH needs AS" in q for q in sent)
    with pg.connect() as fresh:
        assert not any("WITH needs AS" in q for q in _sent_by(fresh, monkeypatch, dependencies=False))
    assert set(live.views) == {("public", "v")} and live.view_columns == {("public", "v"): {("public", "t", "id")}}
    assert set(live.functions) == {("public", "f()")}


@pytest.mark.contrib
def test_an_extension_makes_every_detail_asked(pg, conn, monkeypatch):
    """An extension's objects are no kind OBJECTS lists, but the details read them too (a view's
    uses, a function's callers): with one installed, nothing is left unasked."""
    conn.execute("CREATE EXTENSION citext; CREATE TABLE t (name citext DEFAULT lower('X')::citext)")
    with pg.connect() as fresh:
        assert len(_sent_by(fresh, monkeypatch)) == 16


def test_a_no_op_plan_costs_the_same_round_trips_whatever_the_number_of_objects(tmp_path, pg, monkeypatch):
    from erpprov.plan.build import plan_target
    from tests.helpers import apply_all, load_targets

    def playbook(n: int) -> str:
        objects = {
            "tables": [{"name": "base", "columns": [{"name": "id", "type": "integer"}]}],
            "types": [{"name": f"e{i}", "enum": ["a", "b"]} for i in range(n)],
            "sequences": [{"name": f"s{i}"} for i in range(n)],
            "views": [{"name": f"v{i}", "query": f"SELECT id + {i} AS x FROM base"} for i in range(n)],
            "functions": [{"name": f"f{i}", "returns": "integer", "body": f"SELECT {i}"} for i in range(n)]
            + [{"name": "touch", "returns": "trigger", "language": "plpgsql", "body": "BEGIN RETURN NEW; END"}],
            "triggers": [{"name": f"t{i}", "table": "base", "timing": "before", "events": ["insert"],
                          "function": "touch", "when": f"NEW.id > {i}"} for i in range(n)],
        }
        return yaml.safe_dump([{"name": "p", "hosts": "all", "databases": [{"name": pg.dbname, **objects}]}])

    counts = []
    for size in (2, 20):
        targets = load_targets(tmp_path / str(size), pg, playbook(size))
        apply_all(targets)
        with count_round_trips(monkeypatch) as seen:
            assert plan_target(targets[0]).actions == []
        counts.append(seen.count)
    assert counts[0] == counts[1]


def test_a_pruning_schema_drops_the_undeclared_objects_of_managed_kinds_as_hazards(tmp_path, pg, conn):
    from erpprov.core.actions import Hazard
    from erpprov.plan.build import plan_target
    from tests.helpers import apply_all, load_targets, plan_of

    conn.execute(ERP)
    conn.execute("CREATE VIEW reads_open AS SELECT * FROM open_orders")  # dropped before what it reads
    conn.execute("DROP EVENT TRIGGER audit_ddl")  # unmanaged, it would hold on to the function it calls
    keep = {"name": "orders", "columns": [{"name": "id", "type": "serial", "primary_key": True},
                                          {"name": "n", "type": "integer", "identity": "always"},
                                          {"name": "status", "type": "order_status"},
                                          {"name": "updated_at", "type": "timestamptz"}]}
    play = [{"name": "p", "hosts": "all", "databases": [{
        "name": pg.dbname, "schemas": [{"name": "public", "prune": True}], "tables": [keep],
        "types": [{"name": "order_status", "enum": ["new", "paid"]}]}]}]
    targets = load_targets(tmp_path, pg, yaml.safe_dump(play))
    plan = plan_target(targets[0])
    dropped = {a.address.kind for a in plan.actions if a.op.value == "delete"}
    assert dropped == {"type", "sequence", "view", "materialized_view", "function", "procedure", "trigger"}
    assert all(a.hazards for a in plan.actions)
    views = [a.address.parts[-1] for a in plan.ordered() if a.address.kind == "view"]
    assert views == ["reads_open", "open_orders"]
    apply_all(targets, allow=frozenset(Hazard))
    assert plan_of(targets) == []
    left = {(o.kind, o.name) for o in read_schema_objects(conn).objects}
    # not managed kinds stay, and so do what the extension and the kept enum own
    assert left == {("type", "order_status"), ("type", "floatrange"), ("aggregate", "total(integer)"),
                    ("rule", "no_delete")}


IN_USE = """
CREATE SCHEMA app;
CREATE FUNCTION app.legacy_code() RETURNS text LANGUAGE sql AS 'SELECT ''x''';
CREATE TABLE app.items (id int, code text DEFAULT app.legacy_code());
CREATE VIEW app.base AS SELECT id FROM app.items;
CREATE VIEW app.top AS SELECT id FROM app.base;
CREATE FUNCTION app.gone() RETURNS int LANGUAGE sql AS 'SELECT 1';
-- its default calls gone(); a BEGIN ATOMIC body would make it one no file can declare, never pruned
CREATE FUNCTION app.z_calls_gone(n int DEFAULT app.gone()) RETURNS int LANGUAGE sql AS 'SELECT n';
CREATE VIEW app.gone_view AS SELECT app.z_calls_gone() AS g;
CREATE TABLE app.old (id int PRIMARY KEY);
ALTER TABLE app.items ADD CONSTRAINT items_old FOREIGN KEY (id) REFERENCES app.old;  -- the plan drops it first
CREATE VIEW app.reads_old AS SELECT id FROM app.old;
"""


def test_a_prune_stops_the_plan_while_a_kept_object_uses_what_it_would_drop(tmp_path, pg, conn):
    from erpprov.core.actions import Hazard
    from erpprov.errors import ErpprovError
    from erpprov.plan.build import plan_target
    from tests.helpers import apply_all, assert_converged, load_targets, plan_of

    conn.execute(IN_USE)
    items = {"name": "items", "schema": "app", "columns": [
        {"name": "id", "type": "int"}, {"name": "code", "type": "text", "default": "app.legacy_code()"}]}
    db = {"name": pg.dbname, "schemas": [{"name": "app", "prune": True}], "tables": [items],
          "views": [{"name": "top", "schema": "app", "query": "SELECT id FROM app.base"}]}

    def plan(**more: object):  # type: ignore[no-untyped-def]
        targets = load_targets(tmp_path, pg, yaml.safe_dump([{"name": "p", "hosts": "all",
                                                               "databases": [db | more]}]))
        return targets, plan_target(targets[0])

    with pytest.raises(ErpprovError, match=r"function app\.legacy_code\(\), but default value for column code "
                                           "of table app.items still uses it"):
        plan()
    legacy = [{"name": "legacy_code", "schema": "app", "returns": "text", "body": "SELECT 'x'"}]
    with pytest.raises(ErpprovError, match=r"view app\.base, but rule _RETURN on view app\.top still uses it"):
        plan(functions=legacy)
    views = db["views"] + [{"name": "base", "schema": "app", "query": "SELECT id FROM app.items"}]
    def reading_old(name: str) -> list[dict[str, str]]:
        return [*views, {"name": name, "schema": "app", "query": "SELECT id FROM app.old"}]

    with pytest.raises(ErpprovError, match=r"table app\.old, but rule _RETURN on view app\.reads_old still uses"):
        plan(functions=legacy, views=reading_old("reads_old"))  # a live reader of a pruned table
    with pytest.raises(ErpprovError, match=r"view app\.new_reader reads table app\.old, which this apply drops"):
        plan(functions=legacy, views=reading_old("new_reader"))  # a new one
    # what uses a pruned object is pruned too: dropped first, a function calling a function included
    targets, planned = plan(functions=legacy, views=views)
    assert [a.address.parts[-1] for a in planned.ordered() if a.op.value == "delete"] == [
        "gone_view", "reads_old", "items_old", "old", "z_calls_gone(n integer)", "gone()"]  # not in name order
    apply_all(targets, allow=frozenset(Hazard))
    assert plan_of(targets) == []
    assert_converged(tmp_path)


def test_a_recreated_view_whose_reader_is_pruned_drops_the_reader_first(tmp_path, pg, conn):
    """Found by the schema hypothesis test: a view's own rule depends on its columns, which the
    prune check took for a user of the view, and put the reader's drop after its view's."""
    from erpprov.core.actions import Hazard
    from tests.helpers import apply_all, assert_converged, load_targets

    conn.execute("CREATE TABLE base (id int, label text); CREATE VIEW v1 AS SELECT id FROM base;"
                 "CREATE VIEW v2 AS SELECT * FROM v1")
    db = {"name": pg.dbname, "schemas": [{"name": "public", "prune": True}],
          "tables": [{"name": "base", "columns": [{"name": "id", "type": "int"}, {"name": "label", "type": "text"}]}],
          "views": [{"name": "v1", "query": "SELECT label, id FROM base"}]}
    apply_all(load_targets(tmp_path, pg, yaml.safe_dump([{"name": "p", "hosts": "all", "databases": [db]}])),
              allow=frozenset(Hazard))  # fails unless the re-plan inside the lock is empty
    assert_converged(tmp_path)


def test_grants_on_aggregates_and_range_types_are_read_a_grant_naming_one_converges_a_pruned_role_loses_them(
        tmp_path, pg, conn):
    """Aggregates and range types stay unmanaged, but their ACLs were not read at all: a grant naming
    an aggregate never converged, and a role with `prune: true` kept what it held on them unseen."""
    from tests.helpers import assert_converged, server_vars, write_project

    conn.execute("CREATE ROLE agg_user; CREATE AGGREGATE total(int) (sfunc = int4pl, stype = int);"
                 "REVOKE EXECUTE ON FUNCTION total(int) FROM PUBLIC;"
                 "CREATE TYPE floatrange AS RANGE (subtype = float8);"
                 "GRANT USAGE ON TYPE floatrange, floatmultirange TO agg_user")
    write_project(tmp_path, f"""
        - name: p
          hosts: all
          roles:
            - name: agg_user
              prune: true
          databases:
            - name: {pg.dbname}
              schemas:
                - name: public
                  grants:
                    - {{to: agg_user, privileges: [EXECUTE], functions: ["total(integer)"]}}
        """, server_vars(pg, password_from_env=False))
    plan = erpprov(tmp_path, "plan", "--format", "json")
    assert plan.returncode == 0, plan
    host = json.loads(plan.stdout)["hosts"][0]
    actions = {(a["address"], a["operation"]) for a in host["actions"]}
    assert actions == {(f"grant.{pg.dbname}.function.public.total(integer).agg_user", "create"),
                       (f"grant.{pg.dbname}.type.public.floatrange.agg_user", "delete"),
                       (f"grant.{pg.dbname}.type.public.floatmultirange.agg_user", "delete")}
    assert {f"aggregate.{pg.dbname}.public.total(integer)", f"type.{pg.dbname}.public.floatrange"} <= set(
        host["unmanaged"])  # the objects themselves stay unmanaged
    applied = erpprov(tmp_path, "apply", "--allow-hazard", "revokes_access")
    assert applied.returncode == 0, applied
    assert_converged(tmp_path)
    assert conn.execute("SELECT has_function_privilege('agg_user', 'total(int)', 'EXECUTE'),"
                        " (SELECT count(*) FROM pg_type t, aclexplode(t.typacl) a WHERE a.grantee = 'agg_user'::regrole"
                        "  AND t.typname IN ('floatrange', 'floatmultirange'))").fetchone() == (True, 0)
