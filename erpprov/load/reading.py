"""Reading input files within bounds: a playbook, a vars file or a lookup('file') may name a
FIFO, a device or something huge."""

from __future__ import annotations

import os
import stat
from pathlib import Path


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
