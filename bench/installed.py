"""erpprov as a user's install runs it (`python -m bench --installed`): a virtualenv of its own
holding the checkout's package, byte-compiled, as `pip install .` leaves it.

Its dependencies are this environment's, on the virtualenv's path as plain directories: the same
code, without this environment's own start-up (the `.pth` hooks of its site-packages, such as an
editable install's import finder), which every process of its interpreter pays before erpprov's
first line and which a virtualenv of erpprov's own does not have."""

from __future__ import annotations

import compileall
import shutil
import site
import subprocess
import venv
from pathlib import Path

import erpprov

PTH = "erpprov-bench-dependencies.pth"


def installed_python(workdir: Path) -> str:
    """The interpreter of a fresh virtualenv in ``workdir`` that imports the checkout's erpprov."""
    target = workdir / "installed"
    venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(target)
    python = target / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    package = Path(erpprov.__file__).parent
    shutil.copytree(package, purelib / "erpprov", ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(purelib / "erpprov", quiet=1)
    # A .pth line puts a directory on the path without running the .pth files inside it.
    (purelib / PTH).write_text("".join(f"{path}\n" for path in site.getsitepackages()))
    found = subprocess.run([str(python), "-c", "import erpprov, psycopg; print(erpprov.__file__)"],
                           capture_output=True, text=True, check=True, cwd=workdir).stdout.strip()
    if not found.startswith(str(purelib)):
        raise RuntimeError(f"the virtualenv imports erpprov from {found}, not from its own install")
    return str(python)
