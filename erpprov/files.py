"""Reading input files within bounds; writing files that may hold secrets: atomically, readable
by the owner only."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def write_private(path: Path, content: str | bytes, mode: int = 0o600) -> None:
    """Write to a temporary file beside ``path`` and rename it, so no half-written file is ever seen."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content.encode() if isinstance(content, str) else content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class NotARegularFile(OSError):
    """A FIFO, a device, a socket: reading it may block for ever or never end."""


def read_regular(path: Path | str, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of ``path`` (so a caller sees that it is too large, whatever
    size the file claims). Raises IsADirectoryError, NotARegularFile, or the OSError of the read."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{path} is a directory")
        if not stat.S_ISREG(mode):
            raise NotARegularFile(f"{path} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        return handle.read(limit + 1)
