"""Addresses are structured (kind + name parts); their text form never lets two objects collide."""

from __future__ import annotations

import copy
import pickle

import pytest

from erpprov.core.address import Address
from tests.helpers import load_targets, plan_of


def test_a_dot_in_a_name_cannot_make_two_addresses_one():
    first, second = Address("table", "erp", "a.b", "c"), Address("table", "erp", "a", "b.c")
    assert first != second and str(first) == 'table.erp."a.b".c' and str(second) == "table.erp.a.b.c"
    assert (first.kind, first.parts) == ("table", ("erp", "a.b", "c"))
    assert Address("column", "erp", 'we"ird', "", "c") == 'column.erp."we""ird"."".c'
    assert Address("table", "erp", "public", "users") == "table.erp.public.users"  # plain names read as before
    assert Address("file", "out/app.env") == "file.out/app.env" and Address("role", 'we"ird') == 'role.we"ird'
    assert first.name == 'erp."a.b".c'


@pytest.mark.parametrize("clone", [copy.copy, copy.deepcopy, lambda a: pickle.loads(pickle.dumps(a))])
def test_copies_keep_the_structure(clone):
    address = Address("column", "erp", "a.b", "t", "c")
    again = clone(address)
    assert (again, again.kind, again.parts) == (address, "column", ("erp", "a.b", "t", "c"))


def test_tables_whose_dotted_names_would_have_collided_are_two_actions(tmp_path, pg):
    playbook = f"""
    - name: p
      hosts: all
      databases:
        - name: {pg.dbname}
          schemas: [{{name: "a.b"}}, {{name: a}}]
          tables:
            - {{name: c, schema: "a.b", columns: [{{name: id, type: int}}]}}
            - {{name: "b.c", schema: a, columns: [{{name: id, type: int}}]}}
    """
    tables = [address for address, _ in plan_of(load_targets(tmp_path, pg, playbook)) if address.kind == "table"]
    assert sorted(tables) == [f'table.{pg.dbname}."a.b".c', f"table.{pg.dbname}.a.b.c"]
