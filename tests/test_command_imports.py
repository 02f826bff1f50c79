"""Each command imports only what it uses: every heavy library costs tens of milliseconds at each
start. The real CLI entry runs in a fresh interpreter and reports the modules it ended with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import cli_environ, write_project

HEAVY = ("psycopg", "jinja2", "docker", "pglast", "pydantic", "yaml")

_PROBE = """
import contextlib, io, json, sys
from erpprov.cli import main
code = 0
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:], prog_name="erpprov")
    except SystemExit as exc:
        code = exc.code
print(json.dumps([code, sorted({m.split(".")[0] for m in sys.modules})]))
"""


def _loaded(cwd: Path, *args: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=60, cwd=cwd,
                         env=cli_environ())
    code, modules = json.loads(out.stdout.splitlines()[-1])
    assert code in (0, None), out.stderr
    return set(modules) & set(HEAVY)


PLAIN = """
- name: plain
  hosts: dev
  roles: [{name: app, login: true}]
  databases:
    - name: erp
      tables:
        - {name: t, columns: [{name: id, type: integer, primary_key: true}]}
"""


@pytest.mark.parametrize(("args", "playbook", "allowed"), [
    (("--help",), None, set()),
    (("validate", "--help"), None, set()),
    (("schema",), None, {"pydantic"}),
    (("validate", "playbooks/dev.yaml"), PLAIN, {"pydantic", "yaml", "pglast"}),
    (("validate", "playbooks/dev.yaml"), PLAIN.replace("name: app", "name: \"{{ 'app' }}\""),
     {"pydantic", "yaml", "pglast", "jinja2"}),
], ids=["help", "command-help", "schema", "validate", "validate-templates"])
def test_a_command_imports_only_what_it_uses(tmp_path, args, playbook, allowed):
    if playbook is not None:
        write_project(tmp_path, playbook)
    loaded = _loaded(tmp_path, *args)
    assert loaded <= allowed, f"{' '.join(args)} imported {sorted(loaded - allowed)}"
    if "jinja2" in allowed:
        assert "jinja2" in loaded  # the probe sees what a template brings in
