"""A server managed elsewhere (staging, a managed service): only the SQL side is erpprov's."""

from __future__ import annotations

from collections.abc import Iterator

from erpprov.core.actions import Action
from erpprov.core.address import Address
from erpprov.drivers.base import Driver, DriverStatus, Progress
from erpprov.errors import ErpprovError


class ExternalDriver(Driver):
    name = "external"

    @property
    def address(self) -> Address | None:
        return None

    def plan(self) -> list[Action]:
        return []

    def ensure(self, progress: Progress) -> None:
        return None

    def status(self) -> DriverStatus:
        return DriverStatus(self.name, exists=True, running=True, healthy=True, detail="managed elsewhere")

    def logs(self, tail: int, follow: bool) -> Iterator[str]:
        raise ErpprovError("the external driver has no logs to show", hint="read them where the server is managed")

    def destroy(self, volumes: bool, progress: Progress) -> None:
        raise ErpprovError(f"host {self.target.host} uses the external driver; erpprov does not destroy it")
