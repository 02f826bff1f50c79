"""Builders and runners the tests share: a project directory (inventory, playbook, .env), the real
`erpprov` command in a bounded subprocess, and plan/apply of loaded targets."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from erpprov.core.actions import Hazard
from erpprov.core.target import Target

REPO = Path(__file__).resolve().parents[1]
PLAYBOOK = Path("playbooks") / "dev.yaml"  # where write_project puts the playbook: the CLI's default
MiB = 1024 * 1024
TIMED_OUT = -999  # returncode of a run that was killed at its timeout


# --- projects ------------------------------------------------------------------------------------

def write_inventory(root: Path, host_vars: dict[str, Any] | None = None) -> Path:
    """inventory.yaml with one host, `localhost` in group `dev`: ``host_vars``, driver external
    unless they say otherwise."""
    root.mkdir(parents=True, exist_ok=True)
    host = {"driver": "external", **(host_vars or {})}
    path = root / "inventory.yaml"
    path.write_text(yaml.safe_dump({"all": {"children": {"dev": {"hosts": {"localhost": host}}}}}))
    return path


def write_project(root: Path, playbook: str | bytes, host_vars: dict[str, Any] | None = None, *,
                  inventory: str | None = None, env_file: str | None = None, dedent: bool = True) -> Path:
    """A project directory (returned): inventory.yaml, playbooks/dev.yaml and, with ``env_file``,
    .env. The inventory is ``inventory`` (YAML text) if given, else write_inventory(``host_vars``).
    Text is dedented unless ``dedent`` is false; bytes are written as they are."""
    def text(value: str) -> str:
        return textwrap.dedent(value) if dedent else value

    root.mkdir(parents=True, exist_ok=True)
    if inventory is not None:
        (root / "inventory.yaml").write_text(text(inventory))
    else:
        write_inventory(root, host_vars)
    path = root / PLAYBOOK
    path.parent.mkdir(exist_ok=True)
    if isinstance(playbook, bytes):
        path.write_bytes(playbook)
    else:
        path.write_text(text(playbook), encoding="utf-8")
    if env_file is not None:
        (root / ".env").write_text(text(env_file))
    return root


def server_vars(pg: Any, password_from_env: bool = True) -> dict[str, Any]:
    """Host variables reaching the test server ``pg``; the password comes from the environment
    (pg_env) unless ``password_from_env`` is false."""
    return {"driver": "external", "pg_host": pg.host, "pg_port": pg.port, "pg_user": pg.user,
            "pg_password": "{{ env.RELIABILITY_PG_PASSWORD }}" if password_from_env else pg.password,
            "pg_connect_timeout": 5}


def pg_env(pg: Any) -> dict[str, str]:
    return {"RELIABILITY_PG_PASSWORD": pg.password}


def reachable_tempdir(prefix: str = "erpprov-test-") -> Path:
    """A temporary directory that the server's account can reach (pytest's own are private to root)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(base, 0o755)  # as root the server runs as another account (`postgres`) that must reach its data dir
    return base


def remove_container(engine: Any, name: str) -> None:
    """`docker rm -f NAME`, if it is there."""
    import docker

    with contextlib.suppress(docker.errors.NotFound):
        engine.containers.get(name).remove(force=True)


# --- in process: load, plan, apply ---------------------------------------------------------------

def load_targets(tmp: Path, server: Any, playbook: str, **host_vars: Any) -> list[Target]:
    """The targets of ``playbook`` run against the test server ``server`` (external driver)."""
    from erpprov.load.project import load_project

    write_project(tmp, playbook, {**server_vars(server, password_from_env=False), **host_vars})
    return load_project(tmp / PLAYBOOK, tmp / "inventory.yaml", environ={}).targets


def plan_of(targets: list[Target]) -> list[tuple[str, str]]:
    """Every action the plan holds for ``targets``, as (address, operation) pairs."""
    from erpprov.plan.build import plan_target

    pairs = []
    for target in targets:
        pairs += [(a.address, a.op.value) for a in plan_target(target).actions]
    return pairs


def apply_all(targets: list[Target], *, allow: frozenset[Hazard] = frozenset()) -> list[str]:
    """Apply, returning the changed addresses; apply itself fails if the re-plan is not empty."""
    from erpprov.apply.host import ApplyOptions, apply_target

    changed = []
    for target in targets:
        report = apply_target(target, ApplyOptions(allow_hazards=allow, lock_wait=5),
                              lambda kind, action: None, lambda text: None)
        changed += [a.address for a in report.changed]
    return changed


# --- the CLI in a subprocess ---------------------------------------------------------------------

@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.returncode == TIMED_OUT

    def __str__(self) -> str:  # shown by failed asserts
        return (f"rc={self.returncode} ({self.seconds:.1f}s)\nstdout: {self.stdout[-1500:]}\n"
                f"stderr: {self.stderr[-1500:]}")


def _limits(mem: int | None, umask: int | None = None):  # type: ignore[no-untyped-def]
    def apply() -> None:
        if umask is not None:
            os.umask(umask)
        os.setsid()  # its own process group, so a timeout kills it and anything it started
        if mem is not None:
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    return apply


def cli_environ(env: dict[str, str] | None = None, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of a CLI run: ours, ``env`` over it, without ``drop``, this checkout importable."""
    environ = {**os.environ, **(env or {})}
    for key in drop:
        environ.pop(key, None)
    environ["PYTHONPATH"] = str(REPO) + os.pathsep + environ.get("PYTHONPATH", "")
    return environ


def erpprov(cwd: Path, *args: str, timeout: float = 300, mem: int | None = None, env: dict[str, str] | None = None,
            drop_env: tuple[str, ...] = (), umask: int | None = None, input: str | None = None) -> Run:
    """`erpprov ARGS` as a user runs it: a whole process in ``cwd``, ``env`` over the environment
    (NO_COLOR unless it says otherwise), ``input`` as its stdin (else no terminal to read from).
    It is killed after ``timeout`` seconds, a hang timeout (TIMED_OUT), and its address space is
    capped at ``mem`` bytes if given."""
    environ = cli_environ(env, drop_env)
    environ.setdefault("NO_COLOR", "1")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "erpprov", *args], cwd=cwd, text=True, env=environ,
                            stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_limits(mem, umask))
    return finish(proc, timeout, started=started, input=input)


def start_erpprov(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`erpprov ARGS` started in the background, in its own process group (so we kill only it)."""
    return subprocess.Popen([sys.executable, "-m", "erpprov", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**cli_environ(env), "NO_COLOR": "1"},
                            start_new_session=True)


def finish(proc: subprocess.Popen[str], timeout: float = 120, started: float | None = None,
           input: str | None = None) -> Run:
    """Wait for ``proc`` at most ``timeout`` seconds, then SIGKILL its process group (TIMED_OUT).
    ``seconds`` counts from ``started`` (a time.monotonic() value), or from now; it is shown, never
    asserted."""
    if started is None:
        started = time.monotonic()
    try:
        out, err = proc.communicate(input, timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        code = TIMED_OUT
    return Run(code, out, err, time.monotonic() - started)


def assert_clean_error(run: Run, *fragments: str) -> None:
    """erpprov's own error: exit 1, `error: ...` first on stderr, no traceback, before its hang timeout."""
    assert not run.timed_out, f"erpprov did not finish in time: {run}"
    assert run.returncode == 1, str(run)
    assert run.stderr.startswith("error: "), str(run)
    assert "Traceback" not in run.stderr + run.stdout, str(run)
    first = run.stderr.splitlines()[0]
    for fragment in fragments:
        assert fragment.lower() in run.stderr.lower(), f"{fragment!r} not in: {run}"
    assert len(first) < 2000, "the first line of the error is not a readable one-liner"


def assert_converged(cwd: Path, env: dict[str, str] | None = None, *args: str) -> None:
    """The convergence check: `plan --detailed-exitcode` exits 0 (no changes)."""
    run = erpprov(cwd, "plan", "--detailed-exitcode", *args, env=env)
    assert run.returncode == 0, f"the plan is not empty: {run}"
