"""`erpprov init`: a new project with the shipped example inventory, playbook and template.

The example files are package data under erpprov/ops/skeleton/, copies of the repository's own
inventory.yaml, playbooks/dev.yaml (with its seed file) and templates/app.env.j2 (a test keeps them
identical), so a new project starts from exactly what the repository documents and tests.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from erpprov.errors import ErpprovError

# Project files copied from the package's skeleton/ directory (same relative paths).
SKELETON_FILES = ("inventory.yaml", "playbooks/dev.yaml", "playbooks/seed/orders.csv", "templates/app.env.j2")

ENV_EXAMPLE = """\
# Secrets for this project. Copy this file to .env (beside inventory.yaml) and set real values;
# .env is git-ignored and never committed. Variables set in the environment win over .env.

# Superuser password of the erp-postgres server (takes effect when the server is first created).
POSTGRES_PASSWORD=change-me

# Password of the application role myapp (erpprov sets and checks it).
MYAPP_PASSWORD=change-me

# Port on 127.0.0.1 the server listens on (optional, default 5432).
# ERP_PG_PORT=5432
"""

GITIGNORE = """\
# Secrets and machine-local state written by erpprov: never commit them.
.env
.env.app
dev-environment/
backups/
plan.json
"""


def project_files() -> dict[str, str]:
    """Relative path → content of every file a new project gets."""
    from erpprov.core.model import playbook_json_schema

    skeleton = resources.files("erpprov.ops") / "skeleton"
    files = {name: skeleton.joinpath(name).read_text(encoding="utf-8") for name in SKELETON_FILES}
    # The playbook's first line points editors at ../schema/playbook.schema.json: ship it too.
    files["schema/playbook.schema.json"] = json.dumps(playbook_json_schema(), indent=2, sort_keys=True) + "\n"
    files[".env.example"] = ENV_EXAMPLE
    files[".gitignore"] = GITIGNORE
    return files


def _mode(path: Path) -> int:
    """.env-like files are where people put secrets: owner only. The rest is for the team to read."""
    return 0o600 if path.name.startswith(".env") else 0o644


def _make_directories(directory: Path) -> None:
    """Create ``directory`` and missing parents as 0755, whatever the umask; existing ones are the
    user's and keep their mode."""
    if directory.is_dir():
        return
    _make_directories(directory.parent)
    directory.mkdir()
    os.chmod(directory, 0o755)


def init_project(directory: Path) -> list[Path]:
    """Write a new project into ``directory``; refuses (writing nothing) if any file exists."""
    if directory.exists() and not directory.is_dir():
        raise ErpprovError(f"{directory} exists and is not a directory")
    files = {directory / name: content for name, content in project_files().items()}
    existing = [path for path in files if path.exists() or path.is_symlink()]
    if existing:
        listed = "\n  ".join(str(p) for p in existing)
        raise ErpprovError(f"init never overwrites files; these already exist (nothing was written):\n  {listed}",
                           hint="run init in an empty directory, or move these files away")
    written: list[Path] = []
    try:
        for path, content in files.items():
            _make_directories(path.parent)
            # O_EXCL: a file that appeared meanwhile is not clobbered. The mode is set explicitly
            # because open() only narrows it by the umask: under umask 000 it would be 0666.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            written.append(path)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(fd, _mode(path))
                handle.write(content)
    except OSError as exc:
        for path in written:  # all or nothing
            path.unlink(missing_ok=True)
        raise ErpprovError(f"cannot write {exc.filename}: {exc.strerror}; nothing was kept") from None
    return written
