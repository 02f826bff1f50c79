"""The embedded default: a cluster in the play's data_dir run with initdb/pg_ctl."""

from __future__ import annotations

import time
from collections.abc import Iterator

from erpprov.core.actions import Action, Op, Phase
from erpprov.core.address import Address
from erpprov.core.model import ComposeService
from erpprov.core.target import Target
from erpprov.drivers.base import Driver, DriverStatus, Progress, resolve_data_dir
from erpprov.drivers.embedded import LocalCluster
from erpprov.errors import ErpprovError


class LocalDriver(Driver):
    name = "local"

    def __init__(self, target: Target):
        super().__init__(target)
        container = target.play.container
        if isinstance(container, ComposeService):
            raise ErpprovError(f"play {target.play.name!r} runs its server from a Compose file, which the local "
                               "driver cannot", hint="use `driver: docker` (or auto) for this host")
        data_dir = resolve_data_dir(target, container.data_dir if container else None)
        conn = target.connection
        self.cluster = LocalCluster(data_dir, conn.pg_port, host=conn.pg_host, superuser=conn.pg_user)

    @property
    def address(self) -> Address:
        container = self.target.play.container
        return Address("cluster", container.name if container else self.target.host)

    def plan(self) -> list[Action]:
        where = {"data_dir": str(self.cluster.data_dir), "port": self.cluster.port, "driver": self.name}
        if not self.cluster.initialized:
            return [Action(self.address, Op.CREATE, Phase.CONTAINER, after=where,
                           note="initdb, then start an embedded PostgreSQL")]
        if not self.cluster.ours:
            raise ErpprovError(
                f"{self.cluster.data_dir} holds a PostgreSQL cluster that erpprov did not create",
                hint="erpprov manages only clusters it created; choose another data_dir",
            )
        if not self.cluster.running():
            return [Action(self.address, Op.UPDATE, Phase.CONTAINER, before={"state": "stopped"},
                           after={"state": "running"}, note="start the embedded PostgreSQL")]
        return []

    def ensure(self, progress: Progress) -> None:
        if not self.cluster.initialized:
            password = self.target.connection.pg_password
            if password is None:
                raise ErpprovError(f"host {self.target.host}: pg_password is needed to create the local cluster",
                                   hint="set pg_password in the inventory (e.g. from env.POSTGRES_PASSWORD)")
            progress(f"creating a PostgreSQL cluster in {self.cluster.data_dir}")
            self.cluster.init(password.get_secret_value())
        if not self.cluster.running():
            progress(f"starting PostgreSQL on {self.cluster.host}:{self.cluster.port}")
            started = time.monotonic()
            wait = self.target.play.container.wait_timeout if self.target.play.container else 60.0
            self.cluster.start(timeout=wait)
            progress(f"PostgreSQL accepting connections after {time.monotonic() - started:.1f}s")

    def status(self) -> DriverStatus:
        exists = self.cluster.initialized
        running = exists and self.cluster.running()
        return DriverStatus(self.name, exists=exists, running=running, healthy=running,
                            detail=str(self.cluster.data_dir),
                            facts={"data_dir": str(self.cluster.data_dir),
                                   "major_version": self.cluster.major_version or "-"})

    def logs(self, tail: int, follow: bool) -> Iterator[str]:
        log = self.cluster.log_file
        if not log.exists():
            raise ErpprovError(f"no server log yet at {log}", hint="run `erpprov apply` first")
        yield from log.read_text(errors="replace").splitlines()[-tail:]
        if follow:
            with log.open(errors="replace") as handle:
                handle.seek(0, 2)
                while True:
                    line = handle.readline()
                    if line:
                        yield line.rstrip("\n")
                    else:
                        time.sleep(0.5)

    def destroy(self, volumes: bool, progress: Progress) -> None:
        if not self.cluster.initialized:
            progress("nothing to destroy")
            return
        if not self.cluster.ours:
            raise ErpprovError(f"{self.cluster.data_dir} holds a cluster erpprov did not create; not touching it")
        progress("stopping PostgreSQL")
        self.cluster.stop()
        if volumes:
            progress(f"deleting {self.cluster.data_dir}")
            self.cluster.destroy()
