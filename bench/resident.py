"""The benchmark's own resident process (`erpprov resident start`, docs/performance.md): started in a
runtime directory of the benchmark's, so a resident of the user's never serves a measured run, and
stopped at the end. Runs measured "with the resident" get `env`; every other run of erpprov gets
ERPPROV_RESIDENT=off and starts as a process of its own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.measure import run


def alone() -> dict[str, str]:
    return {**os.environ, "ERPPROV_RESIDENT": "off"}


@contextmanager
def resident(python: str, workdir: Path) -> Iterator[dict[str, str]]:
    runtime = workdir / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "ERPPROV_RESIDENT": "on", "XDG_RUNTIME_DIR": str(runtime)}
    run([python, "-m", "erpprov", "resident", "start", "--idle", "120"], cwd=str(workdir), env=env).check(
        "erpprov resident start")
    try:
        yield env
    finally:
        run([python, "-m", "erpprov", "resident", "stop"], cwd=str(workdir), env=env)
