"""migra for the benchmark: a schema diff of two live databases (no playbook at all), the nearest
thing to a no-op plan that reads two catalogs. Its own virtualenv (bench.venvs); SQLAlchemy 2
reaches PostgreSQL through psycopg2 here, named in the URL."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from bench import venvs

PACKAGES = ["migra", "psycopg2-binary"]


@dataclass
class Migra:
    venv: Path

    @property
    def command(self) -> Path:
        return self.venv / "bin" / "migra"

    def argv(self, host: str, port: int, user: str, password: str, source: str, target: str) -> list[str]:
        """migra comparing database ``source`` with ``target``: exit 0 when they are the same, 2 when
        it prints statements; privileges compared too, as erpprov does."""
        def url(database: str) -> str:
            return f"postgresql+psycopg2://{quote(user)}:{quote(password)}@{host}:{port}/{database}"
        return [str(self.command), "--unsafe", "--with-privileges", url(source), url(target)]

    def versions(self) -> dict[str, str]:
        code = ("import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
                "('migra', 'schemainspect', 'SQLAlchemy', 'psycopg2-binary')}))")
        out = subprocess.run([str(self.venv / "bin" / "python"), "-c", code], capture_output=True, text=True,
                             check=True, timeout=60)
        return json.loads(out.stdout)


def ensure_migra(directory: Path | None = None, log=print) -> Migra:
    target = Migra((directory or venvs.cache_dir()) / "migra-venv")
    venvs.ensure(target.venv, PACKAGES, target.versions, "migra", log)
    return target
