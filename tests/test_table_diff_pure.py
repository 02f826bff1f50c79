"""The table diff is pure: these tests build both states by hand and need no server.

Each test pins the exact actions (op, address, phase, hazards), in plan order: the executor runs
them in that order, so an action in the wrong phase, or before what it depends on, is a failure
the server would only report at apply time.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from erpprov.core.actions import Action, Hazard, Op, Phase
from erpprov.core.tables import (
    FOREIGN_KEY,
    PRIMARY_KEY,
    UNIQUE,
    ColumnState,
    ConstraintState,
    IndexKey,
    IndexState,
    PartitionState,
    PolicyState,
    TablesState,
    TableState,
)
from erpprov.diff.tables import diff_tables

DB, SCHEMA = "erp", "public"
ADDING_A_KEY = {Hazard.VALIDATES_DATA, Hazard.LOCKS_TABLE}  # to a table with rows


# --- building states tersely ----------------------------------------------------------------------


def col(name: str, type_: str = "integer", *, not_null: bool = False, renamed_from: str | None = None) -> ColumnState:
    return ColumnState(name, type_, not_null, renamed_from=renamed_from)


def key(table: str, *columns: str, kind: str = PRIMARY_KEY) -> ConstraintState:
    """An unnamed key, under the name PostgreSQL gives it."""
    suffix = "pkey" if kind == PRIMARY_KEY else "_".join(columns) + "_key"
    return ConstraintState(f"{table}_{suffix}", kind, columns, declared_name=False)


def fk(table: str, column: str, ref_table: str, ref_column: str = "id") -> ConstraintState:
    return ConstraintState(f"{table}_{column}_fkey", FOREIGN_KEY, (column,), ref_schema=SCHEMA,
                           ref_table=ref_table, ref_columns=(ref_column,), declared_name=False)


def table(name: str, *columns: ColumnState, constraints: tuple[ConstraintState, ...] = (),
          indexes: tuple[IndexState, ...] = (), rows: bool = True, renamed_from: str | None = None) -> TableState:
    return TableState(SCHEMA, name, columns, constraints, indexes, has_rows=rows, renamed_from=renamed_from)


def tables(*items: TableState) -> TablesState:
    return TablesState({t.key: t for t in items})


def plan(desired: TablesState, live: TablesState, *, prune: tuple[str, ...] = ()) -> list[Action]:
    return diff_tables(desired, live, database=DB, prune_schemas=prune).actions


def summary(actions: list[Action]) -> list[tuple[Op, str, Phase, set[Hazard]]]:
    """What each test pins; hazards as a set, since their order carries no meaning."""
    return [(a.op, a.address, a.phase, set(a.hazards)) for a in actions]


def address(kind: str, *parts: str) -> str:
    return ".".join((kind, DB, SCHEMA, *parts))


# --- renames -------------------------------------------------------------------------------------


def test_a_renamed_table_is_one_update_that_keeps_its_key_and_rows():
    # The desired key is unnamed (its predicted name follows the new table name): it must find
    # the live `customer_pkey` by shape, or the rename would come with a key replacement.
    live = tables(table("customer", col("id", not_null=True), col("name", "text"),
                        constraints=(key("customer", "id"),)))
    desired = tables(table("customers", col("id", not_null=True), col("name", "text"),
                           constraints=(key("customers", "id"),), renamed_from="customer"))
    actions = plan(desired, live)
    assert summary(actions) == [(Op.UPDATE, address("table", "customers"), Phase.TABLE, set())]
    assert [s.text for s in actions[0].sql] == ['ALTER TABLE "public"."customer" RENAME TO "customers"']
    assert diff_tables(desired, live, database=DB).unmanaged == []


def test_a_renamed_column_is_one_update_and_its_index_and_foreign_keys_follow():
    # The index on the old name and a foreign key elsewhere that references it read as if
    # renamed already: nothing is rebuilt, nothing dropped.
    index = IndexState("item_sku_idx", False, "btree", (IndexKey("sku", None),), declared_name=False)
    live = tables(
        table("item", col("id", not_null=True), col("sku", "text", not_null=True),
              constraints=(key("item", "id"), key("item", "sku", kind=UNIQUE)),
              indexes=(index,)),
        table("line", col("item_sku", "text"), constraints=(fk("line", "item_sku", "item", "sku"),)))
    desired = tables(
        table("item", col("id", not_null=True), col("code", "text", not_null=True, renamed_from="sku"),
              constraints=(key("item", "id"), key("item", "code", kind=UNIQUE)),
              indexes=(IndexState("item_code_idx", False, "btree", (IndexKey("code", None),), declared_name=False),)),
        table("line", col("item_sku", "text"), constraints=(fk("line", "item_sku", "item", "code"),)))
    actions = plan(desired, live)
    assert summary(actions) == [(Op.UPDATE, address("column", "item", "code"), Phase.TABLE, set())]
    assert [s.text for s in actions[0].sql] == ['ALTER TABLE "public"."item" RENAME COLUMN "sku" TO "code"']


def test_an_undeclared_rename_is_a_new_table_and_the_old_one_is_left_alone():
    """Renames are declared, never guessed: without `renamed_from` the data is not carried over."""
    live = tables(table("customer", col("id")))
    desired = tables(table("customers", col("id")))
    result = diff_tables(desired, live, database=DB)
    assert summary(result.actions) == [(Op.CREATE, address("table", "customers"), Phase.TABLE, set())]
    assert result.unmanaged == [address("table", "customer")]


# --- foreign-key cycles ----------------------------------------------------------------------------


def _cycle(*, with_keys: bool, rows: bool = True) -> TablesState:
    """`author` and `book` reference each other."""
    def fks(*constraints: ConstraintState) -> tuple[ConstraintState, ...]:
        return constraints if with_keys else ()
    return tables(
        table("author", col("id", not_null=True), col("best_book_id"),
              constraints=(key("author", "id"), *fks(fk("author", "best_book_id", "book"))), rows=rows),
        table("book", col("id", not_null=True), col("author_id"),
              constraints=(key("book", "id"), *fks(fk("book", "author_id", "author"))), rows=rows))


def test_tables_that_reference_each_other_are_created_before_either_foreign_key():
    actions = plan(_cycle(with_keys=True), tables())
    assert summary(actions) == [
        (Op.CREATE, address("table", "author"), Phase.TABLE, set()),
        (Op.CREATE, address("table", "book"), Phase.TABLE, set()),
        (Op.CREATE, address("constraint", "author", "author_best_book_id_fkey"), Phase.FOREIGN_KEY, set()),
        (Op.CREATE, address("constraint", "book", "book_author_id_fkey"), Phase.FOREIGN_KEY, set()),
    ]
    assert all("REFERENCES" not in s.text for a in actions[:2] for s in a.sql)


def test_a_cycle_added_to_tables_with_rows_is_checked_against_them():
    actions = plan(_cycle(with_keys=True), _cycle(with_keys=False))
    assert summary(actions) == [
        (Op.CREATE, address("constraint", "author", "author_best_book_id_fkey"), Phase.FOREIGN_KEY,
         {Hazard.VALIDATES_DATA}),
        (Op.CREATE, address("constraint", "book", "book_author_id_fkey"), Phase.FOREIGN_KEY,
         {Hazard.VALIDATES_DATA}),
    ]


def test_a_pruned_cycle_loses_its_foreign_keys_before_either_table():
    actions = plan(tables(), _cycle(with_keys=True), prune=(SCHEMA,))
    assert summary(actions) == [
        (Op.DELETE, address("constraint", "author", "author_best_book_id_fkey"), Phase.DROP_CONSTRAINT, set()),
        (Op.DELETE, address("constraint", "book", "book_author_id_fkey"), Phase.DROP_CONSTRAINT, set()),
        (Op.DELETE, address("table", "author"), Phase.DROP_TABLE, {Hazard.DELETES_DATA}),
        (Op.DELETE, address("table", "book"), Phase.DROP_TABLE, {Hazard.DELETES_DATA}),
    ]


# --- retypes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "rows", "hazards"), [
    # narrowing: longer values fail the cast or are cut
    ("character varying(50)", "character varying(20)", True,
     {Hazard.DELETES_DATA, Hazard.REWRITES_TABLE, Hazard.VALIDATES_DATA, Hazard.LOCKS_TABLE}),
    # widening a length limit keeps the bytes: only the lock
    ("character varying(20)", "character varying(50)", True, {Hazard.LOCKS_TABLE}),
    ("integer", "bigint", True, {Hazard.REWRITES_TABLE, Hazard.LOCKS_TABLE}),
    # nothing to rewrite, lock or check on a table without rows
    ("integer", "bigint", False, set()),
])
def test_a_type_change_carries_the_hazards_of_the_cast(old: str, new: str, rows: bool, hazards: set[Hazard]):
    live = tables(table("item", col("id", not_null=True), col("qty", old), constraints=(key("item", "id"),),
                        rows=rows))
    desired = tables(table("item", col("id", not_null=True), col("qty", new), constraints=(key("item", "id"),)))
    actions = plan(desired, live)
    assert summary(actions) == [(Op.UPDATE, address("column", "item", "qty"), Phase.COLUMN, hazards)]
    [statement] = actions[0].sql
    assert statement.text == f'ALTER TABLE "public"."item" ALTER COLUMN "qty" TYPE {new} USING "qty"::{new}'
    assert actions[0].before == {"type": old} and actions[0].after == {"type": new}


def test_a_foreign_key_between_retyped_columns_is_dropped_before_the_type_change():
    """Both ends change type without the key checking them: it goes first and comes back last."""
    live = tables(table("item", col("id", not_null=True), constraints=(key("item", "id"),)),
                  table("line", col("item_id"), constraints=(fk("line", "item_id", "item"),)))
    desired = tables(table("item", col("id", "bigint", not_null=True), constraints=(key("item", "id"),)),
                     table("line", col("item_id", "bigint"), constraints=(fk("line", "item_id", "item"),)))
    rewrite = {Hazard.REWRITES_TABLE, Hazard.LOCKS_TABLE}
    assert summary(plan(desired, live)) == [
        (Op.DELETE, address("constraint", "line", "line_item_id_fkey"), Phase.TABLE, set()),
        (Op.UPDATE, address("column", "item", "id"), Phase.COLUMN, rewrite),
        (Op.UPDATE, address("column", "line", "item_id"), Phase.COLUMN, rewrite),
        (Op.CREATE, address("constraint", "line", "line_item_id_fkey"), Phase.FOREIGN_KEY, {Hazard.VALIDATES_DATA}),
    ]


# --- broken keys -----------------------------------------------------------------------------------


def _parent_and_child(*parent_keys: ConstraintState, child_fk: ConstraintState | None = None) -> TablesState:
    return tables(
        table("parent", col("id", not_null=True), col("code", "text", not_null=True), constraints=parent_keys),
        table("child", col("parent_id"), col("parent_code", "text"),
              constraints=(child_fk,) if child_fk else ()))


TO_ID, TO_CODE = fk("child", "parent_id", "parent"), fk("child", "parent_code", "parent", "code")


def test_replacing_a_referenced_primary_key_drops_and_re_adds_the_foreign_key_around_it():
    # The primary key moves from `id` to `code`, and `id` stays a key through a new unique
    # constraint: the foreign key on it must be gone before the primary key is replaced, and can
    # only come back once the unique constraint exists.
    live = _parent_and_child(key("parent", "id"), child_fk=TO_ID)
    desired = _parent_and_child(key("parent", "code"), key("parent", "id", kind=UNIQUE), child_fk=TO_ID)
    assert summary(plan(desired, live)) == [
        (Op.DELETE, address("constraint", "child", "child_parent_id_fkey"), Phase.CONSTRAINT, set()),
        (Op.REPLACE, address("constraint", "parent", "parent_pkey"), Phase.CONSTRAINT, ADDING_A_KEY),
        (Op.CREATE, address("constraint", "parent", "parent_id_key"), Phase.CONSTRAINT, ADDING_A_KEY),
        (Op.CREATE, address("constraint", "child", "child_parent_id_fkey"), Phase.FOREIGN_KEY,
         {Hazard.VALIDATES_DATA}),
    ]


def test_a_foreign_key_that_goes_is_dropped_before_the_key_it_references():
    # With the other drops, at the end, it would come after the unique constraint, and
    # PostgreSQL refuses to drop a key a foreign key still depends on.
    live = _parent_and_child(key("parent", "id"), key("parent", "code", kind=UNIQUE), child_fk=TO_CODE)
    desired = _parent_and_child(key("parent", "id"))
    assert summary(plan(desired, live)) == [
        (Op.DELETE, address("constraint", "child", "child_parent_code_fkey"), Phase.CONSTRAINT, set()),
        (Op.DELETE, address("constraint", "parent", "parent_code_key"), Phase.CONSTRAINT, set()),
    ]


def test_a_foreign_key_to_an_unchanged_key_is_dropped_with_the_other_drops():
    live = _parent_and_child(key("parent", "id"), child_fk=TO_ID)
    desired = _parent_and_child(key("parent", "id"))
    assert summary(plan(desired, live)) == [
        (Op.DELETE, address("constraint", "child", "child_parent_id_fkey"), Phase.DROP_CONSTRAINT, set()),
    ]


# --- row-level security and partitions ------------------------------------------------------------


def test_policies_go_in_their_phase_and_what_opens_rows_up_is_a_hazard():
    keep = PolicyState("keep", "select", ("PUBLIC",), using="(n > 0)")
    gone = PolicyState("gone", "all", ("clerk",), using="true", permissive=False)
    live = replace(table("t", col("n")), row_security=(True, True), policies=(gone, keep))
    desired = replace(table("t", col("n")), row_security=(False, True),
                      policies=(replace(keep, using="(n > 1)"), PolicyState("new", "insert", ("PUBLIC",),
                                                                               with_check="(n < 9)")))
    assert summary(plan(tables(desired), tables(live))) == [
        (Op.DELETE, address("policy", "t", "gone"), Phase.POLICY, {Hazard.WIDENS_ACCESS}),
        (Op.UPDATE, address("policy", "t", "keep"), Phase.POLICY, set()),
        (Op.CREATE, address("policy", "t", "new"), Phase.POLICY, set()),
        (Op.UPDATE, address("table", "t"), Phase.POLICY, {Hazard.WIDENS_ACCESS}),
    ]


def test_partitions_are_created_after_their_parent_and_a_dropped_one_deletes_data():
    def part(name: str, bound: str) -> PartitionState:
        return PartitionState(SCHEMA, name, bound)

    old = part("p_old", "FOR VALUES FROM (MINVALUE) TO (10)")
    live = replace(table("p", col("k")), partition_by="RANGE (k)",
                   partitions=(old, part("p_1", "FOR VALUES FROM (10) TO (20)")))
    desired = replace(live, partitions=(part("p_1", "FOR VALUES FROM (10) TO (30)"), part("p_2", "DEFAULT")))
    # bounds never overlap on the way: what goes or moves is out before anything comes in
    assert summary(plan(tables(desired), tables(live))) == [
        (Op.UPDATE, address("table", "p_1"), Phase.TABLE, set()),
        (Op.DELETE, address("table", "p_old"), Phase.TABLE, {Hazard.DELETES_DATA}),
        (Op.UPDATE, address("table", "p_1"), Phase.TABLE, {Hazard.VALIDATES_DATA, Hazard.LOCKS_TABLE}),
        (Op.CREATE, address("table", "p_2"), Phase.TABLE, set()),
    ]
    # a new partitioned table: its partitions follow it in the same phase
    created = plan(tables(desired), tables())
    assert [(a.op, a.address) for a in created] == [(Op.CREATE, address("table", "p")),
                                                     (Op.CREATE, address("table", "p_1")),
                                                     (Op.CREATE, address("table", "p_2"))]
