import json
import subprocess
import sys

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from erpprov.cli import main
from tests.helpers import REPO, erpprov, write_project


def test_version():
    out = erpprov(REPO, "--version")
    assert out.returncode == 0
    assert out.stdout.startswith("erpprov, version ")


def test_every_command_has_help():
    runner = CliRunner()
    for name in main.commands:
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Usage:" in result.output and main.commands[name].help.split()[0] in result.output


def test_heavy_modules_load_only_when_a_command_needs_them():
    """`--help` imports no driver, database or template library; a plan of a playbook without
    templates needs no Jinja2 (each costs tens of milliseconds at every start)."""
    probe = ("import sys, erpprov.cli, erpprov.plan.build, erpprov.apply.host\n"
             "from erpprov.load.project import load_project\n"
             "print(' '.join(m for m in ('docker', 'jinja2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == []
    probe = "import sys, erpprov.cli\nprint(' '.join(m for m in ('psycopg', 'pydantic', 'yaml') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == []


def test_validate_error_is_one_message_with_location_and_no_traceback(tmp_path):
    write_project(tmp_path, "- name: p\n  hosts: all\n  roles:\n    - {name: a, superuesr: true}\n")
    out = erpprov(tmp_path, "validate", "playbooks/dev.yaml")
    assert out.returncode == 1
    assert out.stderr.startswith("error: playbooks/dev.yaml:4:")
    assert "unknown key 'superuesr'" in out.stderr and "did you mean 'superuser'?" in out.stderr
    assert "Traceback" not in out.stderr


def test_verbose_shows_the_traceback(tmp_path):
    write_project(tmp_path, "- name: p\n  roles: [{name: '{{ nope }}'}]\n")
    out = erpprov(tmp_path, "validate", "-v", "playbooks/dev.yaml")
    assert out.returncode == 1
    assert "Traceback" in out.stderr


def test_missing_default_playbook(tmp_path):
    out = erpprov(tmp_path, "validate")
    assert out.returncode == 1
    assert "not found" in out.stderr


def test_schema_command_matches_committed_file_and_validates_playbooks():
    out = erpprov(REPO, "schema")
    assert out.returncode == 0
    schema = json.loads(out.stdout)
    committed = json.loads((REPO / "schema/playbook.schema.json").read_text())
    assert schema == committed, "run `erpprov schema -o schema/playbook.schema.json` after changing the model"
    jsonschema.Draft202012Validator.check_schema(schema)
    playbook = yaml.safe_load((REPO / "playbooks/dev.yaml").read_text())
    jsonschema.validate(playbook, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{"name": "p", "roles": [{"name": "a", "logn": True}]}], schema)


def test_shipped_playbook_points_editors_at_the_schema():
    first = (REPO / "playbooks/dev.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schema/playbook.schema.json"
