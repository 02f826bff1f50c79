"""Random tables converge: apply(A) re-plans empty, and apply(A) then apply(B) leaves exactly B."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from erpprov.core import model
from erpprov.state.canon import canonicalize
from erpprov.state.table_catalog import inspect_tables
from tests.tables.roundtrip import exported_tables, schema_dump
from tests.tables.tablekit import assert_same, converge, tables

# Column names say which group a column belongs to, so a column that lives on from A to B only
# changes between types PostgreSQL can cast (group n), or keeps its type.
CASTABLE = {  # type -> defaults that fit it
    "integer": [None, "0", "-1", "42"], "int": [None, "7"], "bigint": [None, "-5"], "smallint": [None, "1"],
    "numeric(8,2)": [None, "-1.5", "0"], "text": [None, "'a'", "'a'::text", "''"],
    "varchar(20)": [None, "'x'"], "serial": [None], "bigserial": [None],
}
FIXED = {
    "b": ("boolean", [None, "true", "false"]),
    "t": ("timestamptz", [None, "now()", "CURRENT_TIMESTAMP"]),
    "d": ("date", [None, "CURRENT_DATE"]),
    "j": ("jsonb", [None, "'{}'::jsonb"]),
    "u": ("uuid", [None, "gen_random_uuid()"]),
}
TEXTUAL = {"text", "varchar(20)"}


@st.composite
def column(draw, name: str) -> dict:
    group = name[0]
    if group == "n":
        type_ = draw(st.sampled_from(sorted(CASTABLE)))
        default = draw(st.sampled_from(CASTABLE[type_]))
    else:
        type_, defaults = FIXED[group]
        default = draw(st.sampled_from(defaults))
    spec = {"name": name, "type": type_, "nullable": draw(st.booleans())}
    if default is not None:
        spec["default"] = default
    if type_ in ("integer", "bigint") and default is None and draw(st.integers(0, 4)) == 0:
        spec["identity"] = draw(st.sampled_from(["always", "by default"]))
    if group in "nbdu" and draw(st.integers(0, 3)) == 0:
        spec["unique"] = True
    return spec


def _check(col: dict) -> str | None:
    name, type_ = col["name"], col["type"]
    if type_ in TEXTUAL:
        return f"{name} <> 'forbidden'"
    if type_ in ("boolean", "jsonb", "uuid", "timestamptz", "date"):
        return None
    return f"{name} > -100"


@st.composite
def table_set(draw) -> list[model.Table]:
    count = draw(st.integers(1, 3))
    result: list[dict] = []
    for t in range(count):
        names = draw(st.lists(st.sampled_from(["n1", "n2", "n3", "b1", "t1", "d1", "j1", "u1"]),
                              min_size=1, max_size=5, unique=True))
        cols = [draw(column(n)) for n in names]
        table: dict = {"name": f"t{t}", "columns": cols}
        keyable = [c for c in cols if c["name"][0] in "nd"]
        if keyable and draw(st.booleans()):
            for c in draw(st.lists(st.sampled_from(keyable), min_size=1, max_size=2, unique_by=lambda c: c["name"])):
                c["primary_key"] = True
        checks = [_check(c) for c in cols if draw(st.integers(0, 3)) == 0]
        table["checks"] = [{"expression": c} for c in checks if c]
        indexes = []
        for c in cols:
            roll = draw(st.integers(0, 7))
            if roll == 0:
                indexes.append({"columns": [c["name"] + draw(st.sampled_from(["", " DESC", " NULLS FIRST"]))]})
            elif roll == 1 and c["name"][0] == "n":
                indexes.append({"columns": [f"lower({c['name']}::text)"]})
            elif roll == 2:
                indexes.append({"columns": [c["name"]], "where": f"{c['name']} IS NOT NULL",
                                "unique": draw(st.booleans())})
            elif roll == 3 and c["name"][0] == "j":
                indexes.append({"columns": [c["name"]], "method": "gin"})
        table["indexes"] = indexes
        numeric = [c for c in cols if c["name"][0] == "n" and not c.get("identity")]
        if numeric and draw(st.integers(0, 3)) == 0:
            source = numeric[0]["name"]
            cols.append({"name": "g1", "type": "text", "generated": f"({source}::text || '!')"})
        # a foreign key to an earlier table (or itself) with a one-column primary key
        targets = [(i, [c for c in other["columns"] if c.get("primary_key")]) for i, other in
                   enumerate(result + [table])]
        targets = [(i, pk[0]) for i, pk in targets if len(pk) == 1]
        if targets and draw(st.booleans()):
            i, pk = draw(st.sampled_from(targets))
            ref_type = {"serial": "integer", "bigserial": "bigint"}.get(pk["type"], pk["type"])
            cols.append({"name": f"r{i}_{pk['type'].split('(')[0]}", "type": ref_type})
            table["foreign_keys"] = [{"columns": [cols[-1]["name"]], "references": {"table": f"t{i}"},
                                      "on_delete": draw(st.sampled_from(["no action", "cascade", "set null"]))}]
            if table["foreign_keys"][0]["on_delete"] == "set null" and draw(st.booleans()):
                table["foreign_keys"][0]["on_delete_columns"] = [cols[-1]["name"]]
        result.append(table)
    return [model.Table.model_validate(t) for t in result]


# No shrinking: each example builds real tables, and shrinking a failure can take minutes; the
# failing example is printed as found (a few small tables).
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.reuse, Phase.generate])


def _fresh(pg, name: str):
    from psycopg import sql

    with pg.connect("postgres") as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return pg.connect(name)


@SETTINGS
@given(a=table_set(), b=table_set())
def test_random_tables_converge_and_transition(pg, a, b):
    with _fresh(pg, pg.dbname + "_h") as conn:
        converge(conn, a)
        converge(conn, b, prune=["public"])
        assert_same(inspect_tables(conn), canonicalize(conn, b))


# --- round trips of the properties export must carry ------------------------------------------------
# Every name is fixed by the table it belongs to and every object is named, so that two databases
# that hold the same tables print the same dump. A column keeps one type in every example, and a
# table is partitioned (or not) in every example alike: those changes are refused or tested apart.

MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]


@st.composite
def rich_table(draw, name: str) -> dict:
    identity: dict = {"name": "id", "type": "bigint", "identity": draw(st.sampled_from(["always", "by default"]))}
    options = draw(st.fixed_dictionaries({}, optional={
        "start": st.integers(1, 50), "increment": st.sampled_from([1, 5]), "cache": st.integers(1, 20),
        "cycle": st.booleans()}))
    if options:
        identity["identity_options"] = options
    label: dict = {"name": "label", "type": "text"}
    label.update(draw(st.fixed_dictionaries({}, optional={"storage": st.sampled_from(["main", "external", "extended"]),
                                                         "compression": st.just("pglz"),
                                                         "statistics": st.integers(0, 500)})))
    columns = [identity, label, {"name": "n", "type": "integer"}, {"name": "during", "type": "tstzrange"}]
    table: dict = {"name": name, "columns": columns, "unlogged": draw(st.booleans())}
    if draw(st.booleans()):
        element = draw(st.sampled_from([{"column": "during"},
                                        {"expression": "tstzrange(lower(during), upper(during))"}]))
        table["exclude"] = [{"name": f"{name}_no_overlap", "elements": [{**element, "with": "&&"}],
                             "where": draw(st.sampled_from([None, "n > 0"])),
                             "deferrable": draw(st.booleans())}]
    if draw(st.booleans()):
        table["with"] = {"fillfactor": draw(st.sampled_from([60, 80, 100]))}
    order = draw(st.permutations(["id", "n"]))
    table["primary_key"] = {"columns": order if draw(st.booleans()) else ["id"], "name": f"{name}_key"}
    if draw(st.booleans()):
        table["unique"] = [{"columns": ["label", "n"], "name": f"{name}_label_n",
                            "nulls_not_distinct": draw(st.booleans()),
                            "deferrable": draw(st.sampled_from([False, True, "initially deferred"]))}]
    if draw(st.booleans()):
        table["checks"] = [{"name": f"{name}_n_check", "expression": f"n > {draw(st.integers(-5, 5))}",
                            "no_inherit": draw(st.booleans()), "not_valid": draw(st.booleans())}]
    indexes = []
    for i, entry in enumerate(draw(st.lists(st.sampled_from(
            ["label text_pattern_ops", 'label COLLATE "C"', "lower(label) DESC", "n", "label"]),
            max_size=3, unique=True))):
        index: dict = {"name": f"{name}_i{i}", "columns": [entry]}
        if draw(st.booleans()):
            index["with"] = {"fillfactor": draw(st.sampled_from([50, 90]))}
        if draw(st.booleans()):
            index["comment"] = draw(st.sampled_from(["search", "sort"]))
        indexes.append(index)
    table["indexes"] = indexes
    if draw(st.booleans()):
        table["row_level_security"] = {"enabled": draw(st.booleans()), "forced": draw(st.booleans())}
        table["policies"] = [{"name": f"{name}_p", "for": draw(st.sampled_from(["all", "select"])),
                              "using": draw(policy_expression())}]
        if draw(st.booleans()):
            table["policies"].append({"name": f"{name}_w", "as": "restrictive", "for": "insert",
                                      "with_check": draw(policy_expression())})
    return table


LIST_VALUES = ["'a'", "'b'", "'it''s'", "'x y'", "NULL", "'Z'"]


@st.composite
def partitioned(draw, method: str) -> dict:
    """One partitioned table per method (a table keeps its method in every example); partitions
    by name, with bounds that never overlap within one example and may move between two."""
    if method == "range":
        chosen = draw(st.lists(st.integers(0, len(MONTHS) - 2), min_size=1, max_size=3, unique=True))
        partitions = [{"name": f"range_{i}", "from": [f"'{MONTHS[i]}'" if i or draw(st.booleans()) else "MINVALUE"],
                       "to": [f"'{MONTHS[i + 1]}'"]} for i in sorted(chosen)]
    elif method == "list":
        groups = draw(st.lists(st.integers(0, 2), min_size=len(LIST_VALUES), max_size=len(LIST_VALUES)))
        partitions = [{"name": f"list_{g}", "in": [v for v, group in zip(LIST_VALUES, groups, strict=True)
                                                     if group == g]} for g in sorted(set(groups))]
    else:
        remainders = draw(st.lists(st.integers(0, 3), min_size=1, max_size=4, unique=True))
        partitions = [{"name": f"hash_{r}", "modulus": 4, "remainder": r} for r in sorted(remainders)]
    if method != "hash" and draw(st.booleans()):
        partitions.append({"name": f"{method}_rest", "default": True})
    for partition in partitions:  # its own index, beyond the parent's
        if draw(st.booleans()):
            partition["indexes"] = [{"name": f"{partition['name']}_own",
                                     "columns": [draw(st.sampled_from(["kind", "lower(kind)", "at DESC"]))]}]
    key = {"range": "at", "list": "kind", "hash": "at"}[method]
    return {"name": f"events_{method}", "columns": [{"name": "at", "type": "date"}, {"name": "kind", "type": "text"}],
            "partition_by": {"method": method, "columns": [key]}, "partitions": partitions,
            "indexes": [{"name": f"events_{method}_kind", "columns": ["kind"]}] if draw(st.booleans()) else []}


ATOMS = ["n > 0", "n < 100", "label = current_user", "label IN ('a', 'b')", "n IS NOT NULL",
         "lower(label) LIKE 'a%'", "n BETWEEN 1 AND 9", "label <> ''"]


def policy_expression() -> st.SearchStrategy[str]:
    """Small boolean expressions over the table's columns, nested up to two levels."""
    return st.recursive(st.sampled_from(ATOMS), lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["AND", "OR"]), inner).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
        inner.map(lambda e: f"NOT ({e})")), max_leaves=3)


@st.composite
def rich_set(draw) -> list[model.Table]:
    names = draw(st.lists(st.sampled_from(["r0", "r1"]), min_size=1, max_size=2, unique=True))
    specs = [draw(rich_table(n)) for n in sorted(names)]
    for method in draw(st.lists(st.sampled_from(["range", "list", "hash"]), max_size=2, unique=True)):
        specs.append(draw(partitioned(method)))
    return [model.Table.model_validate(t) for t in specs]


# Two databases, three applies and two dumps per example: a few examples per run keep it cheap,
# and the database of examples carries the failures found to the next run.
@settings(SETTINGS, max_examples=5)
@given(current=rich_set(), desired=rich_set())
def test_export_of_desired_applied_onto_current_replans_empty_and_dumps_alike(pg, current, desired):
    with _fresh(pg, pg.dbname + "_d") as source, _fresh(pg, pg.dbname + "_c") as target:
        converge(source, desired)
        exported = tables(yaml.safe_dump(exported_tables(source)))
        converge(target, current)
        converge(target, exported, prune=["public"])
        assert schema_dump(pg, pg.dbname + "_d") == schema_dump(pg, pg.dbname + "_c")
