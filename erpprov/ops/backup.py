"""Backup and restore of one database with pg_dump / psql / pg_restore, streamed through the driver.

The client programs run where the driver says (inside the container for docker, the local binaries
for local/external); this module only moves bytes and judges the outcome, so it is driver-agnostic.

Safety rules:
- a backup is written to a hidden temporary file beside its final name, fsynced, and linked into
  place only when pg_dump succeeded and its output is complete; on any failure it is deleted, so a
  file with a backup's name is always a whole backup. Backups hold data: mode 0600.
- a restore runs in one transaction and stops at the first error, so a failed restore leaves the
  database as it was; a file that could leave that transaction (COMMIT, psql meta-commands such
  as `\\!`) is refused before it runs (restorecheck.py; an archive is checked as pg_restore
  prints it). Restoring over a non-empty database needs an explicit yes.
- ownership and privileges are restored as dumped (no --no-owner / --no-acl): erpprov manages the
  roles, so they exist after `erpprov apply`; a missing role stops the restore with a clear error
  instead of silently handing every object to whoever ran the restore.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Literal

import psycopg
from psycopg import sql

from erpprov.core.target import Target
from erpprov.errors import ErpprovError
from erpprov.ops.restorecheck import check_plain_dump, check_script
from erpprov.postgres.connect import connection_hint

Progress = Callable[[str], None]
Format = Literal["plain", "custom"]

CUSTOM_MAGIC = b"PGDMP"  # first bytes of every pg_dump custom-format archive
PLAIN_HEADER = b"-- PostgreSQL database dump"
PLAIN_TRAILER = b"-- PostgreSQL database dump complete"
CHUNK = 1 << 20
PROGRESS_EVERY = 1.0  # seconds between two progress lines
STDERR_KEEP = 256 * 1024  # the client's last words are the ones that explain a failure
ERROR_LINES = 6  # lines of the client's stderr quoted in an error


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    sha256: str
    database: str
    format: Format


@dataclass(frozen=True)
class RestoreResult:
    database: str
    size: int
    format: Format
    created: bool  # restored into a database created for it (--into)


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - unreachable, keeps type checkers calm


# --- streaming helpers ---------------------------------------------------------------------


class _Tail(threading.Thread):
    """Drains one pipe so the child never blocks on a full pipe; keeps only its last bytes."""

    def __init__(self, stream: IO[bytes] | None, keep: int = STDERR_KEEP):
        super().__init__(daemon=True)
        self.stream = stream
        self.keep = keep
        self.chunks: collections.deque[bytes] = collections.deque()
        self.size = 0

    def run(self) -> None:
        if self.stream is None:
            return
        while chunk := self.stream.read1(65536):  # type: ignore[attr-defined]
            if not self.keep:
                continue
            self.chunks.append(chunk)
            self.size += len(chunk)
            while self.size - len(self.chunks[0]) >= self.keep:
                self.size -= len(self.chunks.popleft())

    def text(self) -> str:
        self.join(timeout=10)
        return b"".join(self.chunks).decode(errors="replace")


class _Throttle:
    """Calls ``progress`` at most every PROGRESS_EVERY seconds (and always for the final line)."""

    def __init__(self, progress: Progress | None):
        self.progress = progress
        self.last = time.monotonic()

    def __call__(self, text: str, *, final: bool = False) -> None:
        now = time.monotonic()
        if self.progress is not None and (final or now - self.last >= PROGRESS_EVERY):
            self.last = now
            self.progress(text)


def _start(target: Target, argv: list[str]) -> subprocess.Popen[bytes]:
    from erpprov.drivers import make_driver

    return make_driver(target).client_process(argv)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a client we started and that is still running (after an interrupt or a local failure)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _client_failure(stderr: str) -> tuple[str, str | None]:
    """The lines of a client's stderr that say what went wrong, and a hint for the usual causes."""
    lines = [line.rstrip() for line in stderr.strip().splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if re.search(r"\b(ERROR|FATAL|error):", line)]
    start = errors[0] if errors else max(0, len(lines) - ERROR_LINES)
    quoted = "\n  ".join(lines[start:start + ERROR_LINES]) or "(no message)"
    return quoted, connection_hint(stderr) or _client_hint(stderr)


def _client_hint(stderr: str) -> str | None:
    """What a client program meets once connected (the connection's own failures are in
    `connection_hint`)."""
    lower = stderr.lower()
    if "permission denied" in lower or "must be owner" in lower:
        return "connect as a role that may read/create every object (pg_user in the inventory), e.g. the superuser"
    if re.search(r"role \S+ does not exist", lower):
        return "the dump names roles this server lacks; create them first (`erpprov apply`)"
    if re.search(r'database ".*" does not exist', stderr):
        return "check --db (default: the play's first database); `erpprov apply` creates the play's databases"
    if "server version mismatch" in lower:
        return "the local pg_dump is older than the server; install the client programs of the server's version"
    return None


# --- backup --------------------------------------------------------------------------------


def default_backup_path(target: Target, database: str, fmt: Format, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now()).strftime("%Y%m%d_%H%M%S")
    return target.project_dir / "backups" / f"{database}_{stamp}.{'dump' if fmt == 'custom' else 'sql'}"


def pg_dump_argv(database: str, fmt: Format) -> list[str]:
    argv = ["pg_dump", "--no-password", f"--format={'custom' if fmt == 'custom' else 'plain'}"]
    if fmt == "plain":
        # A plain dump can only be restored over an existing database when it drops what it
        # recreates; IF EXISTS keeps it restorable into an empty database too. (Custom archives
        # get the same from pg_restore --clean --if-exists at restore time.)
        argv += ["--clean", "--if-exists"]
    return argv + ["--dbname", database]


def backup(target: Target, *, database: str, out: Path | None = None, fmt: Format = "plain",
           progress: Progress | None = None) -> BackupResult:
    """Dump ``database`` to ``out`` (default backups/<db>_<stamp>.sql|.dump under the project)."""
    if fmt not in ("plain", "custom"):
        raise ErpprovError(f"unknown backup format {fmt!r}", hint="use plain or custom")
    path = (out or default_backup_path(target, database, fmt)).absolute()
    if path.exists():
        raise ErpprovError(f"{path} already exists; a backup never overwrites a file",
                           hint="choose another name with -o, or move the old file away")
    _make_backup_dir(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    tmp = Path(tmp_name)  # mkstemp creates it 0600: the data is never readable by others, even half-written
    try:
        with os.fdopen(fd, "wb") as handle:
            size, digest = _dump_into(target, database, fmt, handle, _Throttle(progress))
            handle.flush()
            os.fsync(handle.fileno())
        _check_complete(tmp, fmt, size)
        _publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if progress is not None:
        progress(f"wrote {human_size(size)} to {path}")
    return BackupResult(path=path, size=size, sha256=digest, database=database, format=fmt)


def _make_backup_dir(directory: Path) -> None:
    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ErpprovError(f"cannot create {directory}: {exc.strerror}") from None
    if created:
        directory.chmod(0o700)  # a directory of our own making holds only backups: keep it private


def _dump_into(target: Target, database: str, fmt: Format, handle: IO[bytes],
               throttle: _Throttle) -> tuple[int, str]:
    proc = _start(target, pg_dump_argv(database, fmt))
    # read1 needs the buffered pipe Popen makes by default
    assert proc.stdin is not None and isinstance(proc.stdout, io.BufferedReader)
    proc.stdin.close()  # pg_dump reads nothing
    stderr = _Tail(proc.stderr)
    stderr.start()
    digest = hashlib.sha256()
    size = 0
    try:
        while chunk := proc.stdout.read1(CHUNK):
            handle.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            throttle(f"backup of {database}: {human_size(size)} written")
        code = proc.wait()
    except BaseException:
        _stop(proc)
        raise
    if code != 0:
        quoted, hint = _client_failure(stderr.text())
        raise ErpprovError(f"backup of {database} failed (pg_dump exit {code}); no backup file was written:\n"
                           f"  {quoted}", hint=hint)
    throttle(f"backup of {database}: {human_size(size)} written", final=True)
    return size, digest.hexdigest()


def _check_complete(path: Path, fmt: Format, size: int) -> None:
    """pg_dump said it succeeded; still check the bytes look whole (a lost exit code, a cut pipe)."""
    with path.open("rb") as handle:
        head = handle.read(len(CUSTOM_MAGIC))
        handle.seek(max(0, size - 4096))
        tail = handle.read()
    whole = head == CUSTOM_MAGIC if fmt == "custom" else PLAIN_TRAILER in tail
    if not whole:
        raise ErpprovError("pg_dump's output is incomplete (no end-of-dump marker); no backup file was written")


def _publish(tmp: Path, path: Path) -> None:
    """Give the finished file its name without ever replacing another file, and make it durable."""
    try:
        os.link(tmp, path)  # atomic and refuses an existing name, unlike rename
        tmp.unlink()
    except FileExistsError:
        raise ErpprovError(f"{path} appeared while the backup ran; it was left alone and the new backup "
                           "discarded", hint="run the backup again with another -o name") from None
    except OSError:  # file systems without hard links
        if path.exists():
            raise ErpprovError(f"{path} appeared while the backup ran; it was left alone") from None
        os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the new name itself survives a crash
    finally:
        os.close(dir_fd)


# --- restore -------------------------------------------------------------------------------


def detect_format(file: Path) -> Format:
    """custom when the file starts with PGDMP, else plain SQL; refuses what cannot be a dump."""
    try:
        with file.open("rb") as handle:
            head = handle.read(65536)
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            tail = handle.read()
    except FileNotFoundError:
        raise ErpprovError(f"backup file not found: {file}") from None
    except IsADirectoryError:
        raise ErpprovError(f"{file} is a directory, not a backup file") from None
    except PermissionError:
        raise ErpprovError(f"cannot read {file}: permission denied") from None
    if not head:
        raise ErpprovError(f"{file} is empty; it is not a backup")
    if head.startswith(CUSTOM_MAGIC):
        return "custom"
    if b"\x00" in head:
        raise ErpprovError(f"{file} is neither a pg_dump archive nor SQL text (it holds binary data)")
    # psql would commit whatever a cut-off dump still holds (missing tables, constraints, data);
    # a file that pg_dump wrote but that lacks its closing line must not be restored at all.
    if PLAIN_HEADER in head[:4096] and PLAIN_TRAILER not in tail:
        raise ErpprovError(f"{file} is a truncated pg_dump file (its end-of-dump line is missing); "
                           "nothing was restored", hint="restore from another backup")
    return "plain"


def restore(target: Target, file: Path, *, database: str, into: str | None = None, yes: bool = False,
            confirm: Callable[[str], bool] | None = None, progress: Progress | None = None) -> RestoreResult:
    """Restore ``file`` into ``database``, or into the new database ``into``. One transaction:
    on failure nothing changed (a database created for ``into`` is dropped again)."""
    fmt = detect_format(file)
    # Before anything is changed, even the database made for --into
    if fmt == "plain":
        check_plain_dump(file)
    else:
        _check_archive(target, file, into or database)
    size = file.stat().st_size
    name = into or database
    created = _prepare(target, database, into, yes, confirm)
    try:
        _run_restore(target, file, name, fmt, size, _Throttle(progress))
    except ErpprovError as exc:
        if created and not _drop_database(target, name):
            leftover = (f"the empty database {name} made for the restore could not be dropped again; "
                        f"drop it yourself (DROP DATABASE {name})")
            raise ErpprovError(exc.message, hint=f"{exc.hint}; {leftover}" if exc.hint else leftover) from None
        raise
    except BaseException:  # Ctrl-C: the client was stopped, its transaction rolled back
        if created:
            _drop_database(target, name)
        raise
    return RestoreResult(database=name, size=size, format=fmt, created=created)


def _prepare(target: Target, database: str, into: str | None, yes: bool,
             confirm: Callable[[str], bool] | None) -> bool:
    """Check the destination and create it for ``into``; True when a database was created."""
    from erpprov.postgres.connect import connect

    with connect(target.connection) as admin:
        if into is not None:
            if _exists(admin, into):
                raise ErpprovError(f"database {into} already exists; --into restores into a new database only",
                                   hint=f"choose another name, or restore into it with --db {into}")
            # template0: exactly what pg_dump's output expects, whatever was added to template1
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(into)))
            return True
        if not _exists(admin, database):
            raise ErpprovError(f"database {database} does not exist on {target.host}",
                               hint=f"create it with `erpprov apply`, or restore into a new one with --into {database}")
    objects = _user_objects(target, database)
    if objects:
        question = (f"{database} on {target.host} is not empty ({objects} objects); the restore replaces the "
                    f"objects the backup holds and their data. Continue?")
        if not (yes or (confirm is not None and confirm(question))):
            raise ErpprovError(f"refusing to restore into {database}: it is not empty ({objects} objects) and "
                               "the restore would replace their contents; nothing was changed",
                               hint="pass --yes to replace them, or restore into a new database with --into NAME")
    return False


def _exists(admin: psycopg.Connection, database: str) -> bool:
    return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is not None


# Objects a user made: relations, functions, types of their own, schemas other than public,
# extensions other than plpgsql. One query, whatever the size of the database.
_USER_OBJECTS = """
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%')
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%')
     + (SELECT count(*) FROM pg_namespace
         WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'public') AND nspname NOT LIKE 'pg\\_%%')
     + (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql')
"""


def _user_objects(target: Target, database: str) -> int:
    from erpprov.postgres.connect import connect

    with connect(target.connection, database) as conn:
        row = conn.execute(_USER_OBJECTS).fetchone()
    return int(row[0]) if row else 0


def _drop_database(target: Target, database: str) -> bool:
    """Drop the database made for a failed --into restore; False when that failed too."""
    from erpprov.postgres.connect import connect

    try:
        with connect(target.connection) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    except (ErpprovError, psycopg.Error):  # the restore's own error stays the one reported
        return False
    return True


def restore_argv(database: str, fmt: Format) -> list[str]:
    if fmt == "custom":
        # --clean --if-exists: objects of the archive replace their live namesakes (a no-op on an
        # empty database); --single-transaction implies stopping at the first error.
        return ["pg_restore", "--no-password", "--exit-on-error", "--single-transaction", "--clean", "--if-exists",
                "--dbname", database]
    # -X: no ~/.psqlrc; the SET hides the NOTICEs of a dump's DROP ... IF EXISTS on a fresh database
    return ["psql", "--no-password", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
            "--dbname", database, "-c", "SET client_min_messages = warning", "-f", "-"]


def _send(file: Path, stdin: IO[bytes], sent: Callable[[int], None] = lambda size: None) -> None:
    """Stream ``file`` into a client's stdin; ``sent`` hears how much went so far."""
    total = 0
    with file.open("rb") as source:
        while chunk := source.read(CHUNK):
            try:
                stdin.write(chunk)
            except BrokenPipeError:  # the client stopped at an error; its stderr says which
                break
            total += len(chunk)
            sent(total)
    with contextlib.suppress(BrokenPipeError):
        stdin.close()


def _check_archive(target: Target, file: Path, database: str) -> None:
    """pg_restore runs each entry of an archive as it stands: an entry holding COMMIT would end the
    restore's transaction as in a plain file. So the archive is first checked as pg_restore prints
    it (a script, nothing connected to), with the same rules as a plain file."""
    proc = _start(target, ["pg_restore", "--file=-"])
    assert proc.stdin is not None and proc.stdout is not None
    stderr = _Tail(proc.stderr)
    stderr.start()
    feeder = threading.Thread(target=_send, args=(file, proc.stdin), daemon=True)  # pipes both ways at once
    feeder.start()
    try:
        check_script(proc.stdout, f"{file} (as pg_restore prints it)")
        code = proc.wait()
    except BaseException:
        _stop(proc)
        raise
    finally:
        feeder.join(timeout=10)
    if code != 0:
        raise _restore_error(file, database, "custom", stderr.text())


def _run_restore(target: Target, file: Path, database: str, fmt: Format, size: int, throttle: _Throttle) -> None:
    proc = _start(target, restore_argv(database, fmt))
    assert proc.stdin is not None
    stdout, stderr = _Tail(proc.stdout, keep=0), _Tail(proc.stderr)  # psql prints SELECT results: discard
    stdout.start()
    stderr.start()
    try:
        _send(file, proc.stdin, lambda sent: throttle(f"restore into {database}: {human_size(sent)} of "
                                                      f"{human_size(size)}"))
        code = proc.wait()
    except BaseException:
        _stop(proc)
        raise
    if code != 0:
        raise _restore_error(file, database, fmt, stderr.text())
    throttle(f"restore into {database}: {human_size(size)} of {human_size(size)}", final=True)


def _restore_error(file: Path, database: str, fmt: Format, stderr: str) -> ErpprovError:
    stderr = stderr.replace("psql:<stdin>:", f"psql:{file}:")
    quoted, hint = _client_failure(stderr)
    statement = _failed_line(file, stderr) if fmt == "plain" else None
    if statement:
        quoted += f"\n  the failing statement, {statement}"
    if "already exists" in stderr and fmt == "plain":
        hint = ("this plain dump does not drop what it recreates (made without --clean); restore it into a new "
                "database with --into NAME")
    if fmt == "custom" and re.search(r"(end of file|did not find magic|unsupported version|could not read|"
                                     r"corrupt|invalid)", stderr, re.IGNORECASE) and hint is None:
        hint = "the archive is damaged or truncated; restore from another backup"
    return ErpprovError(f"restore of {file} into {database} failed; nothing was changed (it ran in one "
                        f"transaction):\n  {quoted}", hint=hint)


def _failed_line(file: Path, stderr: str) -> str | None:
    """Where the statement psql reported (psql:FILE:LINE: ERROR) begins, and its first line.

    psql reports the line a statement ENDS on (its `;`, or the `\\.` of COPY data), which for a
    multi-line CREATE is a bare `);`. A light scan of the file (statements end with `;` outside
    dollar quotes, COPY data ends with `\\.`) finds where it began."""
    match = re.search(r"^psql:.*?:(\d+): (?:ERROR|FATAL):", stderr, re.MULTILINE)
    if not match:
        return None
    wanted = int(match.group(1))
    begin, first, in_copy, dollar = 0, "", False, None
    with file.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.decode(errors="replace").rstrip("\r\n")
            if not begin and line.strip() and not line.lstrip().startswith("--"):
                begin, first = number, line.strip()
            if number == wanted:
                break
            if in_copy:
                in_copy = line != "\\."
                if not in_copy:
                    begin = 0
                continue
            for tag in _DOLLAR_TAG.findall(line):
                dollar = None if dollar == tag else (dollar or tag)
            if dollar is None and line.rstrip().endswith(";"):
                in_copy = bool(_COPY_FROM_STDIN.match(line))
                if not in_copy:
                    begin = 0
        else:
            return None
    if not begin:
        return None
    first = first if len(first) <= 200 else first[:200] + "..."
    return f"line {begin}: {first}" if begin == wanted else f"lines {begin}-{wanted}, beginning: {first}"


_DOLLAR_TAG = re.compile(r"\$[A-Za-z_][A-Za-z_0-9]*\$|\$\$")
_COPY_FROM_STDIN = re.compile(r"^COPY .* FROM stdin;$")
