"""What every command shares: the project options, loading, error handling, the one-host rule."""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from erpprov.core.display import shown, shown_lines
from erpprov.errors import ErpprovError

if TYPE_CHECKING:
    from erpprov.load.project import Project

DEFAULT_PLAYBOOK = Path("playbooks/dev.yaml")


def fail(exc: BaseException, verbose: bool, message: str | None = None) -> None:
    if verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    click.echo(f"error: {shown_lines(message or str(exc))}", err=True)
    sys.exit(1)


def handles_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn errors into one message and exit 1; tracebacks only with -v."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verbose = bool(kwargs.get("verbose"))
        try:
            return fn(*args, **kwargs)
        except ErpprovError as exc:
            fail(exc, verbose)
        except OSError as exc:  # a file or program erpprov needed, not a bug of erpprov's
            where = f" ({exc.filename})" if exc.filename else ""
            fail(exc, verbose, f"{exc.strerror or exc}{where}")
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


@contextlib.contextmanager
def stops_on_signal() -> Iterator[None]:
    """While plan or apply works in threads (a host each), the first Ctrl-C or SIGTERM asks the
    work to stop at its next step and cancels the statements the server runs for it
    (core.interrupt), so a transaction in progress rolls back instead of committing after it was
    asked to stop; the command then ends with 128 + the signal (130, 143). A second signal quits
    at once (the server rolls back what was not committed when the connections drop)."""
    from erpprov.core import interrupt
    from erpprov.postgres.connect import cancel_running

    def stop(signum: int, frame: object) -> None:
        if interrupt.requested():
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.flush()
            os.write(2, f"\n{_WORD[signum]} again: quitting at once\n".encode())
            os._exit(128 + signum)
        interrupt.request(signum)
        again = "Ctrl-C again" if signum == signal.SIGINT else "a second SIGTERM"
        os.write(2, f"\n{_WORD[signum]}: stopping, rolling back what is in progress ({again} quits at once)\n"
                 .encode())
        cancel_running()

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    previous = {signum: signal.signal(signum, stop) for signum in _WORD}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_WORD: dict[int, str] = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


def interrupted() -> bool:
    """Whether a signal stopped the work."""
    from erpprov.core.interrupt import requested

    return requested()


def stopped_by_signal(error: ErpprovError) -> bool:
    """Whether ``error`` is a host's work a signal stopped: the command reports that once, not per host."""
    from erpprov.core.interrupt import Interrupted

    return isinstance(error, Interrupted) or isinstance(getattr(error, "cause", None), Interrupted)


def stopped(what: str = "") -> None:
    """End the command as the signal that stopped its work asks: its word, 128 + the signal."""
    from erpprov.core.interrupt import requested_by

    signum = requested_by() or signal.SIGINT
    click.echo(f"{_WORD.get(signum, 'interrupted')}{what}", err=True)
    sys.exit(128 + signum)


def project_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options every command that loads a playbook shares. A large playbook starts parsing on
    another core before the command imports the heavy modules it needs (see yamlsrc.prefetch),
    unless the parse cache holds its values already (see load.parsecache)."""

    @functools.wraps(fn)
    def prefetching(*args: Any, **kwargs: Any) -> Any:
        from erpprov.load.yamlsrc import prefetch

        if kwargs.pop("no_cache"):
            from erpprov.load import parsecache

            parsecache.disable()
        for playbook in kwargs.get("playbooks") or (kwargs.get("playbook") or DEFAULT_PLAYBOOK,):
            if playbook.suffix != ".json":  # a plan saved for `apply` names its playbook inside
                prefetch(playbook)
        return fn(*args, **kwargs)

    options = [
        click.option("-i", "--inventory", type=click.Path(path_type=Path), default=Path("inventory.yaml"),
                     show_default=True, help="Inventory file (Ansible YAML format)."),
        click.option("-e", "--extra-vars", multiple=True, metavar="NAME=VALUE|@FILE",
                     help="Variables that override all others; repeatable."),
        click.option("-l", "--limit", metavar="PATTERN", help="Only hosts matching this pattern (e.g. dev:!db2)."),
        click.option("-v", "--verbose", is_flag=True, help="Show SQL and tracebacks."),
        click.option("--no-cache", is_flag=True,
                     help="Parse every file, and keep no parsed values for the next run (see docs/performance.md)."),
    ]
    command: Callable[..., Any] = prefetching
    for option in reversed(options):
        command = option(command)
    return command


def load(playbook: Path, inventory: Path, extra_vars: tuple[str, ...], limit: str | None) -> Project:
    from erpprov.load.project import build_validators, load_project, parse_extra_vars

    build_validators()

    # Loading builds a hundred thousand objects at a thousand tables and frees almost none: a
    # collection in the middle would only rescan them. Afterwards they live until the process
    # ends, so they are moved out of the collector's sight for good.
    gc.disable()
    try:
        return load_project(playbook, inventory, extra_vars=parse_extra_vars(list(extra_vars), Path.cwd()),
                            limit=limit)
    finally:
        gc.freeze()
        gc.enable()


def single_target(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None,
                  host: str | None) -> Any:
    """The one target a single-host command (status, logs, psql, backup, ...) works on."""
    project = load(playbook or DEFAULT_PLAYBOOK, inventory, extra_vars, limit)
    targets = [t for t in project.targets if host is None or t.host == host]
    if not targets:
        raise ErpprovError(f"no play targets host {host!r}" if host else "the playbook targets no host",
                           hint="check --limit / --host and the plays' hosts:")
    only_host([t.host for t in targets])
    return targets[0]


def only_host(hosts: list[str]) -> str:
    """The one host a single-host command works on, or an error naming the candidates."""
    if len(set(hosts)) > 1:
        raise ErpprovError(f"several hosts match ({', '.join(sorted(set(hosts)))})",
                           hint="choose one with --host or -l/--limit")
    return hosts[0]


def host_error(host: str, error: BaseException | None) -> None:
    click.echo(f"error: [{shown(host)}] {shown_lines(str(error))}", err=True)
