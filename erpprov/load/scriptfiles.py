"""The SQL of each database's `scripts:` that names a file, read within bounds beside the playbook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from erpprov.core import model
from erpprov.errors import ErpprovError, Location
from erpprov.load.seedfiles import Locate, project_file
from erpprov.load.yamlsrc import read_bounded

MAX_SCRIPT_BYTES = 10 * 1024 * 1024


def attach_scripts(play: model.Play, locate: Locate, playbook: Path, project_dir: Path) -> None:
    for i, db in enumerate(play.databases):
        for j, script in enumerate(db.scripts):
            if script.file is None:
                continue
            def where(path: tuple[Any, ...] = ("databases", i, "scripts", j, "file")) -> Location:
                return locate(path)

            path = project_file(playbook.parent, script.file, project_dir, where)
            try:
                raw = read_bounded(path, "script", "scripts' files are relative to the playbook",
                                   MAX_SCRIPT_BYTES)
            except ErpprovError as exc:
                raise ErpprovError(exc.message, location=where(), hint=exc.hint) from None
            if len(raw) > MAX_SCRIPT_BYTES:
                raise ErpprovError(f"{script.file} is larger than {MAX_SCRIPT_BYTES // (1024 * 1024)} MiB",
                                   location=where())
            try:
                script._text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ErpprovError(f"{script.file} is not valid UTF-8 (byte {exc.start})", location=where()) from None
