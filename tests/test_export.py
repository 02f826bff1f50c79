"""`erpprov export` against the real server: the exported playbook plans empty against the server
it came from, and applied to a new database it rebuilds the same tables, schemas and grants."""

from __future__ import annotations

import copy
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from psycopg import sql
from pydantic import SecretStr

from erpprov.core.cluster import ObjectRef
from erpprov.core.model import Connection
from erpprov.core.target import Target
from erpprov.load.project import load_project
from erpprov.ops.export import export_playbook, password_variable, password_variables
from erpprov.state import catalog
from tests.helpers import apply_all, plan_of

APP_PASSWORD = "app-secret-pw-4711"
ENV = {"APP_USER_PASSWORD": "whatever-not-used"}

SCHEMA_SQL = """
CREATE ROLE app_readers;
CREATE ROLE app_user LOGIN PASSWORD {password} CONNECTION LIMIT 5 IN ROLE app_readers;
COMMENT ON ROLE app_user IS 'The application';
ALTER ROLE app_user SET statement_timeout = '30s';

CREATE EXTENSION citext;
CREATE SCHEMA sales;
COMMENT ON SCHEMA sales IS 'Sales data';
CREATE SCHEMA stock AUTHORIZATION app_readers;

CREATE TABLE sales.customers (
    id serial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name varchar(100),
    created_at timestamptz DEFAULT now(),
    preferred_order_no integer,
    CONSTRAINT customers_email_check CHECK (email LIKE '%@%')
);
CREATE TABLE sales.orders (
    customer_id integer NOT NULL REFERENCES sales.customers (id) ON DELETE CASCADE,
    order_no integer NOT NULL,
    total numeric(12,2) CHECK (total >= 0),
    status text NOT NULL DEFAULT 'new',
    PRIMARY KEY (customer_id, order_no)
);
-- the second half of the cycle: customers -> orders
ALTER TABLE sales.customers ADD CONSTRAINT customers_preferred_order_fkey
    FOREIGN KEY (id, preferred_order_no) REFERENCES sales.orders (customer_id, order_no)
    DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX orders_open_idx ON sales.orders (customer_id) WHERE status <> 'done';
CREATE UNIQUE INDEX customers_lower_email_idx ON sales.customers (lower(email));
CREATE INDEX orders_total_idx ON sales.orders (total DESC, order_no) INCLUDE (status);
COMMENT ON TABLE sales.orders IS 'Orders';
COMMENT ON COLUMN sales.orders.total IS 'Gross total';

CREATE TABLE stock.items (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku text NOT NULL,
    qty integer NOT NULL DEFAULT 0 CONSTRAINT qty_nonneg CHECK (qty >= 0),
    CONSTRAINT items_sku_uq UNIQUE (sku)
);
ALTER TABLE stock.items OWNER TO app_readers;

GRANT USAGE ON SCHEMA sales TO app_user;
GRANT SELECT, INSERT ON sales.orders TO app_user;
GRANT SELECT ON sales.customers TO app_user WITH GRANT OPTION;
GRANT USAGE, SELECT ON SEQUENCE sales.customers_id_seq TO app_user;
GRANT SELECT ON stock.items TO PUBLIC;
REVOKE ALL ON DATABASE {db} FROM PUBLIC;
GRANT CONNECT ON DATABASE {db} TO app_user;
ALTER DEFAULT PRIVILEGES IN SCHEMA sales GRANT SELECT ON TABLES TO app_readers;
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
"""


def _connection(pg: Any) -> Connection:
    return Connection(driver="external", pg_host=pg.host, pg_port=pg.port, pg_user=pg.user,
                      pg_password=SecretStr(pg.password))


def _build(pg: Any) -> None:
    with pg.connect() as conn:
        conn.execute(sql.SQL(SCHEMA_SQL).format(password=sql.Literal(APP_PASSWORD), db=sql.Identifier(pg.dbname)))


def _export(pg: Any, database: str) -> list[dict[str, Any]]:
    with pg.connect("postgres") as admin:
        return export_playbook(admin, _connection(pg), databases=[database])


def _targets(tmp: Path, pg: Any, playbook: list[dict[str, Any]]) -> list[Target]:
    """Load an exported playbook as a user would: from a file, with the passwords in the environment."""
    (tmp / "playbooks").mkdir(exist_ok=True)
    path = tmp / "playbooks" / "exported.yaml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False, allow_unicode=True))
    return load_project(path, pg.inventory(tmp), environ=ENV).targets


def _database(playbook: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(db for db in playbook[0]["databases"] if db["name"] == name)


@pytest.fixture
def exported(pg: Any) -> list[dict[str, Any]]:
    _build(pg)
    return _export(pg, pg.dbname)


def test_export_never_contains_a_password(pg: Any, exported: list[dict[str, Any]]) -> None:
    text = yaml.safe_dump(exported)
    assert APP_PASSWORD not in text
    assert "SCRAM-SHA-256" not in text
    role = next(r for r in exported[0]["roles"] if r["name"] == "app_user")
    assert role["password"] == "{{ env.APP_USER_PASSWORD }}"
    assert role["update_password"] == "on_create"
    assert role["member_of"] == ["app_readers"]
    assert role["connection_limit"] == 5
    assert "password" not in next(r for r in exported[0]["roles"] if r["name"] == "app_readers")
    assert all(r["name"] != "postgres" for r in exported[0]["roles"])


def test_password_variable_is_an_environment_name() -> None:
    assert password_variable("app-user") == "APP_USER_PASSWORD"
    assert password_variable("9lives") == "_9LIVES_PASSWORD"
    assert password_variable("Ünïcode") == "N_CODE_PASSWORD"


def test_export_shapes(pg: Any, exported: list[dict[str, Any]]) -> None:
    db = _database(exported, pg.dbname)
    tables = {(t["schema"], t["name"]): t for t in db["tables"]}
    customers, orders, items = tables[("sales", "customers")], tables[("sales", "orders")], tables[("stock", "items")]
    assert customers["columns"][0] == {"name": "id", "type": "serial", "primary_key": True}
    assert {"name": "email", "type": "text", "nullable": False, "unique": True} in customers["columns"]
    assert [c["name"] for c in orders["columns"] if c.get("primary_key")] == ["customer_id", "order_no"]
    assert items["columns"][0] == {"name": "id", "type": "integer", "identity": "always", "primary_key": True}
    assert items["unique"] == [{"columns": ["sku"], "name": "items_sku_uq"}]
    assert {"name": "qty_nonneg", "expression": "(qty >= 0)"} in items["checks"]
    assert customers["foreign_keys"] == [{
        "name": "customers_preferred_order_fkey", "columns": ["id", "preferred_order_no"],
        "references": {"table": "orders", "schema": "sales", "columns": ["customer_id", "order_no"]},
        "deferrable": "initially deferred"}]
    assert orders["foreign_keys"][0]["on_delete"] == "cascade"
    indexes = {i["name"]: i for i in orders["indexes"] + customers["indexes"]}
    assert indexes["orders_open_idx"]["where"] == "(status <> 'done'::text)"
    assert indexes["orders_total_idx"]["columns"] == ["total DESC", "order_no"]
    assert indexes["orders_total_idx"]["include"] == ["status"]
    assert indexes["customers_lower_email_idx"] == {"name": "customers_lower_email_idx",
                                                    "columns": ["lower(email)"], "unique": True}
    assert orders["comment"] == "Orders"
    assert {"to": "app_user", "privileges": ["SELECT"], "with_grant_option": True} in customers["grants"]
    assert items["grants"] == [{"to": "PUBLIC", "privileges": ["SELECT"]}]
    assert items["owner"] == "app_readers"
    assert db["grants"] == [{"to": "PUBLIC", "privileges": []}, {"to": "app_user", "privileges": ["CONNECT"]}]
    sales = next(s for s in db["schemas"] if s["name"] == "sales")
    assert sales["comment"] == "Sales data"
    assert {"to": "app_user", "privileges": ["USAGE", "SELECT"], "sequences": ["customers_id_seq"]} in sales["grants"]
    assert sales["default_privileges"] == [
        {"on": "tables", "for_role": "postgres", "to": "app_readers", "privileges": ["SELECT"]}]
    assert db["default_privileges"] == [
        {"on": "functions", "for_role": "postgres", "to": "PUBLIC", "privileges": []}]
    assert [e["name"] for e in db["extensions"]] == ["citext"]


def test_export_is_deterministic(pg: Any, exported: list[dict[str, Any]]) -> None:
    assert _export(pg, pg.dbname) == exported


def test_exported_playbook_plans_empty_on_its_source(tmp_path: Path, pg: Any,
                                                     exported: list[dict[str, Any]]) -> None:
    assert plan_of(_targets(tmp_path, pg, exported)) == []


def _renamed(playbook: list[dict[str, Any]], old: str, new: str) -> list[dict[str, Any]]:
    copied = copy.deepcopy(playbook)
    copied[0]["databases"] = [dict(_database(copied, old), name=new)]
    return copied


def test_exported_playbook_rebuilds_a_new_database(tmp_path: Path, pg: Any, exported: list[dict[str, Any]]) -> None:
    copy_name = pg.dbname + "_b"
    targets = _targets(tmp_path, pg, _renamed(exported, pg.dbname, copy_name))
    apply_all(targets)  # fails itself unless the re-plan is empty
    again = _export(pg, copy_name)
    source, rebuilt = _database(exported, pg.dbname), _database(again, copy_name)
    for section in ("tables", "schemas", "grants", "default_privileges", "extensions"):
        assert rebuilt.get(section) == source.get(section), section
    assert again[0]["roles"] == exported[0]["roles"]


def test_export_command_writes_a_private_file(tmp_path: Path, pg: Any) -> None:
    from erpprov.cli import main

    _build(pg)
    inventory = pg.inventory(tmp_path)
    (tmp_path / "playbooks").mkdir()
    playbook = tmp_path / "playbooks" / "dev.yaml"
    playbook.write_text("- {name: dev, hosts: dev}\n")
    out = tmp_path / "exported.yaml"
    result = CliRunner().invoke(main, ["export", str(playbook), "-i", str(inventory), "--db", pg.dbname,
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("# Exported by erpprov from localhost")
    assert "passwords are" in text.lower() or "Passwords are NOT exported" in text
    assert APP_PASSWORD not in text
    assert out.stat().st_mode & 0o777 == 0o600
    assert yaml.safe_load(text)[0]["databases"][0]["name"] == pg.dbname
    shown = CliRunner().invoke(main, ["export", str(playbook), "-i", str(inventory), "--db", "no_such_db"])
    assert shown.exit_code == 1
    assert "no database named no_such_db" in shown.output


def test_unknown_database_is_an_error(pg: Any) -> None:
    from erpprov.errors import ErpprovError

    with pytest.raises(ErpprovError, match="no database named"):
        _export(pg, "no_such_db")



EDGE_SQL = """
CREATE ROLE app_user;
CREATE SCHEMA edge;
CREATE FUNCTION edge.add(a integer, b integer) RETURNS integer LANGUAGE sql AS 'SELECT a + b';
REVOKE EXECUTE ON FUNCTION edge.add(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION edge.add(integer, integer) TO app_user;
CREATE TABLE edge.notes (id bigserial PRIMARY KEY, body text);
GRANT SELECT ON edge.notes TO app_user WITH GRANT OPTION;
GRANT INSERT ON edge.notes TO app_user;  -- mixed grant options for one grantee
CREATE VIEW edge.notes_view AS SELECT id FROM edge.notes;
GRANT SELECT ON edge.notes_view TO app_user;
"""


def test_functions_mixed_options_and_views_plan_empty_on_source(tmp_path: Path, pg: Any) -> None:
    with pg.connect() as conn:
        conn.execute(EDGE_SQL)
    exported = _export(pg, pg.dbname)
    edge = next(s for s in _database(exported, pg.dbname)["schemas"] if s["name"] == "edge")
    [add] = _database(exported, pg.dbname)["functions"]  # its grants on it: they apply where it is new too
    assert add["grants"] == [{"to": "PUBLIC", "privileges": []}, {"to": "app_user", "privileges": ["EXECUTE"]}]
    assert all("functions" not in g for g in edge["grants"])
    assert {"to": "app_user", "privileges": ["SELECT"], "with_grant_option": True,
            "tables": ["notes"]} in edge["grants"]
    assert all("notes_view" not in str(g) for g in edge["grants"])  # views are not exported
    notes = next(t for t in _database(exported, pg.dbname)["tables"] if t["name"] == "notes")
    assert notes["columns"][0]["type"] == "bigserial"
    assert plan_of(_targets(tmp_path, pg, exported)) == []


SIGNATURES_SQL = """
CREATE ROLE app_user;
CREATE SCHEMA odd;
CREATE FUNCTION odd."Mixed Name"(VARIADIC xs integer[]) RETURNS integer LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION odd.outs(IN a text, OUT b integer, OUT c numeric) LANGUAGE sql AS 'SELECT 1, 2.0';
CREATE FUNCTION odd.noargs() RETURNS integer LANGUAGE sql AS 'SELECT 1';
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA odd TO app_user;
CREATE SEQUENCE odd.counter;
ALTER SEQUENCE odd.counter OWNER TO app_user;
REVOKE UPDATE ON SEQUENCE odd.counter FROM app_user;
"""


def test_owners_and_signatures_come_with_the_acl(tmp_path: Path, pg: Any) -> None:
    """`read_database` names the owner of every object it reads an ACL for, and each function's
    signature as a grant spells it; the export takes both from there."""
    with pg.connect() as conn:
        conn.execute(SIGNATURES_SQL)
        live = catalog.read_database(conn, pg.dbname)
    assert {ref for ref, _ in live.acl} <= set(live.owners)
    assert live.owners[ObjectRef("sequence", "odd", "counter")] == "app_user"
    assert live.owners[ObjectRef("schema", None, "odd")] == pg.user
    assert live.signatures == {
        ObjectRef("function", "odd", "Mixed Name(VARIADIC xs integer[])"): '"Mixed Name"(integer[])',
        ObjectRef("function", "odd", "outs(a text, OUT b integer, OUT c numeric)"): "outs(text)",
        ObjectRef("function", "odd", "noargs()"): "noargs()",
    }
    exported = _export(pg, pg.dbname)
    odd = next(s for s in _database(exported, pg.dbname)["schemas"] if s["name"] == "odd")
    assert odd["grants"] == [
        {"to": "app_user", "privileges": ["USAGE", "SELECT"], "sequences": ["counter"]},  # the owner's, less UPDATE
    ]
    functions = _database(exported, pg.dbname)["functions"]
    assert [f["name"] for f in functions] == ["Mixed Name", "noargs", "outs"]
    assert all(f["grants"] == [{"to": "app_user", "privileges": ["EXECUTE"]}] for f in functions)
    assert plan_of(_targets(tmp_path, pg, exported)) == []


def test_index_operator_class_round_trips(tmp_path: Path, pg: Any) -> None:
    with pg.connect() as conn:
        conn.execute("CREATE TABLE words (w text); CREATE INDEX words_w_idx ON words (w text_pattern_ops)")
    assert plan_of(_targets(tmp_path, pg, _export(pg, pg.dbname))) == []


def test_column_collation_round_trips(tmp_path: Path, pg: Any) -> None:
    with pg.connect() as conn:
        conn.execute('CREATE TABLE words (w text COLLATE "C", v text COLLATE "POSIX")')
    exported = _export(pg, pg.dbname)
    words = _database(exported, pg.dbname)["tables"][0]
    assert words["columns"][0] == {"name": "w", "type": "text", "collation": "C"}
    assert plan_of(_targets(tmp_path, pg, exported)) == []


def test_text_that_looks_like_a_template_loads_as_itself(tmp_path: Path, pg: Any) -> None:
    with pg.connect() as conn:
        conn.execute("""CREATE TABLE notes (tags text DEFAULT '{#a,b}'); COMMENT ON TABLE notes IS 'see {{ x }}'""")
    exported = _export(pg, pg.dbname)
    targets = _targets(tmp_path, pg, exported)
    table = targets[0].play.databases[0].tables[0]
    assert table.comment == "see {{ x }}"
    assert plan_of(targets) == []


def test_password_variables_are_distinct_for_names_that_spell_alike() -> None:
    names = ["my-app", "my_app", "App", "app", "MY APP", "9lives", "_9lives"]
    variables = password_variables(names)
    assert len(set(variables.values())) == len(names), variables
    # the name that is its own spelling keeps the plain variable; the others are told apart
    assert variables["my_app"] == "MY_APP_PASSWORD" and variables["app"] == "APP_PASSWORD"
    assert password_variables(list(reversed(names))) == variables
    assert password_variables(["my-app"]) == {"my-app": "MY_APP_PASSWORD"}  # no clash, no suffix


def test_roles_that_spell_alike_export_distinct_placeholders(tmp_path: Path, pg: Any) -> None:
    with pg.connect() as conn:
        conn.execute('CREATE ROLE "my-app" LOGIN; CREATE ROLE my_app LOGIN')
    exported = _export(pg, pg.dbname)
    roles = {r["name"]: r["password"] for r in exported[0]["roles"]}
    assert roles["my_app"] == "{{ env.MY_APP_PASSWORD }}"
    assert roles["my-app"] != roles["my_app"] and roles["my-app"].startswith("{{ env.MY_APP_")


def _cli_export(cwd: Path, *args: str) -> Any:
    from tests.helpers import erpprov

    return erpprov(cwd, "export", *args)


def test_two_exports_of_one_server_are_byte_identical(tmp_path: Path, pg: Any) -> None:
    """`export nightly && git diff --exit-code` needs no clock in the file."""
    _build(pg)
    pg.inventory(tmp_path)
    first = _cli_export(tmp_path, "--db", pg.dbname, "-o", "one.yaml")
    second = _cli_export(tmp_path, "--db", pg.dbname, "-o", "two.yaml")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert (tmp_path / "one.yaml").read_bytes() == (tmp_path / "two.yaml").read_bytes()
    # two runs within one second agree even with a clock in the header: it must hold none
    assert re.search(r"\d\d:\d\d", (tmp_path / "one.yaml").read_text().split("\n- ")[0]) is None


ORDERED_SQL = [
    "CREATE SCHEMA {s}",
    "CREATE TABLE {s}.b (id int PRIMARY KEY, x int, y int)",
    "CREATE TABLE {s}.a (id int PRIMARY KEY, b_id int, z text)",
    "ALTER TABLE {s}.a ADD CONSTRAINT a_b_fk FOREIGN KEY (b_id) REFERENCES {s}.b (id)",
    "ALTER TABLE {s}.a ADD CONSTRAINT a_z_check CHECK (z <> '')",
    "ALTER TABLE {s}.a ADD CONSTRAINT a_b_z_check CHECK (b_id > 0)",
    "CREATE INDEX b_y_idx ON {s}.b (y)",
    "CREATE INDEX b_x_idx ON {s}.b (x)",
    "GRANT SELECT ON {s}.a TO ordered_reader",
    "GRANT SELECT ON {s}.b TO ordered_reader",
    "GRANT USAGE ON SCHEMA {s} TO ordered_reader",
]


def test_export_does_not_depend_on_the_order_objects_were_created_in(pg: Any) -> None:
    from erpprov.cli.commands.export import render_playbook

    with pg.connect() as conn:
        conn.execute("CREATE ROLE ordered_reader")
    # the tables in the other order too (a's foreign key is a statement of its own)
    orders = {"first": ORDERED_SQL, "second": [ORDERED_SQL[i] for i in (0, 2, 1)] + ORDERED_SQL[:2:-1]}
    texts = []
    for name, statements in orders.items():
        database = f"{pg.dbname}_{name}"
        with pg.connect("postgres") as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        with pg.connect(database) as conn:
            for statement in statements:
                conn.execute(statement.format(s="app"))
        texts.append(render_playbook(_export(pg, database), "localhost").replace(database, "DB"))
    assert texts[0] == texts[1]


def test_export_takes_its_host_from_the_inventory_alone(tmp_path: Path, pg: Any) -> None:
    """Adopting a database is the first thing a new team does: there is no playbook yet."""
    _build(pg)
    pg.inventory(tmp_path)
    done = _cli_export(tmp_path, "--db", pg.dbname)
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)[0]["databases"][0]["name"] == pg.dbname
    assert yaml.safe_load(done.stdout)[0]["hosts"] == "localhost"


def test_export_with_several_inventory_hosts_asks_for_one(tmp_path: Path, pg: Any) -> None:
    host = {"driver": "external", "pg_host": pg.host, "pg_port": pg.port, "pg_user": pg.user,
            "pg_password": pg.password}
    inventory = {"all": {"children": {"dev": {"hosts": {"db1": host, "db2": host}}}}}
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    refused = _cli_export(tmp_path, "--db", pg.dbname)
    assert refused.returncode == 1
    assert "several hosts match (db1, db2)" in refused.stderr and "--limit" in refused.stderr
    assert "Traceback" not in refused.stderr and "playbook not found" not in refused.stderr
    chosen = _cli_export(tmp_path, "--db", pg.dbname, "-l", "db2")
    assert chosen.returncode == 0, chosen.stderr
    assert yaml.safe_load(chosen.stdout)[0]["hosts"] == "db2"


TYPES_SQL = """
CREATE ROLE type_reader;
CREATE SCHEMA sales;
CREATE TYPE sales.order_status AS ENUM ('new', 'paid', 'shipped');
COMMENT ON TYPE sales.order_status IS 'where an order is';
REVOKE USAGE ON TYPE sales.order_status FROM PUBLIC;
GRANT USAGE ON TYPE sales.order_status TO type_reader;
CREATE SEQUENCE sales.invoice_no AS integer START 1000 INCREMENT 10 CACHE 5 CYCLE;
CREATE DOMAIN sales.qty AS integer DEFAULT 1 NOT NULL CONSTRAINT qty_positive CHECK (VALUE > 0);
CREATE TYPE sales.line AS (sku text COLLATE "C", n sales.qty, status sales.order_status);
CREATE TABLE sales.orders (id serial PRIMARY KEY, status sales.order_status NOT NULL DEFAULT 'new',
                           invoice integer DEFAULT nextval('sales.invoice_no'), first_line sales.line,
                           n sales.qty);
GRANT USAGE ON SEQUENCE sales.invoice_no TO type_reader;
SELECT nextval('sales.invoice_no');
CREATE MATERIALIZED VIEW sales.z_totals AS SELECT status, count(*) AS n FROM sales.orders GROUP BY status;
CREATE VIEW sales.a_paid AS SELECT n FROM sales.z_totals WHERE status = 'paid';
CREATE VIEW public.b_big WITH (security_barrier) AS SELECT * FROM sales.a_paid WHERE n > 10;
GRANT SELECT ON sales.a_paid TO type_reader;
COMMENT ON VIEW public.b_big IS 'big ones';
CREATE FUNCTION sales.open_count(s sales.order_status DEFAULT 'new', OUT n bigint) LANGUAGE sql STABLE
    AS 'SELECT count(*) FROM sales.orders WHERE status = s';
CREATE FUNCTION sales.pairs() RETURNS TABLE (a int, b text) LANGUAGE sql ROWS 5 SET search_path = pg_catalog
    AS $$SELECT 1, 'x'$$;
CREATE FUNCTION sales.touch() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN RETURN NEW; END$$;
CREATE PROCEDURE sales.tidy(keep int) LANGUAGE sql AS 'DELETE FROM sales.orders WHERE id < keep';
CREATE TRIGGER orders_touch BEFORE UPDATE OF status ON sales.orders FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION sales.touch('a', 'b');
ALTER TABLE sales.orders DISABLE TRIGGER orders_touch;
"""


def test_enum_columns_sequences_and_views_round_trip_to_an_empty_database(tmp_path: Path, pg: Any) -> None:
    """The issue's failure: an exported table with an enum column could not be applied elsewhere,
    the type was missing (`type "order_status" does not exist`); views were not exported at all."""
    with pg.connect() as conn:
        conn.execute(TYPES_SQL)
    exported = _export(pg, pg.dbname)
    source = _database(exported, pg.dbname)
    assert source["types"][0] == {"name": "order_status", "schema": "sales", "enum": ["new", "paid", "shipped"],
                                  "owner": pg.user, "comment": "where an order is",
                                  "grants": [{"to": "PUBLIC", "privileges": []},
                                             {"to": "type_reader", "privileges": ["USAGE"]}]}
    assert [t["name"] for t in source["types"]] == ["order_status", "qty", "line"]
    assert source["sequences"] == [{"name": "invoice_no", "schema": "sales", "type": "integer", "start": 1000,
                                    "increment": 10, "cache": 5, "cycle": True, "owner": pg.user}]
    assert plan_of(_targets(tmp_path, pg, exported)) == []
    copy_name = pg.dbname + "_b"
    apply_all(_targets(tmp_path, pg, _renamed(exported, pg.dbname, copy_name)))  # fails unless the re-plan is empty
    rebuilt = _database(_export(pg, copy_name), copy_name)
    assert [v["name"] for v in source["views"]] == ["a_paid", "b_big"]  # each after what it reads
    assert source["views"][0]["grants"] == [{"to": "type_reader", "privileges": ["SELECT"]}]
    assert [f["name"] for f in source["functions"]] == ["open_count", "pairs", "touch"]
    assert source["triggers"][0]["when"] == "(old.status IS DISTINCT FROM new.status)"
    for section in ("types", "sequences", "tables", "schemas", "views", "materialized_views", "functions",
                    "procedures", "triggers"):
        assert rebuilt.get(section) == source.get(section), section


CURRENT_SQL = """
CREATE ROLE type_reader;
CREATE SCHEMA sales;
CREATE TYPE sales.order_status AS ENUM ('new', 'shipped');
CREATE TABLE sales.orders (id serial PRIMARY KEY, status sales.order_status NOT NULL DEFAULT 'new');
CREATE FUNCTION sales.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE FUNCTION sales.stale(x int) RETURNS int LANGUAGE sql AS 'SELECT x';
CREATE VIEW sales.stale_view AS SELECT id FROM sales.orders;
CREATE TRIGGER stale_trigger AFTER INSERT ON sales.orders FOR EACH ROW EXECUTE FUNCTION sales.touch();
CREATE SEQUENCE sales.stale_seq;
"""


def test_an_export_with_prune_turns_another_database_into_the_same_schema(tmp_path: Path, pg: Any) -> None:
    """The issue's yardstick in small: desired SQL in one database, current SQL in another; export
    the first (--prune), apply it onto the second with every hazard allowed: the re-plan is empty
    and both dump alike."""
    from erpprov.core.actions import Hazard
    from erpprov.drivers.embedded import find_bindir

    current = pg.dbname + "_current"
    with pg.connect() as conn:
        conn.execute(TYPES_SQL)
    with pg.connect("postgres") as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(current)))
        exported = export_playbook(admin, _connection(pg), databases=[pg.dbname], prune=True)
    with pg.connect(current) as conn:
        conn.execute(CURRENT_SQL.replace("CREATE ROLE type_reader;", ""))
    targets = _targets(tmp_path, pg, _renamed(exported, pg.dbname, current))
    apply_all(targets, allow=frozenset(Hazard))  # fails unless the re-plan inside the lock is empty
    assert plan_of(targets) == []

    def dump(database: str) -> list[str]:
        run = subprocess.run([str(find_bindir() / "pg_dump"), "--schema-only", "-h", pg.host, "-p", str(pg.port),
                              "-U", pg.user, database], env={**os.environ, "PGPASSWORD": pg.password},
                             capture_output=True, text=True, check=True, timeout=60)
        # \restrict lines carry a random key per dump
        return [line for line in run.stdout.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))]

    assert dump(current) == dump(pg.dbname)
