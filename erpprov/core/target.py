"""The unit of work of every stage: one play on one host."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from erpprov.core.model import Connection, Play


@dataclass(frozen=True)
class Target:
    """One play to reconcile on one host."""

    host: str
    play: Play
    connection: Connection
    project_dir: Path
    variables: Mapping[str, Any]  # rendered lazily: templates may use any of them
    secrets: frozenset[str] = frozenset()  # play values rendered from a secret: never shown (taint.py)

    @property
    def main_database(self) -> str | None:
        """The play's first database, the one the team's data lives in: what psql, backup,
        restore and status work on unless told otherwise."""
        return self.play.databases[0].name if self.play.databases else None
