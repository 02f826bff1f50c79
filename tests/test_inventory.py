from pathlib import Path

import pytest

from erpprov.errors import ErpprovError
from erpprov.load.inventory import build_inventory
from erpprov.load.yamlsrc import parse_yaml

INVENTORY = """
all:
  vars: {level: all, only_all: 1}
  hosts:
    bastion: {}
  children:
    dev:
      vars: {level: dev, only_dev: 1}
      hosts:
        laptop: {level: host}
        ci: {}
      children:
        dev_eu:
          vars: {level: dev_eu}
          hosts:
            berlin: {}
    staging:
      vars: {level: staging}
      hosts:
        ci: {}
        stage1: {}
"""


@pytest.fixture
def inv():
    return build_inventory(parse_yaml(INVENTORY, "inventory.yaml"), Path("inventory.yaml"))


def test_host_vars_beat_group_vars_which_beat_all(inv):
    assert inv.variables("laptop")["level"] == "host"
    assert inv.variables("bastion")["level"] == "all"
    assert inv.variables("stage1") == {"level": "staging", "only_all": 1}


def test_child_group_beats_parent_group(inv):
    merged = inv.variables("berlin")
    assert merged["level"] == "dev_eu"
    assert merged["only_dev"] == 1 and merged["only_all"] == 1


def test_hosts_in_order_of_appearance(inv):
    assert inv.hosts == ["bastion", "laptop", "ci", "berlin", "stage1"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("all", ["bastion", "laptop", "ci", "berlin", "stage1"]),
        ("*", ["bastion", "laptop", "ci", "berlin", "stage1"]),
        ("dev", ["laptop", "ci", "berlin"]),
        ("dev_eu", ["berlin"]),
        ("laptop", ["laptop"]),
        ("dev:staging", ["laptop", "ci", "berlin", "stage1"]),
        ("dev:!dev_eu", ["laptop", "ci"]),
        ("dev:&staging", ["ci"]),
        ("all:!dev", ["bastion", "stage1"]),
        ("b*", ["bastion", "berlin"]),
        ("laptop,stage1", ["laptop", "stage1"]),
    ],
)
def test_host_patterns(inv, pattern, expected):
    assert inv.match(pattern) == expected


def test_unknown_group_suggests_the_closest_name(inv):
    with pytest.raises(ErpprovError) as err:
        inv.match("stagin")
    assert "stagin" in err.value.message
    assert "staging" in err.value.hint


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("all:\n  host:\n    a: {}\n", 2, "unknown key 'host'"),
        ("all:\n  hosts: [a, b]\n", 2, "mapping of host names"),
        ("all:\n  vars: [1]\n", 2, "vars of group"),
        ("- a\n- b\n", 1, "mapping of groups"),
        ("all:\n  children:\n    a:\n      children:\n        a: {}\n", 5, "its own descendant"),
    ],
)
def test_inventory_errors_point_at_the_line(text, line, words):
    with pytest.raises(ErpprovError) as err:
        build_inventory(parse_yaml(text, "inv.yaml"), Path("inv.yaml"))
    assert words in err.value.message
    assert err.value.location.line == line
