"""`python -m bench --fleet 20`: a fleet of hosts, each its own throwaway PostgreSQL cluster on a
loopback port, reconciled with nothing to change by `erpprov apply --forks F` directly and by
`ansible-playbook -f F` running the erpprov.postgres.apply module on every host. What Ansible adds
is its own start-up, a module process per host (a Python that imports erpprov) and its strategy's
bookkeeping; the figure reported is that difference divided by the number of hosts.

ansible-playbook is the one of this environment (ansible-core is in the test extras); the module
runs with this Python, so both sides run the same erpprov."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench import report
from bench.measure import Run, Series, run
from bench.server import USER, Server, throwaway_server
from bench.workload import Workload, erpprov_playbook

REPO = Path(__file__).resolve().parent.parent
TABLES = 8  # per host: a small database, so the figures are the fan-out's, not one plan's

ANSIBLE_PLAYBOOK = """\
- name: erpprov on every host of the fleet
  hosts: bench
  gather_facts: false
  tasks:
    - name: erpprov
      erpprov.postgres.apply:
        playbook: "{{ erpprov_playbook }}"
        host_name: "{{ inventory_hostname }}"
        driver: external
        pg_host: "{{ pg_host }}"
        pg_port: "{{ pg_port }}"
        pg_user: "{{ pg_user }}"
        pg_password: "{{ pg_password }}"
"""


@dataclass
class FleetResults:
    hosts: int
    forks: int
    series: list[Series] = field(default_factory=list)
    checks: list[tuple[int, str, bool, str]] = field(default_factory=list)

    def get(self, tool: str, what: str) -> Series:
        return next(s for s in self.series if (s.tool, s.what) == (tool, what))

    environment: dict[str, str] = field(default_factory=dict)

    def overhead_per_host(self, ansible: str, erpprov: str) -> float:
        """Seconds Ansible's run ``ansible`` adds per host to erpprov's ``erpprov`` (median against median)."""
        return (self.get("ansible", ansible).median - self.get("erpprov", erpprov).median) / self.hosts


@contextmanager
def fleet_servers(count: int, log: Callable[[str], None]) -> Iterator[list[Server]]:
    with ExitStack() as stack:
        servers = []
        for index in range(count):
            servers.append(stack.enter_context(throwaway_server(durable=False)))
            log(f"  cluster {index + 1}/{count} on port {servers[-1].port}")
        yield servers


def write_fleet(servers: list[Server], directory: Path) -> dict[str, Path]:
    """One inventory both tools read (erpprov reads Ansible's YAML format), the erpprov playbook,
    and the Ansible playbook that runs it through the module."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {"inventory": directory / "inventory.yaml", "erpprov_playbook": directory / "playbook.yaml",
             "ansible_playbook": directory / "site.yaml"}
    hosts = {f"host{index + 1:02d}": {
        "driver": "external", "pg_host": server.host, "pg_port": server.port, "pg_user": USER,
        "pg_password": server.password, "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
    } for index, server in enumerate(servers)}
    inventory = {"all": {"vars": {"erpprov_playbook": str(files["erpprov_playbook"])},
                         "children": {"bench": {"hosts": hosts}}}}
    files["inventory"].write_text(yaml.safe_dump(inventory, sort_keys=False))
    files["erpprov_playbook"].write_text(erpprov_playbook(Workload(TABLES)))
    files["ansible_playbook"].write_text(ANSIBLE_PLAYBOOK)
    return files


def ansible_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"), "ANSIBLE_HOME": str(home),
            "ANSIBLE_LOCAL_TEMP": str(home / "tmp"), "ANSIBLE_REMOTE_TEMP": str(home / "remote"),
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_HOST_KEY_CHECKING": "0", "LC_ALL": "C.UTF-8",
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def measure_fleet(hosts: int, forks: int, runs: int, workdir: Path, timeout: float,
                  log: Callable[[str], None]) -> FleetResults:
    playbook_command = shutil.which("ansible-playbook")
    if playbook_command is None:
        raise SystemExit("--fleet needs ansible-playbook: pip install -e '.[test]' (ansible-core)")
    results = FleetResults(hosts, forks)
    log(f"fleet: starting {hosts} throwaway clusters")
    with fleet_servers(hosts, log) as servers:
        files = write_fleet(servers, workdir / "fleet")
        env = ansible_env(workdir / "fleet" / "ansible-home")
        erpprov = [sys.executable, "-m", "erpprov"]
        where = [str(files["erpprov_playbook"]), "-i", str(files["inventory"]), "--forks", str(forks), "--no-color"]
        ansible = [playbook_command, "-i", str(files["inventory"]), "-f", str(forks), str(files["ansible_playbook"])]
        first = run(erpprov + ["apply", *where], cwd=str(workdir), env=env, timeout=timeout)
        results.checks.append((hosts, "the first erpprov apply converges every host", first.returncode == 0,
                               first.stderr[-2000:]))
        first.check("erpprov first apply")
        # A plan with --detailed-exitcode exits 2 when anything would change, so exit 0 is its check.
        commands = [("erpprov", "no-op apply", erpprov + ["apply", *where], _unchanged),
                    ("ansible", "no-op apply", ansible, _unchanged),
                    ("erpprov", "no-op plan", erpprov + ["plan", "--detailed-exitcode", *where], None),
                    ("ansible", "no-op --check", ansible + ["--check"], _unchanged)]
        for tool, what, argv, unchanged in commands:
            series = Series(tool, what, hosts)
            for _ in range(runs):
                result = run(argv, cwd=str(workdir), env=env, timeout=timeout).check(f"{tool} {what} (fleet)")
                if unchanged is not None:
                    results.checks.append((hosts, f"{tool} {what}: nothing changed on any host", unchanged(result),
                                           result.stdout[-2000:]))
                series.add(result)
            results.series.append(series)
            log(f"  {tool:<8} {what:<14} {hosts} hosts, forks {forks}: median {series.median:.2f}s "
                f"[{series.low:.2f}-{series.high:.2f}]")
        results.environment = report.environment(servers[0], None)
        results.environment["ansible-core"] = _ansible_version(playbook_command)
    return results


def _ansible_version(command: str) -> str:
    first = run([command, "--version"], timeout=60).stdout.splitlines()
    return first[0].strip() if first else "unknown"


def _unchanged(result: Run) -> bool:
    """Every RECAP line says changed=0 (erpprov's and Ansible's RECAPs share the format)."""
    lines = [line for line in result.stdout.splitlines() if " changed=" in line]
    return bool(lines) and all(" changed=0 " in line + " " for line in lines)


def markdown(results: FleetResults, runs: int, elapsed: float) -> str:
    out = [f"# Fleet benchmark: erpprov --forks {results.forks} vs Ansible -f {results.forks}, "
           f"{results.hosts} hosts\n",
           f"Generated by `python -m bench --fleet {results.hosts} --fleet-forks {results.forks} --runs {runs}`.\n",
           "| | |\n|---|---|", *(f"| {k} | {v} |" for k, v in results.environment.items()), "",
           f"Each host is its own throwaway PostgreSQL cluster (initdb, a free loopback port), holding the "
           f"benchmark's workload at N={TABLES} tables. Both tools read one inventory; Ansible runs the "
           "erpprov.postgres.apply module (`playbook:` the same erpprov playbook) with `ansible_connection: local`, "
           "so no SSH is measured. Every figure is a whole process, wall clock, median (min–max) over the runs.\n",
           "| measurement | tool | seconds | peak RSS |", "|---|---|---|---|"]
    for series in results.series:
        spread = f"{series.median:.2f} ({series.low:.2f}–{series.high:.2f})"
        out.append(f"| {series.what} | {series.tool} | {spread} | {series.peak_mib:.0f} MiB |")
    apply = results.overhead_per_host("no-op apply", "no-op apply")
    check = results.overhead_per_host("no-op --check", "no-op plan")
    out += ["", f"Ansible adds **{apply:.2f} s per host** to a no-op apply "
                f"and {check:.2f} s per host to a no-op check-mode run (difference of the medians / "
                f"{results.hosts} hosts).", "",
            "| check | passed |", "|---|---|"]
    seen: dict[str, bool] = {}
    for _, name, passed, _ in results.checks:
        seen[name] = seen.get(name, True) and passed
    out += [f"| {name} | {'yes' if passed else '**no**'} |" for name, passed in seen.items()]
    out.append(f"\nTotal benchmark time: {elapsed / 60:.1f} min.")
    return "\n".join(out) + "\n"
