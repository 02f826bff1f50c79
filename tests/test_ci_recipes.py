"""The recipes of docs/ci.md and the hook of .pre-commit-hooks.yaml, run as far as a machine without
GitHub or GitLab can: the YAML parses into the jobs it promises, every `erpprov` command in them
exists with the options it is given, the CI inventory plans and applies against a real server,
and the hook runs under the real pre-commit in a throwaway git repository."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from erpprov.cli import main
from tests.helpers import REPO, assert_converged, erpprov, erpprov_on_path, write_project

DOC = (REPO / "docs" / "ci.md").read_text()
BLOCKS = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", DOC, re.S)]
INVENTORY, GITHUB, GITLAB, PRE_COMMIT = BLOCKS


def _commands(node: Any) -> list[str]:
    """Every `erpprov ...` command line in a workflow (run: / script: entries)."""
    if isinstance(node, dict):
        return [c for value in node.values() for c in _commands(value)]
    if isinstance(node, list):
        return [c for value in node for c in _commands(value)]
    if isinstance(node, str):
        return [line.strip() for line in node.splitlines() if line.strip().startswith("erpprov ")]
    return []


def _check_command(line: str) -> None:
    words = shlex.split(line.split(">")[0])
    command = main.commands.get(words[1])
    assert command is not None, f"no command {words[1]!r}: {line}"
    options = {opt for param in command.params if isinstance(param, click.Option) for opt in param.opts}
    for word in words[2:]:
        if word.startswith("-"):
            assert word in options, f"{words[1]} has no option {word}: {line}"
    command.make_context(words[1], words[2:], resilient_parsing=False)  # arity and choices as click checks them


def test_the_recipes_hold_the_jobs_they_promise_and_only_real_commands() -> None:
    github_jobs = GITHUB["jobs"]
    assert GITHUB[True]["schedule"] and "pull_request" in GITHUB[True]  # YAML 1.1 reads the key `on` as true
    assert github_jobs["plan"]["services"]["postgres"]["image"].startswith("postgres:")
    assert GITLAB["erpprov-plan"]["services"][0]["name"].startswith("postgres:")
    assert GITLAB["erpprov-drift"]["rules"][0]["if"] == '$CI_PIPELINE_SOURCE == "schedule"'
    commands = _commands(GITHUB) + _commands(GITLAB)
    assert {"erpprov plan -i ci/inventory.yaml --format markdown > plan.md",
            "erpprov plan -l production --detailed-exitcode",
            "erpprov diff production staging --detailed-exitcode"} <= set(commands)
    for line in commands:
        _check_command(line)
    assert PRE_COMMIT["repos"][0]["hooks"][0]["id"] in {h["id"] for h in _hooks()}


def _hooks() -> list[dict[str, Any]]:
    return list(yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text()))


PLAYBOOK = """\
- name: shop
  hosts: all
  databases:
    - {name: %s}
"""


def test_the_ci_inventory_applies_the_base_and_plans_the_change(tmp_path: Path, pg: Any) -> None:
    write_project(tmp_path, PLAYBOOK % pg.dbname, inventory="")
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY))
    env = {"CI_PG_HOST": pg.host, "CI_PG_PORT": str(pg.port), "POSTGRES_PASSWORD": pg.password}
    assert erpprov(tmp_path, "apply", "-i", "ci/inventory.yaml", env=env).returncode == 0
    assert_converged(tmp_path, env, "-i", "ci/inventory.yaml")
    (tmp_path / "playbooks" / "dev.yaml").write_text(PLAYBOOK % pg.dbname + "  roles:\n    - {name: reporting}\n")
    run = erpprov(tmp_path, "plan", "-i", "ci/inventory.yaml", "--format", "markdown", env=env)
    assert run.returncode == 0 and "**1 to add, 0 to change, 0 to destroy**" in run.stdout, str(run)


def test_the_hook_runs_under_pre_commit_on_changed_playbooks_only(tmp_path: Path) -> None:
    """The hook as the file defines it, but `language: system` (this erpprov) instead of `python`,
    which would pip-install erpprov into a fresh environment from the package index."""
    if shutil.which("pre-commit") is None or shutil.which("git") is None:
        pytest.skip("pre-commit (PyPI) and git are needed")
    repo = tmp_path / "repo"
    write_project(repo, PLAYBOOK % "shop")
    (repo / "playbooks" / "broken.yaml").write_text("- name: shop\n  hosts: all\n  databses: []\n")
    (repo / "notes.yaml").write_text("not: a playbook\n")
    (hook,) = _hooks()
    config = {"repos": [{"repo": "local", "hooks": [{**hook, "language": "system"}]}]}
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    env = {**erpprov_on_path(tmp_path / "bin"), "PRE_COMMIT_HOME": str(tmp_path / "cache"),
           "GIT_CONFIG_GLOBAL": str(tmp_path / "gitconfig"), "NO_COLOR": "1"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=120, check=False)

    run("git", "init", "-q")
    run("git", "add", ".")
    good = run("pre-commit", "run", "--files", "playbooks/dev.yaml", "notes.yaml")
    assert good.returncode == 0 and "erpprov validate" in good.stdout and "Passed" in good.stdout, good
    bad = run("pre-commit", "run", "--files", "playbooks/dev.yaml", "playbooks/broken.yaml")
    assert bad.returncode == 1 and "Failed" in bad.stdout, bad
    assert "broken.yaml:3" in bad.stdout and "databses" in bad.stdout, bad.stdout
    skipped = run("pre-commit", "run", "--files", "notes.yaml")
    assert skipped.returncode == 0 and "Skipped" in skipped.stdout, skipped
