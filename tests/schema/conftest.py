"""Fixtures of the schema-object tests (the session cluster and `pg` come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest


@pytest.fixture
def conn(pg) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test's fresh database."""
    with pg.connect() as connection:
        yield connection
