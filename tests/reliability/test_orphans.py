"""`plan --offline` runs a throwaway server: a terminated run (SIGTERM, as CI sends on cancel) stops
it and removes its directory; after a killed run (SIGKILL) the next offline plan reaps them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from erpprov.drivers.embedded import LocalCluster
from erpprov.drivers.throwaway import PREFIX
from erpprov.errors import ErpprovError
from tests.helpers import erpprov, finish, reachable_tempdir, start_erpprov, write_project

ATTEMPTS = 5  # tries to catch a run while its server is up (the window is about a second)


@pytest.fixture
def temp_root() -> Iterator[Path]:
    """The TMPDIR of the runs: throwaway servers are looked for (and left) only here."""
    root = reachable_tempdir("erpprov-orphans-")
    try:
        yield root
    finally:  # whatever a failed test left: servers our runs started, then their directories
        for data in root.glob("*/data"):
            with contextlib.suppress(ErpprovError, OSError):  # cleanup goes on
                LocalCluster(data, 0).stop()
        shutil.rmtree(root, ignore_errors=True)


def _project(tmp_path: Path) -> Path:
    tables = [{"name": f"t{i}", "columns": [{"name": "id", "type": "bigint", "primary_key": True},
                                            {"name": "note", "type": "text"}]} for i in range(40)]
    play = [{"name": "offline", "hosts": "dev", "roles": [{"name": "orphan_app", "login": True}],
             "databases": [{"name": "orphans", "tables": tables}]}]
    return write_project(tmp_path, yaml.safe_dump(play))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def _caught(root: Path, temp_root: Path) -> tuple[subprocess.Popen[str], int]:
    """An offline plan frozen (SIGSTOP of its process group) while its server accepts connections,
    and the server's pid."""
    for _ in range(ATTEMPTS):
        proc = start_erpprov(root, "plan", "--offline", env={"TMPDIR": str(temp_root)})
        give_up = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < give_up:
            for pidfile in temp_root.glob(f"{PREFIX}*/data/postmaster.pid"):
                try:
                    lines = pidfile.read_text().splitlines()
                except OSError:
                    continue
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    os.killpg(proc.pid, signal.SIGSTOP)
                    if pidfile.exists():  # still up: caught before its run stopped it
                        return proc, int(lines[0])
                    os.killpg(proc.pid, signal.SIGCONT)
            time.sleep(0.01)
        finish(proc, 60)
    pytest.fail(f"no offline plan was caught with its server up in {ATTEMPTS} runs")


def _wait_gone(pid: int) -> bool:
    for _ in range(300):  # a hang guard, not a speed requirement
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_sigterm_stops_the_throwaway_server(tmp_path, temp_root):
    proc, postmaster = _caught(_project(tmp_path), temp_root)
    os.kill(proc.pid, signal.SIGTERM)  # erpprov itself, as a CI runner does
    os.killpg(proc.pid, signal.SIGCONT)
    run = finish(proc, 120)
    assert run.returncode == 128 + signal.SIGTERM, str(run)
    assert "Traceback" not in run.stderr
    assert _wait_gone(postmaster), "the throwaway server outlived the terminated run"
    assert not list(temp_root.glob(f"{PREFIX}*")), "its directory was left behind"


def test_after_sigkill_the_next_offline_plan_reaps_the_orphan(tmp_path, temp_root):
    root = _project(tmp_path)
    proc, postmaster = _caught(root, temp_root)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.communicate(timeout=30)
    assert _alive(postmaster)  # nothing can clean up after SIGKILL: the server is an orphan now
    [orphan] = list(temp_root.glob(f"{PREFIX}*"))
    run = erpprov(root, "plan", "--offline", env={"TMPDIR": str(temp_root)}, mem=None, timeout=120)
    assert run.returncode == 0, str(run)
    assert "table.orphans.public.t39" in run.stdout
    assert _wait_gone(postmaster), "the orphaned server still runs"
    assert not orphan.exists() and not list(temp_root.iterdir()), "the orphan's directory is still there"


def test_the_reaper_leaves_live_owners_alone(temp_root, monkeypatch):
    """A directory whose owner still runs (another offline plan, another host's thread) is never
    touched; one whose owner died is removed, also when its pid was reused since."""
    from erpprov.drivers.throwaway import OWNER, _identity, reap_orphans

    monkeypatch.setattr("tempfile.tempdir", str(temp_root))
    exited = subprocess.Popen(["true"])
    exited.wait()
    live, dead, reused, writing = (temp_root / f"{PREFIX}{name}" for name in ("live", "dead", "reused", "writing"))
    for directory in (live, dead, reused, writing):
        directory.mkdir()
    (live / OWNER).write_text(_identity(os.getpid()) or "")
    (dead / OWNER).write_text(f"{exited.pid} 1")
    (reused / OWNER).write_text(f"{os.getpid()} 1")  # our pid, but another start time
    (writing / OWNER).write_text("")
    assert sorted(reap_orphans()) == sorted([dead, reused])
    assert sorted(temp_root.iterdir()) == sorted([live, writing])
