"""Seed rows on the fast path of apply: the re-plan after it reads a digest of each table it seeded
instead of copying the rows again, and still catches rows that did not land as declared; keys are
proven unique by an index, or by grouping them where no index can be built."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest

from erpprov.core.actions import Hazard
from erpprov.errors import ErpprovError
from erpprov.plan.build import plan_target
from tests.helpers import apply_all, load_targets, plan_of

PLAY = """
- name: seed
  hosts: dev
  databases:
    - name: %s
%s"""


@dataclass
class Copies:
    count: int = 0


@contextmanager
def counted_copies(monkeypatch: pytest.MonkeyPatch) -> Iterator[Copies]:
    """COPY statements sent while the block runs (every COPY goes through Cursor.copy)."""
    seen = Copies()
    copy = psycopg.Cursor.copy

    def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.count += 1
        return copy(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(psycopg.Cursor, "copy", counted)
        yield seen


TABLE = """
      tables:
        - name: t
          columns:
            - {name: id, type: integer, primary_key: true}
            - {name: name, type: text}
            - {name: amount, type: numeric}
          data:
            mode: %s
            rows:
              - {id: 1, name: a, amount: "1.50"}
              - {id: 2, name: b, amount: "2"}
"""


def test_apply_copies_the_rows_once_for_the_plan_and_once_into_the_table(tmp_path, pg, monkeypatch):
    targets = load_targets(tmp_path, pg, PLAY % (pg.dbname, TABLE % "exact"))
    with counted_copies(monkeypatch) as copies:
        apply_all(targets)
    assert copies.count == 2, "the re-plan after apply compares a digest, it does not copy the rows again"
    with pg.connect() as conn:
        assert conn.execute("SELECT id, name, amount::text FROM t ORDER BY id").fetchall() == [
            (1, "a", "1.50"), (2, "b", "2")]
    # a live row changed behind erpprov's back: the next apply's re-plan sees the table right again
    with pg.connect() as conn:
        conn.execute("UPDATE t SET name = 'changed' WHERE id = 2")
        conn.execute("INSERT INTO t VALUES (3, 'extra', 0)")
    assert sorted(plan_of(targets)) == [(f"data.{pg.dbname}.public.t", "delete"),
                                        (f"data.{pg.dbname}.public.t", "update")]
    apply_all(targets, allow=frozenset({Hazard.DELETES_DATA}))
    assert plan_of(targets) == []


TRIGGERED = """
      functions:
        - {name: meddle, returns: trigger, language: plpgsql, body: "%s"}
      triggers:
        - {name: t_meddle, table: t, timing: before, events: [insert], function: meddle}
"""


@pytest.mark.parametrize(("mode", "body"), [
    ("upsert", "BEGIN NEW.name = upper(NEW.name); RETURN NEW; END"),  # rows land changed
    ("insert", "BEGIN RETURN NULL; END"),  # rows do not land at all
])
def test_rows_a_trigger_changes_or_drops_are_still_a_failed_convergence(tmp_path, pg, mode, body):
    targets = load_targets(tmp_path, pg, PLAY % (pg.dbname, TABLE % mode + TRIGGERED % body))
    with pytest.raises(ErpprovError, match=rf"did not converge: .*data\.{pg.dbname}\.public\.t"):
        apply_all(targets)


def test_keys_of_a_type_without_a_btree_class_are_proven_by_grouping(tmp_path, pg):
    table = """
      tables:
        - name: x
          columns:
            - {name: k, type: xid}
            - {name: v, type: text}
          data:
            key: [k]
            rows:
              - {k: "7", v: a}
              - {k: "8", v: b}
              - {k: "7", v: c}
"""
    targets = load_targets(tmp_path, pg, PLAY % (pg.dbname, table))
    with pytest.raises(ErpprovError, match="row 3 repeats the key of an earlier row") as repeated:
        plan_target(targets[0])
    assert repeated.value.location is not None and repeated.value.location.line == 17  # the third row
    targets = load_targets(tmp_path, pg, PLAY % (pg.dbname, table.replace('"7", v: c', '"9", v: c')))
    apply_all(targets)
    assert plan_of(targets) == []


def test_a_new_table_shows_the_same_counts_and_first_rows_as_an_empty_one(tmp_path, pg):
    rows = "\n".join(f'              - {{id: {i}, name: "n{i}", amount: "{i}.0"}}' for i in (5, 3, 9, 1, 7))
    table = (TABLE % "insert").split("            rows:")[0] + "            rows:\n" + rows + "\n"
    targets = load_targets(tmp_path, pg, PLAY % (pg.dbname, table))
    new = [a for a in plan_target(targets[0]).actions if a.address.kind == "data"]
    with pg.connect() as conn:
        conn.execute("CREATE TABLE t (id integer PRIMARY KEY, name text, amount numeric)")
    empty = plan_target(targets[0]).actions
    assert [(a.after, a.note) for a in new] == [(a.after, a.note) for a in empty]
    assert new[0].after is not None and new[0].after["insert"] == 5
    assert [r["id"] for r in new[0].after["first"]["insert"]] == ["5", "3", "9"]  # as written, not by key


def test_rows_that_cannot_be_hashed_are_compared_in_full_after_apply(tmp_path, pg, monkeypatch):
    table = (TABLE % "upsert").replace("type: numeric}", "type: money}")  # money has no hash function
    targets = load_targets(tmp_path, pg, PLAY % (pg.dbname, table))
    with counted_copies(monkeypatch) as copies:
        apply_all(targets)
    assert copies.count == 3, "no digest: the re-plan copies the rows and compares them"
    assert plan_of(targets) == []
