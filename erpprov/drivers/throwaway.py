"""Throwaway clusters (`plan --offline`) that never outlive their run for long.

A normal end, an error or SIGTERM (turned into a clean exit by the CLI) stop the server and remove
its directory. SIGKILL leaves both behind (pg_ctl detaches the server from our process group), so
each directory names its owner, and the next throwaway cluster first reaps those whose owner died.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from erpprov.drivers.embedded import LocalCluster, free_port

PREFIX = "erpprov-offline-"
OWNER = "owner"  # "PID START" of the process that made the directory
_REAPING = "erpprov-reaping-"


@contextmanager
def throwaway_cluster(superuser: str) -> Iterator[tuple[LocalCluster, str]]:
    """A started, non-durable cluster and its superuser password; stopped and removed on exit."""
    reap_orphans()
    base = Path(tempfile.mkdtemp(prefix=PREFIX))
    try:
        (base / OWNER).write_text(_identity(os.getpid()) or "")
        os.chmod(base, 0o755)  # as root the server runs as another account that must reach its data dir
        password = secrets.token_urlsafe(16)
        cluster = LocalCluster(base / "data", free_port(), superuser=superuser)
        try:
            cluster.init(password, durable=False)
            cluster.start()
            yield cluster, password
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _identity(pid: int) -> str | None:
    """pid and start time: a pid reused by another process after ours died is not ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None if pid != os.getpid() else f"{pid} ?"
    return f"{pid} {stat.rsplit(')', 1)[1].split()[19]}"  # field 22, counted after the command name


def _owner_alive(owner: str) -> bool:
    try:
        pid = int(owner.split()[0])
    except (IndexError, ValueError):  # still being written by its owner
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another account's live process
        return True
    identity = _identity(pid)
    return identity is None or owner.split()[1:] in (["?"], identity.split()[1:])


def reap_orphans() -> list[Path]:
    """Stop the servers and remove the directories of throwaway clusters whose owner died."""
    reaped = []
    for base in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            owner = (base / OWNER).read_text()
        except OSError:  # being created right now, or not a directory of ours
            continue
        if _owner_alive(owner):
            continue
        claimed = base.with_name(f"{_REAPING}{os.getpid()}-{base.name}")
        try:
            os.rename(base, claimed)  # one reaper wins; a running server does not mind its directory moving
        except OSError:
            continue
        cluster = LocalCluster(claimed / "data", 0)
        try:
            if cluster.ours:
                cluster.stop()
        finally:
            shutil.rmtree(claimed, ignore_errors=True)
        reaped.append(base)
    return reaped
