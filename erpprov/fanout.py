"""Run plan or apply over every target of a project, several hosts at a time, each host's
failure isolated from the others."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from erpprov.core.target import Target
from erpprov.errors import ErpprovError
from erpprov.load.project import Project
from erpprov.load.taint import hide_secrets

T = TypeVar("T")


@dataclass
class Outcome(Generic[T]):
    target: Target
    value: T | None = None
    error: ErpprovError | None = None


def for_each_target(project: Project, work: Callable[[Target], T], forks: int = 5) -> list[Outcome[T]]:
    """Targets of one host run in order (plays build on each other); hosts run in parallel."""
    by_host: dict[str, list[Target]] = {}
    for target in project.targets:
        by_host.setdefault(target.host, []).append(target)

    def run_host(targets: list[Target]) -> list[Outcome[T]]:
        outcomes: list[Outcome[T]] = []
        for target in targets:
            try:
                outcomes.append(Outcome(target, value=work(target)))
            except ErpprovError as exc:  # every host's error is shown: without the secrets a plan hides
                outcomes.append(Outcome(target, error=hide_secrets(exc, target)))
                break  # later plays on a failed host would build on a state we did not reach
        return outcomes

    with ThreadPoolExecutor(max_workers=max(1, forks)) as pool:
        results = list(pool.map(run_host, by_host.values()))
    return [outcome for host in results for outcome in host]


class Printer:
    """Serializes output lines from parallel hosts."""

    def __init__(self, echo: Callable[[str], None]):
        self._echo = echo
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self._echo(line)
