"""Small builders for tests: a project directory with an inventory and a playbook."""

from __future__ import annotations

import textwrap
from pathlib import Path

DEFAULT_INVENTORY = """
all:
  vars: {pg_user: postgres}
  children:
    dev:
      hosts:
        localhost: {driver: external, pg_port: 5432}
"""


def write_project(tmp: Path, playbook: str, inventory: str = DEFAULT_INVENTORY, env: str | None = None) -> Path:
    (tmp / "playbooks").mkdir(exist_ok=True)
    (tmp / "inventory.yaml").write_text(textwrap.dedent(inventory))
    path = tmp / "playbooks" / "site.yaml"
    path.write_text(textwrap.dedent(playbook))
    if env is not None:
        (tmp / ".env").write_text(textwrap.dedent(env))
    return path
