"""The table reconciler against a real PostgreSQL: every test applies, then re-plans to nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from erpprov.core.actions import Op, Phase
from erpprov.load.project import load_project
from erpprov.state.canon import canonicalize
from erpprov.state.table_catalog import inspect_tables
from tests.helpers import count_round_trips
from tests.tables.tablekit import assert_declared, converge, managed_view, plan, tables

ROOT = Path(__file__).resolve().parents[2]


def _dev_tables():
    project = load_project(ROOT / "playbooks/dev.yaml", ROOT / "inventory.yaml", environ={})
    return project.targets[0].play.databases[0].tables


def test_dev_playbook_creates_keys_and_indexes_and_replans_empty(conn):
    spec = _dev_tables()
    first = converge(conn, spec)
    assert [a.op for a in first.actions] == [Op.CREATE] * len(first.actions)
    live = inspect_tables(conn)
    names = {(t.name, c.name) for t in live.tables.values() for c in t.constraints}
    assert {("users", "users_pkey"), ("users", "users_email_key"), ("users", "users_username_key"),
            ("posts", "posts_user_id_fkey"), ("posts", "posts_status_check"), ("orders", "orders_pkey"),
            ("orders", "orders_total_amount_check"), ("orders", "orders_user_id_fkey")} <= names
    indexes = {i.name for t in live.tables.values() for i in t.indexes}
    assert {"posts_user_id_idx", "posts_status_created_at_idx", "orders_open_idx", "orders_user_id_idx"} <= indexes
    users = live.tables[("public", "users")]
    assert users.column("id").serial and users.column("id").type == "integer"
    assert live.tables[("public", "orders")].column("id").type == "bigint"
    # the predicted names are exactly PostgreSQL's: the desired state equals what was built
    assert managed_view(canonicalize(conn, spec, live)) == managed_view(live)
    # FKs are created after every table, in their own phase
    fk_phases = {a.phase for a in first.actions if a.address.endswith("_fkey")}
    assert fk_phases == {Phase.FOREIGN_KEY}


SPELLINGS = """
- name: spellings
  columns:
    - {name: a, type: varchar(50)}
    - {name: b, type: character varying(50)}
    - {name: c, type: int}
    - {name: d, type: int4}
    - {name: e, type: INTEGER}
    - {name: f, type: bigint}
    - {name: g, type: int8}
    - {name: h, type: bool, default: "true"}
    - {name: i, type: boolean, default: "TRUE"}
    - {name: j, type: timestamp, default: now()}
    - {name: k, type: timestamptz, default: CURRENT_TIMESTAMP}
    - {name: l, type: timestamp with time zone, default: now()}
    - {name: m, type: "numeric(10,2)", default: "-1.5"}
    - {name: n, type: "text[]", default: "'{}'"}
    - {name: o, type: json}
    - {name: p, type: jsonb, default: "'{}'::jsonb"}
    - {name: q, type: uuid, default: gen_random_uuid(), nullable: false}
    - {name: r, type: serial}
    - {name: s, type: bigserial}
    - {name: t, type: bigint, identity: always}
    - {name: u, type: int, identity: by default}
    - {name: v, type: text, default: "'a'::text"}
    - {name: w, type: text, default: "'draft'"}
    - {name: x, type: varchar(20), default: "'open'"}
    - {name: y, type: double precision, default: "-1"}
    - {name: z, type: "character(3)", default: "'EUR'"}
    - {name: aa, type: date, default: CURRENT_DATE}
    - {name: ab, type: text, collation: C}
    - {name: ac, type: smallint, default: "0"}
    - {name: ad, type: integer, generated: "c + d"}
  checks:
    - {expression: "x IN ('open', 'closed', 'held')"}
    - {expression: "m > -100.5 AND m < 1e6"}
    - {name: named_check, expression: "w <> ''"}
"""


def test_type_and_default_spellings_converge_in_one_apply(conn):
    first = converge(conn, tables(SPELLINGS))
    assert len(first.actions) == 1
    live = inspect_tables(conn).tables[("public", "spellings")]
    types = {c.name: c.type for c in live.columns}
    assert types["a"] == types["b"] == "character varying(50)"
    assert types["c"] == types["d"] == types["e"] == "integer"
    assert types["f"] == types["g"] == "bigint"
    assert types["k"] == types["l"] == "timestamp with time zone"
    assert live.column("r").serial and live.column("s").serial and live.column("s").type == "bigint"
    assert live.column("t").identity == "always" and live.column("t").not_null
    assert {c.name for c in live.constraints} == {"spellings_x_check", "spellings_m_check", "named_check"}


@pytest.mark.parametrize("column", [
    "{name: v, type: varchar(50)}", "{name: v, type: character varying}", "{name: v, type: int4, default: '1'}",
    "{name: v, type: timestamptz, default: now()}", "{name: v, type: timestamp, default: CURRENT_TIMESTAMP}",
    "{name: v, type: 'numeric(10,2)', default: '-1.5'}", "{name: v, type: 'text[]'}",
    "{name: v, type: uuid, default: gen_random_uuid()}", "{name: v, type: serial}", "{name: v, type: bigserial}",
    "{name: v, type: int, identity: always}", "{name: v, type: text, default: \"'a'::text\"}",
    "{name: v, type: bool, default: 'false'}", "{name: v, type: jsonb, default: \"'[]'\"}",
])
def test_each_spelling_added_to_an_existing_table_converges(conn, column):
    converge(conn, tables("- {name: host, columns: [{name: id, type: int}]}"))
    spec = tables(f"- {{name: host, columns: [{{name: id, type: int}}, {column}]}}")
    first = converge(conn, spec)
    assert [(a.op, a.address.rsplit(".", 1)[-1]) for a in first.actions] == [(Op.CREATE, "v")]
    assert_declared(conn, spec)


def test_changes_to_existing_tables_converge(conn):
    converge(conn, tables(SPELLINGS))
    changed = SPELLINGS.replace("{name: a, type: varchar(50)}", "{name: a, type: varchar(80), nullable: false, "
                                                               "default: \"'x'\", comment: widened}")
    changed = changed.replace("{name: c, type: int}", "{name: c, type: bigint, unique: true}")
    changed = changed.replace("{name: r, type: serial}", "{name: r, type: integer}")
    changed = changed.replace("{name: u, type: int, identity: by default}", "{name: u, type: int, identity: always}")
    changed = changed.replace("{name: f, type: bigint}", "{name: f, type: bigserial}")
    changed = changed.replace("{name: ad, type: integer, generated: \"c + d\"}",
                              "{name: ad, type: bigint, generated: \"c * 2\"}")
    changed = changed.replace("- {name: named_check, expression: \"w <> ''\"}",
                              "- {name: named_check, expression: \"w <> 'x'\"}")
    changed += "  indexes:\n    - {columns: [lower(w)]}\n    - {columns: [a, b DESC], where: \"h\"}\n"
    changed += "  comment: now with comments\n"
    first = converge(conn, tables(changed))
    touched = {a.address.split(".", 3)[-1] for a in first.actions}
    assert {"spellings.a", "spellings.c", "spellings.r", "spellings.u", "spellings.f", "spellings.ad",
            "spellings.named_check", "spellings"} <= touched, touched
    assert_declared(conn, tables(changed))
    back = converge(conn, tables(SPELLINGS), prune=["public"])
    assert back.actions
    assert_declared(conn, tables(SPELLINGS))


def test_schemas_foreign_keys_and_index_features_converge(conn):
    conn.execute("CREATE SCHEMA app")
    spec = tables("""
- name: parent
  schema: app
  columns:
    - {name: a, type: int, primary_key: true}
    - {name: b, type: text, primary_key: true}
    - {name: code, type: text, unique: true}
- name: child
  columns:
    - {name: id, type: bigint, identity: by default, primary_key: true}
    - {name: pa, type: int}
    - {name: pb, type: text}
    - {name: code, type: text}
    - {name: doc, type: jsonb}
    - {name: self_id, type: bigint}
  foreign_keys:
    - {columns: [pa, pb], references: {schema: app, table: parent}, on_delete: set null, on_update: cascade}
    - {columns: [code], references: {schema: app, table: parent, columns: [code]}, deferrable: initially deferred}
    - {columns: [self_id], references: {table: child}, deferrable: true, name: child_self}
  unique:
    - {columns: [pa, pb, code]}
  indexes:
    - {columns: [doc], method: gin}
    - {columns: [code NULLS FIRST], include: [pa]}
    - {columns: ["lower(code) DESC", pa], unique: true, where: "pa > 0"}
    - {columns: [(pa + 1)], method: hash, name: child_hash}
""")
    converge(conn, spec)
    live = inspect_tables(conn)
    assert managed_view(canonicalize(conn, spec, live)) == managed_view(live)


def test_foreign_key_cycle_converges(conn):
    converge(conn, tables("""
- name: a
  columns: [{name: id, type: int, primary_key: true}, {name: b_id, type: int}]
  foreign_keys: [{columns: [b_id], references: {table: b}}]
- name: b
  columns: [{name: id, type: int, primary_key: true}, {name: a_id, type: int}]
  foreign_keys: [{columns: [a_id], references: {table: a}}]
"""))
    converge(conn, tables("- {name: c, columns: [{name: id, type: int}]}"), prune=["public"])
    assert set(inspect_tables(conn).tables) == {("public", "c")}


def test_replacing_a_referenced_key_recreates_foreign_keys(conn):
    base = """
- name: p
  columns: [{name: id, type: int, primary_key: true}, {name: k, type: int, nullable: false}]
- name: c
  columns: [{name: pid, type: int}]
  foreign_keys: [{columns: [pid], references: {table: p, columns: [%s]}}]
"""
    converge(conn, tables(base % "id"))
    moved = base.replace("{name: id, type: int, primary_key: true}, {name: k, type: int, nullable: false}",
                         "{name: id, type: int}, {name: k, type: int, primary_key: true}") % "k"
    first = converge(conn, tables(moved))
    ops = {(a.op, a.address.rsplit(".", 1)[-1]) for a in first.actions}
    assert {(Op.REPLACE, "p_pkey"), (Op.DELETE, "c_pid_fkey"), (Op.CREATE, "c_pid_fkey")} <= ops, ops
    assert_declared(conn, tables(moved))
    fk = conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'c_pid_fkey'").fetchone()
    assert fk == ("FOREIGN KEY (pid) REFERENCES p(k)",)


def test_renames_keep_the_data_and_never_drop(conn):
    converge(conn, tables("""
- name: customers
  columns:
    - {name: id, type: serial, primary_key: true}
    - {name: mail, type: text, unique: true}
  checks: [{expression: "mail LIKE '%@%'"}]
  indexes: [{columns: [lower(mail)]}]
- name: invoices
  columns: [{name: id, type: int}, {name: customer, type: int}]
  foreign_keys: [{columns: [customer], references: {table: customers}}]
"""))
    conn.execute("INSERT INTO customers (mail) VALUES ('a@example.org')")
    renamed = tables("""
- name: clients
  renamed_from: customers
  columns:
    - {name: id, type: serial, primary_key: true}
    - {name: email, type: text, unique: true, renamed_from: mail}
  checks: [{expression: "email LIKE '%@%'"}]
  indexes: [{columns: [lower(email)]}]
- name: invoices
  columns: [{name: id, type: int}, {name: client, type: int, renamed_from: customer}]
  foreign_keys: [{columns: [client], references: {table: clients}}]
""")
    first = converge(conn, renamed)
    assert all(a.op is Op.UPDATE for a in first.actions), [a.address for a in first.actions]
    assert not any(a.hazards for a in first.actions)
    assert conn.execute("SELECT email FROM clients").fetchall() == [("a@example.org",)]


def test_unmanaged_tables_and_columns_are_reported_and_left_alone(conn):
    conn.execute("CREATE TABLE legacy (x int); CREATE TABLE keep (id int, extra text); "
                 "CREATE INDEX ON keep (extra)")
    result = converge(conn, tables("- {name: keep, columns: [{name: id, type: int}]}"))
    assert not result.actions
    name = conn.info.dbname
    assert set(result.unmanaged) == {f"table.{name}.public.legacy", f"column.{name}.public.keep.extra"}
    pruned = plan(conn, tables("- {name: keep, columns: [{name: id, type: int}]}"), prune=["public"])
    assert {a.address for a in pruned.actions} == {f"table.{name}.public.legacy",
                                                  f"column.{name}.public.keep.extra",
                                                  f"index.{name}.public.keep_extra_idx"}


def test_extension_tables_and_system_schemas_are_not_inspected(conn):
    # A table that belongs to an extension (as pg_depend records it) is the extension's, not ours.
    conn.execute("CREATE TABLE ext_owned (x int); CREATE TABLE plain (x int); "
                 "ALTER EXTENSION plpgsql ADD TABLE ext_owned")
    live = inspect_tables(conn)
    assert set(live.tables) == {("public", "plain")}


WEIRD = '''
- name: 'Order "Lines" 2024.v1'
  schema: 'Sales Dept'
  comment: "l'été"
  columns:
    - {name: 'ID', type: int, primary_key: true}
    - {name: 'line.no', type: int, nullable: false, unique: true}
    - {name: 'naïve "quoted" col', type: text, default: "'x'", comment: 'ça'}
    - {name: 'select', type: text, collation: C}
    - {name: '名前', type: varchar(10)}
  checks:
    - {expression: '"line.no" > 0'}
  indexes:
    - {columns: ['naïve "quoted" col DESC', 'select']}
    - {columns: ['lower("名前")'], where: '"ID" > 5'}
- name: 'Child Table'
  schema: 'Sales Dept'
  columns:
    - {name: 'Parent ID', type: int}
  foreign_keys:
    - {columns: ['Parent ID'], references: {table: 'Order "Lines" 2024.v1'}}
'''


def test_odd_identifiers_converge(conn):
    conn.execute('CREATE SCHEMA "Sales Dept"')
    spec = tables(WEIRD)
    converge(conn, spec)
    live = inspect_tables(conn)
    assert ("Sales Dept", 'Order "Lines" 2024.v1') in live.tables
    assert managed_view(canonicalize(conn, spec, live)) == managed_view(live)
    renamed = tables(WEIRD.replace("- {name: '名前', type: varchar(10)}",
                                   "- {name: 'Namé 2', type: varchar(10), renamed_from: '名前'}")
                     .replace("lower(\"名前\")", "lower(\"Namé 2\")"))
    first = converge(conn, renamed)
    assert [a.op for a in first.actions] == [Op.UPDATE]


def _count_queries(pg, monkeypatch, func) -> int:
    """Round trips while func runs on a fresh connection (tests.helpers.count_round_trips)."""
    with pg.connect() as c, count_round_trips(monkeypatch) as seen:
        func(c)
    return seen.count


def test_inspect_uses_a_fixed_number_of_queries(pg, conn, monkeypatch):
    def make(n: int, start: int = 0) -> str:
        return "".join(f"CREATE TABLE t{i} (id serial PRIMARY KEY, a text UNIQUE, b int CHECK (b > 0), "
                       f"r int REFERENCES t0(id)); CREATE INDEX ON t{i} (b);" for i in range(start, n))
    conn.execute(make(10))
    small = _count_queries(pg, monkeypatch, inspect_tables)
    conn.execute(make(100, 10))
    large = _count_queries(pg, monkeypatch, inspect_tables)
    assert small == large <= 4
    assert len(inspect_tables(conn).tables) == 100
    spec_small = [f"- {{name: t{i}, columns: [{{name: id, type: serial, primary_key: true}}, "
                  f"{{name: b, type: int}}], checks: [{{expression: 'b > 0'}}], indexes: [{{columns: [b]}}]}}"
                  for i in range(100)]
    few = _count_queries(pg, monkeypatch, lambda c: canonicalize(c, tables("\n".join(spec_small[:10]))))
    many = _count_queries(pg, monkeypatch, lambda c: canonicalize(c, tables("\n".join(spec_small))))
    assert few == many


def test_owner_and_comments_converge(conn):
    conn.execute("CREATE ROLE erp_tables_owner_a; CREATE ROLE erp_tables_owner_b")
    spec = """
- name: owned
  owner: %s
  comment: %s
  columns:
    - {name: id, type: int, comment: %s}
"""
    converge(conn, tables(spec % ("erp_tables_owner_a", "first", "the key")))
    second = converge(conn, tables(spec % ("erp_tables_owner_b", "second", "'the ''key'''")))
    assert {(a.address.split(".")[0], tuple(a.after)) for a in second.actions} == {
        ("table", ("owner",)), ("table", ("comment",)), ("column", ("comment",))}
    owner = conn.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'owned'").fetchone()[0]
    assert owner == "erp_tables_owner_b"
    # no owner in the file: whoever owns it stays
    assert not plan(conn, tables(spec.replace("  owner: %s\n", "") % ("second", "'the ''key'''"))).actions


def test_predicted_names_match_postgresql_for_long_and_multibyte_names(conn):
    """The names of unnamed keys and indexes are predicted, not built: check them against what
    PostgreSQL itself picks, including truncation to 63 bytes on a character boundary and the
    numbered fallback when a name is taken."""
    long_table = "é" * 20 + "x" * 15  # 55 bytes
    long_column = "ü" * 25  # 50 bytes
    spec = f"""
- name: '{long_table}'
  columns:
    - {{name: id, type: int, primary_key: true}}
    - {{name: '{long_column}', type: int, unique: true}}
    - {{name: a, type: int}}
    - {{name: b_c, type: int}}
  indexes:
    - {{columns: ['{long_column}']}}
    - {{columns: [a, b_c], include: [id]}}
- name: '{long_table}_a'
  columns:
    - {{name: b_c, type: int}}
  indexes:
    - {{columns: [b_c]}}
"""
    desired = canonicalize(conn, tables(spec))
    ident = '"' + long_table + '"'
    conn.execute(f'CREATE TABLE {ident} (id int PRIMARY KEY, "{long_column}" int UNIQUE, a int, b_c int);'
                 f'CREATE INDEX ON {ident} ("{long_column}"); CREATE INDEX ON {ident} (a, b_c) INCLUDE (id);'
                 f'CREATE TABLE "{long_table}_a" (b_c int); CREATE INDEX ON "{long_table}_a" (b_c)')
    live = inspect_tables(conn)
    for key, table in desired.tables.items():
        assert {c.name for c in table.constraints} == {c.name for c in live.tables[key].constraints}
        assert {i.name for i in table.indexes} == {i.name for i in live.tables[key].indexes}
    assert not plan(conn, tables(spec)).actions


def test_an_invalid_declaration_is_named_in_the_error(conn):
    from erpprov.errors import ErpprovError

    with pytest.raises(ErpprovError) as error:
        canonicalize(conn, tables("""
- {name: good, columns: [{name: id, type: int}]}
- {name: bad, columns: [{name: id, type: int}, {name: amount, type: nosuchtype}]}
"""))
    assert "public.bad.amount" in str(error.value) and "nosuchtype" in str(error.value)
    with pytest.raises(ErpprovError) as error:
        canonicalize(conn, tables("- {name: bad, columns: [{name: id, type: int}], "
                                  "checks: [{expression: 'nope > 1'}]}"))
    assert "public.bad" in str(error.value) and "nope" in str(error.value)
    assert inspect_tables(conn).tables == {}  # the scratch build left nothing behind


def test_retyping_a_column_under_a_check_converges(conn):
    """ALTER COLUMN TYPE reprints a live check in casts of the old type ((n)::numeric > ...): the
    plan must compare the check as it will read after the retype, and replace it, in one apply."""
    spec = "- {name: t, columns: [{name: n, type: %s}], checks: [{expression: 'n > -100'}]}"
    converge(conn, tables(spec % "'numeric(8,2)'"))
    first = converge(conn, tables(spec % "bigint"))
    ops = {(a.op, a.address.rsplit(".", 1)[-1]) for a in first.actions}
    assert ops == {(Op.UPDATE, "n"), (Op.DELETE, "t_n_check"), (Op.CREATE, "t_n_check")}, ops
    assert conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 't_n_check'"
                        ).fetchone() == ("CHECK ((n > '-100'::integer))",)
