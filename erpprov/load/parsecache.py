"""Parsed YAML kept between runs, in the spirit of Python's .pyc: a second plan of an unchanged
large playbook reads its values back as JSON (about ten times faster than parsing the YAML)
instead of parsing it again.

An entry is named by the digest of the file's bytes, erpprov's version and this loader's own code,
so a changed file or a changed loader never meets an old entry. It holds the file's values and
nothing else: nothing rendered, no variable, no `.env`, no `-e` value, so no secret can land in
it that the file itself does not hold. JSON, not pickle: reading an entry cannot run code.
Entries are trusted no more than a file the user could have edited: one that is not a regular
file owned by this user, or is writable by others, or sits in such a directory, is ignored, and
so is one that does not parse or names other bytes. Every failure to read or write is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from erpprov import __version__

FORMAT = 1
KEEP = 32  # entries kept, the newest: each edit of a large playbook makes a new one
_enabled = True
_code_digest: str | None = None


def disable() -> None:
    """No reading or writing of entries for the rest of the process (`--no-cache`)."""
    global _enabled
    _enabled = False


def directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "erpprov" / "yaml"


def _key(raw: bytes) -> str:
    global _code_digest
    if _code_digest is None:  # the loader that built an entry must be the one reading it
        loader = hashlib.sha256(__version__.encode())
        for name in ("yamlsrc.py", "parsecache.py"):
            loader.update(Path(__file__).with_name(name).read_bytes())
        _code_digest = loader.hexdigest()
    return hashlib.sha256(_code_digest.encode() + b"\0" + raw).hexdigest()


def _ours(mode: int, uid: int) -> bool:
    return uid == os.geteuid() and not mode & (stat.S_IWGRP | stat.S_IWOTH)


def _safe_directory(path: Path) -> bool:
    """``path`` and its parent (the erpprov cache directory): real directories of this user's that
    nobody else may write to."""
    for part in (path, path.parent):
        try:
            info = os.lstat(part)
        except OSError:
            return False
        if not stat.S_ISDIR(info.st_mode) or not _ours(info.st_mode, info.st_uid):
            return False
    return True


def get(raw: bytes) -> tuple[bool, Any]:
    """(True, values) of the file whose bytes are ``raw``, or (False, None)."""
    if not _enabled:
        return False, None
    folder = directory()
    if not _safe_directory(folder):
        return False, None
    key = _key(raw)
    try:
        fd = os.open(folder / f"{key}.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False, None
    try:
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or not _ours(info.st_mode, info.st_uid):
                return False, None
            entry = json.loads(handle.read())
    except (OSError, ValueError, RecursionError):
        return False, None
    if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("key") != key or "data" not in entry:
        return False, None
    return True, entry["data"]


def has(raw: bytes) -> bool:
    """Whether an entry for ``raw`` is there to be read (without reading it)."""
    if not _enabled or not _safe_directory(directory()):
        return False
    try:
        info = os.lstat(directory() / f"{_key(raw)}.json")
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and _ours(info.st_mode, info.st_uid)


def put(raw: bytes, data: Any) -> None:
    """Keep ``data`` as the values of ``raw``: atomically, readable by this user only."""
    if not _enabled:
        return
    folder = directory()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _safe_directory(folder):
            return
        payload = json.dumps({"format": FORMAT, "key": _key(raw), "data": data}, ensure_ascii=False,
                             separators=(",", ":"))
        fd, tmp = tempfile.mkstemp(prefix=".entry-", dir=folder)  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload)
            os.replace(tmp, folder / f"{_key(raw)}.json")
        except BaseException:
            os.unlink(tmp)
            raise
        _evict(folder)
    except (OSError, ValueError, RecursionError):
        return  # a cache that cannot be written is only slower


def _evict(folder: Path) -> None:
    """All but the KEEP newest entries go."""
    entries = sorted(((entry.stat().st_mtime_ns, entry) for entry in folder.glob("*.json")), reverse=True)
    for _, entry in entries[KEEP:]:
        entry.unlink(missing_ok=True)
