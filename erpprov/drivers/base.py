"""The one small interface every server driver implements (docs/design.md, decision 9)."""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from erpprov.core.actions import Action
from erpprov.core.address import Address
from erpprov.core.target import Target
from erpprov.drivers.clients import run_client, start_client

Progress = Callable[[str], None]  # receives short human-readable progress lines

DEFAULT_DATA_DIR = "dev-environment/volumes/postgres"  # data must outlive a container recreate


def resolve_data_dir(target: Target, configured: str | None) -> Path:
    """The absolute host directory for PGDATA: ``configured`` (or the default) with ``~`` expanded,
    relative to the project directory, resolved. The one rule for every driver."""
    path = Path(configured or DEFAULT_DATA_DIR).expanduser()
    if not path.is_absolute():
        path = target.project_dir / path
    return path.resolve()


@dataclass
class DriverStatus:
    driver: str
    exists: bool
    running: bool
    healthy: bool
    detail: str = ""
    facts: dict[str, str] = field(default_factory=dict)


class Driver(ABC):
    name: str

    def __init__(self, target: Target):
        self.target = target

    @property
    def address(self) -> Address | None:
        """The plan address of the server this driver runs (None when it runs none)."""
        container = self.target.play.container
        return Address("container", container.name) if container else None

    @abstractmethod
    def plan(self) -> list[Action]:
        """Container or cluster actions needed before the SQL side can be reconciled."""

    @abstractmethod
    def ensure(self, progress: Progress) -> None:
        """Make the server exist, run and accept connections; idempotent."""

    @abstractmethod
    def status(self) -> DriverStatus: ...

    @abstractmethod
    def logs(self, tail: int, follow: bool) -> Iterator[str]: ...

    def exec(self, argv: list[str], *, interactive: bool = False) -> int:
        """Run a PostgreSQL client program (psql, pg_dump, ...) against the server.

        By default the local client programs, connected through the target's connection settings."""
        return run_client(self.target, argv)

    def client_process(self, argv: list[str]) -> subprocess.Popen[bytes]:
        """Start a PostgreSQL client program (pg_dump, psql, pg_restore) against the server with
        stdin, stdout and stderr as binary pipes, so backup and restore can stream any size through
        it. Connection settings travel in the environment, never in argv.

        By default the local client programs, as `exec`."""
        return start_client(self.target, argv)

    @abstractmethod
    def destroy(self, volumes: bool, progress: Progress) -> None: ...
