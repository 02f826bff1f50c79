"""Tools the benchmark compares erpprov with, each in its own virtualenv in a cache directory,
never the project's environment: their dependencies (psycopg2, SQLAlchemy, ansible-core) are not
erpprov's, and installing them beside it could change what is measured."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Callable
from pathlib import Path


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "erpprov-bench"


def ensure(path: Path, packages: list[str], works: Callable[[], object], what: str, log=print) -> None:
    """The virtualenv at ``path`` with ``packages``, created (python -m venv + pip install) when
    ``works()`` raises; ``works`` is asked again at the end."""
    try:
        works()
        return
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        pass
    log(f"creating a virtualenv for {what} ({' '.join(packages)}); this happens once")
    if not (path / "bin" / "python").is_file():
        venv.EnvBuilder(with_pip=True).create(path)
    subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *packages], check=True, timeout=1800, stdout=sys.stderr)
    works()
