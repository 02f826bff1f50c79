"""Ansible for the benchmark only: its own virtualenv in a cache directory, never the project's
environment. The `ansible` package bundles community.postgresql; the collection uses psycopg (3)
when importable and falls back to psycopg2, so psycopg2-binary is installed beside it."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench import venvs

PACKAGES = ["ansible", "psycopg2-binary"]


@dataclass
class Ansible:
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def playbook_command(self) -> Path:
        return self.venv / "bin" / "ansible-playbook"

    def env(self, home: Path) -> dict[str, str]:
        home.mkdir(parents=True, exist_ok=True)
        return {**os.environ, "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
                "ANSIBLE_REMOTE_TEMP": str(home / "tmp"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
                "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_LOCALHOST_WARNING": "0",
                "ANSIBLE_DEPRECATION_WARNINGS": "0", "ANSIBLE_SYSTEM_WARNINGS": "0",
                "ANSIBLE_HOST_KEY_CHECKING": "0", "PATH": f"{self.venv / 'bin'}:{os.environ.get('PATH', '')}"}

    def versions(self) -> dict[str, str]:
        code = ("import json, importlib.metadata as m, ansible_collections.community.postgresql as c, pathlib;"
                "mf = json.loads((pathlib.Path(c.__path__[0]) / 'MANIFEST.json').read_text());"
                "print(json.dumps({'ansible': m.version('ansible'), 'ansible-core': m.version('ansible-core'),"
                "'community.postgresql': mf['collection_info']['version'],"
                "'psycopg2': m.version('psycopg2-binary')}))")
        out = subprocess.run([str(self.python), "-c", code], capture_output=True, text=True, check=True, timeout=60)
        return json.loads(out.stdout)


def ensure_ansible(directory: Path | None = None, log=print) -> Ansible:
    """The benchmark's Ansible virtualenv, created (python -m venv + pip install) when missing."""
    target = Ansible((directory or venvs.cache_dir()) / "ansible-venv")
    venvs.ensure(target.venv, PACKAGES, target.versions, "Ansible", log)
    return target
