"""The suite counts how many kinds of bad input it covers (tests/reliability/kinds.py)."""

from __future__ import annotations

from . import test_bad_input, test_hostile_sql, test_sql_fragments  # noqa: F401  (importing them registers their kinds)
from .kinds import BAD_INPUT_KINDS, COVERED

EXPECTED_KINDS = 23


def test_every_listed_kind_is_covered_and_counted():
    missing = sorted(set(BAD_INPUT_KINDS) - set(COVERED))
    assert not missing, f"kinds without a test: {missing}"
    assert len(BAD_INPUT_KINDS) == len(COVERED) == EXPECTED_KINDS, (
        f"{len(COVERED)} kinds covered; update EXPECTED_KINDS and README.md when adding one")


def test_readme_lists_every_kind():
    from pathlib import Path

    readme = (Path(__file__).parent / "README.md").read_text(encoding="utf-8")
    for kind in BAD_INPUT_KINDS:
        assert f"`{kind}`" in readme, f"README.md does not list {kind}"
