"""An embedded PostgreSQL cluster run with initdb/pg_ctl: the `local` driver's engine and the
test suite's throwaway server.

Binaries come from PATH, `pg_config --bindir`, the system's PostgreSQL directories, or the
`pgserver` package. initdb refuses to run as root, so as root the cluster runs as an unprivileged
system user (postgres, else nobody) that owns the data directory.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from erpprov.errors import ErpprovError

MARKER = "erpprov-cluster"  # written into clusters we create, so we never manage someone else's


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path.parent.name)) or (0,)


def find_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres, newest system install first."""
    candidates: list[Path] = []
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(os.path.realpath(initdb)).parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    for root in (Path("/usr/lib/postgresql"), Path("/usr/local/pgsql"), Path("/opt/homebrew/opt")):
        candidates.extend(sorted(root.glob("*/bin"), key=_version_key, reverse=True) if root.is_dir() else [])
    spec = importlib.util.find_spec("pgserver")
    if spec and spec.submodule_search_locations:
        candidates.extend(Path(p) / "pginstall" / "bin" for p in spec.submodule_search_locations)
    for directory in candidates:
        if all((directory / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    raise ErpprovError(
        "no PostgreSQL server binaries found (initdb, pg_ctl, postgres)",
        hint="install PostgreSQL (e.g. apt-get install postgresql) or `pip install pgserver`",
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _run_user() -> pwd.struct_passwd | None:
    """None when we are not root; otherwise the account the server should run as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ErpprovError("running as root, but no 'postgres' or 'nobody' account exists to run PostgreSQL as")


@dataclass
class LocalCluster:
    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    superuser: str = "postgres"
    bindir: Path | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).absolute()
        self.bindir = self.bindir or find_bindir()
        self.user = _run_user()
        if self.user is not None and not self._usable(self.bindir):
            self.bindir = self._shared_copy(self.bindir)

    def _usable(self, bindir: Path) -> bool:
        """Whether the account the server runs as can execute these binaries."""
        try:
            return self._run(["postgres", "--version"], bindir=bindir).returncode == 0
        except ErpprovError:
            return False

    def _shared_copy(self, bindir: Path) -> Path:
        """Binaries under root's home (pgserver in root's virtualenv) are out of the server account's
        reach; a copy of the installation beside the data directory is not."""
        target = self.data_dir.parent / ".erpprov-postgresql"
        # Wheels keep their shared libraries in a sibling "<package>.libs" folder found through a
        # relative RPATH, so the copy mirrors <package>/<install> and <package>.libs side by side.
        install, package = bindir.parent, bindir.parent.parent
        copied_bin = target / package.name / install.name / "bin"
        if not (copied_bin / "postgres").is_file():
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(install, partial / package.name / install.name, symlinks=True)
            libs = package.with_name(package.name + ".libs")
            if libs.is_dir():
                shutil.copytree(libs, partial / libs.name, symlinks=True)
            for folder in (partial, partial / package.name):
                folder.chmod(0o755)
            os.replace(partial, target)
        if not self._usable(copied_bin):
            raise ErpprovError(
                f"the PostgreSQL binaries cannot be run by the {self.user.pw_name if self.user else ''} account",
                hint=f"make {self.data_dir.parent} reachable by it, or install PostgreSQL system-wide",
            )
        return copied_bin

    @property
    def log_file(self) -> Path:
        return self.data_dir / "log" / "server.log"

    def _run(self, args: list[str], *, timeout: float = 120, bindir: Path | None = None
             ) -> subprocess.CompletedProcess[str]:
        bindir = bindir or self.bindir
        assert bindir is not None
        cmd = [str(bindir / args[0]), *args[1:]]
        user = self.user
        try:  # None for user, group and extra_groups leaves them as they are
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/", env=_server_environ(),
                                  check=False, user=user.pw_uid if user else None, group=user.pw_gid if user else None,
                                  extra_groups=[] if user else None)
        except (PermissionError, FileNotFoundError):
            raise ErpprovError(
                f"cannot run {cmd[0]} as user {self.user.pw_name if self.user else os.getuid()}",
                hint="as root, the PostgreSQL binaries must be readable by the postgres account",
            ) from None
        except subprocess.TimeoutExpired:
            raise ErpprovError(f"{args[0]} did not finish within {timeout:.0f}s") from None

    # --- state -------------------------------------------------------------------------------

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    @property
    def ours(self) -> bool:
        return (self.data_dir / MARKER).is_file()

    @property
    def major_version(self) -> str | None:
        try:
            return (self.data_dir / "PG_VERSION").read_text().strip()
        except OSError:
            return None

    def running(self) -> bool:
        if not self.initialized:
            return False
        return self._run(["pg_ctl", "status", "-D", str(self.data_dir)]).returncode == 0

    # --- lifecycle ---------------------------------------------------------------------------

    def init(self, password: str, *, durable: bool = True) -> None:
        """Create the cluster: scram-sha-256 over TCP, no Unix socket, a marker that it is ours.

        ``durable=False`` skips initdb's fsyncs: for throwaway clusters (offline plans, tests)."""
        if self.initialized:
            raise ErpprovError(f"{self.data_dir} already holds a PostgreSQL cluster")
        try:
            if self.data_dir.exists() and any(self.data_dir.iterdir()):
                raise ErpprovError(
                    f"{self.data_dir} is not empty and holds no PostgreSQL cluster",
                    hint="point data_dir at an empty or missing directory",
                )
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._give_away(self.data_dir)
        except OSError as exc:
            raise ErpprovError(f"cannot create the data directory {self.data_dir}: {exc.strerror}",
                               hint="data_dir must be a directory erpprov can create and write") from None
        fd, pwfile = tempfile.mkstemp(prefix="erpprov-pw-")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(password + "\n")
            self._give_away(Path(pwfile))
            out = self._run([
                "initdb", "-D", str(self.data_dir), "-U", self.superuser, f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                "--no-instructions", *([] if durable else ["--no-sync"]),
            ])
        finally:
            os.unlink(pwfile)
        if out.returncode != 0:
            raise ErpprovError(f"initdb failed: {_last_lines(out.stderr or out.stdout)}")
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# erpprov: TCP only; the port and address are given at start\n"
                       "unix_socket_directories = ''\npassword_encryption = 'scram-sha-256'\n")
        (self.data_dir / MARKER).write_text("created by erpprov\n")
        (self.data_dir / "log").mkdir(exist_ok=True)
        for path in (self.data_dir / MARKER, self.data_dir / "log"):
            self._give_away(path)

    def start(self, timeout: float = 60) -> None:
        if not self.ours:
            raise ErpprovError(
                f"{self.data_dir} holds a PostgreSQL cluster that erpprov did not create",
                hint="erpprov manages only clusters it created; choose another data_dir",
            )
        if self.running():
            return
        if port_in_use(self.host, self.port):
            raise ErpprovError(
                f"port {self.port} on {self.host} is already in use by another program",
                hint="stop it, or set pg_port for this host in the inventory",
            )
        opts = f"-p {self.port} -c listen_addresses={self.host}"
        out = self._run(["pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file), "-w",
                         "-t", str(int(timeout)), "-o", opts], timeout=timeout + 10)
        if out.returncode != 0:
            raise ErpprovError(
                f"the local PostgreSQL server did not start: {_last_lines(out.stderr or out.stdout)}",
                hint=f"see {self.log_file}:\n{self.tail_log(20)}",
            )

    def stop(self) -> None:
        if self.running():
            out = self._run(["pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60"])
            if out.returncode != 0:
                raise ErpprovError(f"pg_ctl stop failed: {_last_lines(out.stderr or out.stdout)}")

    def destroy(self) -> None:
        self.stop()
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)

    def tail_log(self, lines: int) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _give_away(self, path: Path) -> None:
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)


# What initdb, pg_ctl and the server need from the environment. Nothing else is passed on: the
# server outlives this command, and any superuser session can read its environment, so erpprov's
# own secrets (POSTGRES_PASSWORD, cloud tokens) must never travel with it.
_SERVER_ENVIRON = ("PATH", "TZ", "TMPDIR")


def _server_environ() -> dict[str, str]:
    env = {key: os.environ[key] for key in _SERVER_ENVIRON if key in os.environ}
    env.setdefault("PATH", os.defpath)
    return {**env, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}


def _last_lines(text: str, count: int = 5) -> str:
    return " | ".join(line for line in text.strip().splitlines()[-count:])
