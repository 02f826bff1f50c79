"""`erpprov init`: the scaffold is the repository's own example, validates, and never overwrites."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from erpprov.errors import ErpprovError
from erpprov.ops.scaffold import SKELETON_FILES, init_project
from tests.helpers import REPO, erpprov

DEV_ENVIRONMENT = ("POSTGRES_PASSWORD", "MYAPP_PASSWORD", "ERP_PG_PORT")  # a developer's shell may set them
SKELETON = REPO / "erpprov" / "ops" / "skeleton"
EXPECTED = sorted([*SKELETON_FILES, "schema/playbook.schema.json", ".env.example", ".gitignore"])


@pytest.mark.parametrize("name", SKELETON_FILES)
def test_skeleton_is_identical_to_the_repository_files(name: str) -> None:
    """The shipped example must not drift from the files the repository documents and tests."""
    original = REPO / name
    if not original.exists():
        pytest.skip("not run from a source checkout")
    assert (SKELETON / name).read_bytes() == original.read_bytes(), \
        f"copy {name} to erpprov/ops/skeleton/{name} (they must stay identical)"


def test_shipped_schema_is_the_committed_one(tmp_path: Path) -> None:
    init_project(tmp_path)
    committed = REPO / "schema" / "playbook.schema.json"
    if not committed.exists():
        pytest.skip("not run from a source checkout")
    assert (tmp_path / "schema" / "playbook.schema.json").read_text() == committed.read_text()


def test_init_writes_a_project_that_validates(tmp_path: Path) -> None:
    project = tmp_path / "new-project"
    written = init_project(project)
    assert sorted(str(p.relative_to(project)) for p in written) == EXPECTED
    for name in SKELETON_FILES:
        assert (project / name).read_bytes() == (SKELETON / name).read_bytes()
    env_example = (project / ".env.example").read_text()
    assert "POSTGRES_PASSWORD=" in env_example and "MYAPP_PASSWORD=" in env_example
    done = erpprov(project, "validate", drop_env=DEV_ENVIRONMENT)
    assert done.returncode == 0, done.stderr
    assert "playbooks/dev.yaml: valid (1 play, hosts: localhost)" in done.stdout
    # the whole example, as a reviewer would see it
    offline = erpprov(project, "plan", "--offline", drop_env=DEV_ENVIRONMENT)
    assert offline.returncode == 0, offline.stderr
    assert "users" in offline.stdout and "mypassword" not in offline.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_gitignore_keeps_secrets_and_state_out(tmp_path: Path) -> None:
    init_project(tmp_path)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    ignored = [".env", ".env.app", "dev-environment/volumes/postgres/PG_VERSION", "backups/erp_1.sql", "plan.json"]
    kept = [".env.example", "inventory.yaml", "playbooks/dev.yaml", "templates/app.env.j2"]
    check = subprocess.run(["git", "-C", str(tmp_path), "check-ignore", "--no-index", *ignored, *kept],
                           capture_output=True, text=True, check=False)
    assert sorted(check.stdout.split()) == sorted(ignored)


def test_init_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "inventory.yaml").write_text("mine\n")
    (tmp_path / ".gitignore").write_text("*.pyc\n")
    with pytest.raises(ErpprovError) as info:
        init_project(tmp_path)
    message = str(info.value)
    assert "nothing was written" in message
    assert str(tmp_path / "inventory.yaml") in message and str(tmp_path / ".gitignore") in message
    assert str(tmp_path / "playbooks") not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gitignore", "inventory.yaml"]
    assert (tmp_path / "inventory.yaml").read_text() == "mine\n"


def test_init_into_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ErpprovError, match="not a directory"):
        init_project(tmp_path / "afile")


def test_cli_init(tmp_path: Path) -> None:
    from erpprov.cli.commands.init import init_cmd

    runner = CliRunner()
    target = tmp_path / "proj"
    first = runner.invoke(init_cmd, [str(target)])
    assert first.exit_code == 0, first.output
    assert f"created {target / 'inventory.yaml'}" in first.output and "erpprov apply" in first.output
    second = runner.invoke(init_cmd, [str(target)])
    assert second.exit_code == 1
    assert "error: init never overwrites files" in second.output and "Traceback" not in second.output
    with runner.isolated_filesystem(temp_dir=tmp_path):
        here = runner.invoke(init_cmd, [])
        assert here.exit_code == 0, here.output
        assert Path("playbooks/dev.yaml").is_file()


def test_init_modes_do_not_depend_on_the_umask(tmp_path: Path) -> None:
    """Under umask 000 a plain open() would leave the project world-writable."""
    project = tmp_path / "proj"
    previous = os.umask(0)
    try:
        written = init_project(project)
    finally:
        os.umask(previous)
    modes = {str(p.relative_to(project)): p.stat().st_mode & 0o777 for p in written}
    assert modes == {name: 0o600 if name.startswith(".env") else 0o644 for name in EXPECTED}
    for directory in ("", "playbooks", "templates", "schema"):
        assert (project / directory).stat().st_mode & 0o777 == 0o755, directory
