"""The `erpprov` command: a thin layer over the library. Heavy modules are imported inside the
commands so that `erpprov --help` starts fast."""

from __future__ import annotations

import functools
import gc
import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from erpprov import __version__
from erpprov.core.display import shown, shown_lines
from erpprov.errors import ErpprovError

if TYPE_CHECKING:
    from erpprov.load.project import Project

DEFAULT_PLAYBOOK = Path("playbooks/dev.yaml")


def _fail(exc: BaseException, verbose: bool, message: str | None = None) -> None:
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
            _fail(exc, verbose)
        except OSError as exc:  # a file or program erpprov needed, not a bug of erpprov's
            where = f" ({exc.filename})" if exc.filename else ""
            _fail(exc, verbose, f"{exc.strerror or exc}{where}")
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def project_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options every command that loads a playbook shares. A large playbook starts parsing on
    another core before the command imports the heavy modules it needs (see yamlsrc.prefetch)."""

    @functools.wraps(fn)
    def prefetching(*args: Any, **kwargs: Any) -> Any:
        from erpprov.load.yamlsrc import prefetch

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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="erpprov")
def main() -> None:
    """Declarative provisioning for a team's PostgreSQL.

    Describe the container, roles, databases, grants and tables in playbooks/*.yaml; `plan` shows
    what differs from the live server and `apply` changes only that.
    """
    # A run is short and builds large acyclic structures (a playbook's values, catalog rows); the
    # default threshold of 700 allocations made the collector rescan them over and over, a third
    # of a no-op plan's time at a thousand tables. Cycles are still collected, just less often.
    gc.set_threshold(200_000, 30, 30)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM (a cancelled CI job, `docker stop`, systemd) ends the run like an error does: every
    cleanup runs (throwaway servers stopped, transactions rolled back), and the worker threads
    finish theirs before the process exits."""
    click.echo("terminated", err=True)
    raise SystemExit(128 + signum)


@main.command()
@click.argument("playbooks", nargs=-1, type=click.Path(path_type=Path))
@project_options
@handles_errors
def validate(playbooks: tuple[Path, ...], inventory: Path, extra_vars: tuple[str, ...], limit: str | None,
             verbose: bool) -> None:
    """Check playbooks and the inventory without touching a server (default: playbooks/dev.yaml)."""
    for playbook in playbooks or (DEFAULT_PLAYBOOK,):
        project = load(playbook, inventory, extra_vars, limit)
        if not project.targets:
            click.echo(f"{playbook}: valid, but no play matches any host", err=True)
            continue
        plays = len({t.play.name for t in project.targets})
        click.echo(f"{playbook}: valid ({plays} play{'s' if plays != 1 else ''}, "
                   f"hosts: {', '.join(shown(h) for h in project.hosts)})")


@main.command()
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write to a file instead of stdout.")
@handles_errors
def schema(output: Path | None) -> None:
    """Print the JSON Schema of the playbook format (for editors and CI)."""
    from erpprov.core.model import playbook_json_schema

    text = json.dumps(playbook_json_schema(), indent=2, sort_keys=True) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


def _colour(no_color: bool) -> bool:
    import os

    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


@main.command()
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="Output for people, machines or pull-request comments.")
@click.option("--sql", "show_sql", is_flag=True, help="Show the SQL of each action.")
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Save the plan as JSON for `erpprov apply FILE`.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when changes are pending, 0 when none, 1 on error.")
@click.option("--offline", is_flag=True, help="No server: show what the files create on an empty instance.")
@click.option("--forks", default=5, show_default=True, help="Hosts planned in parallel.")
@click.option("--no-color", is_flag=True, help="Never colour the output (NO_COLOR is honoured too).")
@handles_errors
def plan(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None, verbose: bool,
         fmt: str, show_sql: bool, out: Path | None, detailed_exitcode: bool, offline: bool, forks: int,
         no_color: bool) -> None:
    """Show what `apply` would change, without changing anything (a dry run for code review)."""
    from erpprov.core.actions import HostPlan
    from erpprov.fanout import for_each_target, inputs_fingerprint
    from erpprov.plan import render
    from erpprov.plan.build import plan_offline, plan_target

    project = load(playbook or DEFAULT_PLAYBOOK, inventory, extra_vars, limit)
    fingerprinted = fmt == "json" or out is not None
    work = plan_offline if offline else functools.partial(plan_target, fingerprinted=fingerprinted)
    outcomes = for_each_target(project, work, forks)
    failed = [o for o in outcomes if o.error]
    plans: list[HostPlan] = [o.value for o in outcomes if o.value is not None]
    document = render.document(plans, inputs=inputs_fingerprint(project)) if fingerprinted else {}
    if fmt == "json":
        click.echo(render.dump(document), nl=False)
    elif fmt == "markdown":
        click.echo(render.markdown(plans))
    else:
        click.echo(render.text(plans, show_sql=show_sql or verbose, colour=_colour(no_color)), nl=False)
    if out:
        from erpprov.files.atomic import write_private

        saved = {**document, "playbook": str(playbook or DEFAULT_PLAYBOOK), "inventory": str(inventory),
                 "limit": limit}
        write_private(out, render.dump(saved))
        click.echo(f"Saved the plan to {out}; apply exactly it with `erpprov apply {out}`.", err=True)
    for outcome in failed:
        _host_error(outcome.target.host, outcome.error)
    if failed:
        sys.exit(1)
    if detailed_exitcode and any(not p.empty for p in plans):
        sys.exit(2)


@main.command()
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@click.option("--allow-destructive", is_flag=True, help="Allow every hazard (drops, rewrites, revokes...).")
@click.option("--allow-hazard", "allow_hazard", multiple=True, metavar="NAME",
              help="Allow one kind of hazard, e.g. deletes_data; repeatable.")
@click.option("--lock-wait", default=30.0, show_default=True, help="Seconds to wait for another apply to finish.")
@click.option("--forks", default=5, show_default=True, help="Hosts reconciled in parallel.")
@click.option("--no-color", is_flag=True, help="Never colour the output (NO_COLOR is honoured too).")
@handles_errors
def apply(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None, verbose: bool,
          allow_destructive: bool, allow_hazard: tuple[str, ...], lock_wait: float, forks: int,
          no_color: bool) -> None:
    """Make the live state match the files (PLAYBOOK, or a plan saved with `plan -o`)."""
    import time

    from erpprov.apply.host import ApplyOptions, ApplyReport, apply_target
    from erpprov.core.actions import Hazard
    from erpprov.core.target import Target
    from erpprov.fanout import Printer, for_each_target, inputs_fingerprint

    try:
        allowed = frozenset(Hazard) if allow_destructive else frozenset(Hazard(h) for h in allow_hazard)
    except ValueError as exc:
        raise ErpprovError(str(exc), hint="hazards: " + ", ".join(h.value for h in Hazard)) from None
    saved: dict[str, Any] | None = None
    path = playbook or DEFAULT_PLAYBOOK
    if path.suffix == ".json":
        saved = _read_saved_plan(path)
        path, inventory, limit = Path(saved["playbook"]), Path(saved["inventory"]), saved.get("limit")
    project = load(path, inventory, extra_vars, limit)
    if saved is not None and saved.get("inputs_fingerprint") != inputs_fingerprint(project):
        raise ErpprovError("the playbook, inventory or variables changed since the plan was saved; "
                           "nothing was applied", hint="run `erpprov plan -o FILE` again and review it")
    colour = _colour(no_color)
    say = Printer(click.echo)
    started = time.monotonic()
    confirm = _confirm_hazards(say) if sys.stdin.isatty() else None

    def work(target: Target) -> ApplyReport:
        host = target.host

        def event(kind: str, address: str) -> None:
            line = f"{kind}: [{shown(host)}] {shown(address.replace('.', ' ', 1))}"
            say(click.style(line, fg=_EVENT_COLOURS[kind]) if colour else line)

        host_saved = None
        if saved is not None:
            host_saved = next((h for h in saved["hosts"] if h["host"] == host), None)
            if host_saved is None:
                raise ErpprovError(f"the saved plan has no entry for host {host}")
        options = ApplyOptions(allow_hazards=allowed, lock_wait=lock_wait, saved=host_saved, confirm=confirm)
        return apply_target(target, options, event, lambda text: say(f"  [{shown(host)}] {shown(text)}"))

    outcomes = for_each_target(project, work, forks)
    say("")
    say(f"RECAP ({time.monotonic() - started:.1f}s)")
    failed = False
    for host in project.hosts:
        mine = [o for o in outcomes if o.target.host == host]
        reports = [o.value if o.value else getattr(o.error, "report", None) for o in mine]
        changed = sum(len(r.changed) for r in reports if r)
        errors = [o.error for o in mine if o.error]
        skipped = len([t for t in project.targets if t.host == host]) - len(mine)
        ok = sum(len(r.ok) for r in reports if r)
        line = f"{shown(host):<24} ok={ok:<4} changed={changed:<4} failed={len(errors):<3} skipped={skipped}"
        say(click.style(line, fg="red" if errors else ("yellow" if changed else "green")) if colour else line)
        for report in reports:
            for warning in (report.warnings if report else []):
                say(f"  ! {shown(warning)}")
        for error in errors:
            failed = True
            _host_error(host, error)
    if failed:
        sys.exit(1)


_EVENT_COLOURS = {"ok": "green", "changed": "yellow", "failed": "red"}


def _host_error(host: str, error: BaseException | None) -> None:
    click.echo(f"error: [{shown(host)}] {shown_lines(str(error))}", err=True)


def _confirm_hazards(say: Callable[[str], None]) -> Callable[[list[Any]], bool]:
    """On a terminal, hazards not allowed by flags can be allowed by typing 'yes'."""
    import threading

    lock = threading.Lock()  # one question at a time, whatever the number of hosts

    def confirm(refused: list[Any]) -> bool:
        with lock:
            say("These changes are hazardous:")
            for action, hazard in refused:
                say(f"  {shown(action.address)} ({hazard.value}){': ' + shown(action.note) if action.note else ''}")
            return click.prompt("Type 'yes' to apply them", default="", show_default=False) == "yes"

    return confirm


def _read_saved_plan(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ErpprovError(f"saved plan not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise ErpprovError(f"{path} is not a saved erpprov plan: {exc}") from None
    if not isinstance(document, dict) or "hosts" not in document or "playbook" not in document:
        raise ErpprovError(f"{path} is not a saved erpprov plan", hint="create one with `erpprov plan -o FILE`")
    return document


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


@main.command()
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@handles_errors
def status(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None,
           verbose: bool) -> None:
    """Health of each host: container or cluster, server, and whether each login role can connect."""
    from erpprov.ops.health import check_target

    project = load(playbook or DEFAULT_PLAYBOOK, inventory, extra_vars, limit)
    healthy = True
    for target in project.targets:
        report = check_target(target)
        healthy &= report.healthy
        click.echo(f"{shown(target.host)} ({report.driver}): {'healthy' if report.healthy else 'UNHEALTHY'}")
        for name, ok, detail in report.checks:
            click.echo(f"  {'ok  ' if ok else 'FAIL'} {shown(name)}: {shown(str(detail))}")
        for name, value in report.facts.items():
            click.echo(f"       {shown(name)}: {shown(str(value))}")
    if not healthy:
        sys.exit(1)


@main.command()
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@click.option("--tail", "-n", default=100, show_default=True, help="Lines from the end of the log.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines (Ctrl-C to stop).")
@click.option("--host", help="Host to read (default: the only one).")
@handles_errors
def logs(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None, verbose: bool,
         tail: int, follow: bool, host: str | None) -> None:
    """Print the server's log (container or embedded cluster)."""
    from erpprov.drivers import make_driver

    target = single_target(playbook, inventory, extra_vars, limit, host)
    for line in make_driver(target).logs(tail, follow):
        click.echo(shown(line))  # the server logs names as they were sent


@main.command()
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@click.option("--db", "database", help="Database (default: the play's first database).")
@click.option("--user", help="Role to connect as (default: the host's pg_user).")
@click.option("--host", help="Host to connect to (default: the only one).")
@handles_errors
def psql(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None, verbose: bool,
         database: str | None, user: str | None, host: str | None) -> None:
    """An interactive psql on the host's server."""
    from erpprov.drivers import make_driver

    target = single_target(playbook, inventory, extra_vars, limit, host)
    database = database or target.main_database or target.connection.pg_database
    argv = ["psql", "-d", database, "-U", user or target.connection.pg_user]
    sys.exit(make_driver(target).exec(argv, interactive=True))


@main.command()
@click.argument("playbook", required=False, type=click.Path(path_type=Path))
@project_options
@click.option("--volumes", is_flag=True, help="Also delete the data directory or volume: all data is lost.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handles_errors
def destroy(playbook: Path | None, inventory: Path, extra_vars: tuple[str, ...], limit: str | None, verbose: bool,
            volumes: bool, yes: bool) -> None:
    """Stop and remove the container or embedded cluster (--volumes deletes the data too)."""
    from erpprov.drivers import make_driver

    project = load(playbook or DEFAULT_PLAYBOOK, inventory, extra_vars, limit)
    for target in project.targets:
        driver = make_driver(target)
        name = target.play.container.name if target.play.container else target.host
        if volumes and not yes:
            if not sys.stdin.isatty():
                raise ErpprovError("destroy --volumes deletes all data; refusing without --yes in a "
                                   "non-interactive run")
            typed = click.prompt(f"This deletes all data of {name} on {target.host}. Type {name!r} to confirm",
                                 default="", show_default=False)
            if typed != name:
                raise ErpprovError("confirmation did not match; nothing was deleted")
        def progress(text: str, host: str = target.host) -> None:
            click.echo(f"  [{shown(host)}] {shown(text)}")

        driver.destroy(volumes, progress)
        click.echo(f"destroyed: [{shown(target.host)}] {shown(name)}{' and its data' if volumes else ''}")


# backup, restore, init (cli_ops) and export (cli_export) add their commands to `main` when imported.
import erpprov.cli.export
import erpprov.cli.ops  # noqa: F401
