"""A throw-away PostgreSQL server for the several-scheduler deployment: Airflow's HA mode needs a database
with row locks (``SELECT ... FOR UPDATE SKIP LOCKED``), which SQLite does not have.

The server binaries come from Debian's ``postgresql`` package (``make postgres`` installs it when it is
missing). The cluster lives in a temporary directory, listens on a free loopback port and a socket in that
directory only, and is removed by ``stop()``. PostgreSQL refuses to run as root, so as root every server
command runs as the ``postgres`` user the Debian package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ecs_executor.demo.deployment import DeploymentError, free_port

DATABASE = "airflow"
USER = "airflow"
INSTALL_HINT = "install Debian's postgresql package (make postgres, or apt-get install postgresql)"


def server_bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: Debian keeps them out of PATH, under /usr/lib/postgresql/<major>/bin."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


@dataclass
class LocalPostgres:
    """``start()`` then ``url``; always ``stop()`` (also a context manager)."""

    port: int = 0
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ecs-executor-pg-")))
    bin_dir: Path | None = None

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        """SQLAlchemy URL for Airflow's ``[database] sql_alchemy_conn`` (psycopg2, trust auth on loopback)."""
        return f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        assert self.bin_dir is not None
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise DeploymentError(
                f"{' '.join(args[:2])} failed: {result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
        return result

    def start(self) -> None:
        self.bin_dir = self.bin_dir or server_bin_dir()
        if self.bin_dir is None:
            raise DeploymentError(f"PostgreSQL server binaries not found; {INSTALL_HINT}")
        self.port = self.port or free_port()
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-sync")
        # fsync off: a test database that dies with the machine loses nothing of value, and WAL flushes
        # are most of the write cost on a loaded machine. More connections: 2 schedulers, api-server,
        # triggerer, dag-processor and every running task's supervisor (through the API server's pool).
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        log = str(self.directory / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "60", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, DATABASE)

    def stop(self) -> None:
        """Fast shutdown (rolls back open transactions), then the directory goes."""
        if self.bin_dir is not None and (self.data / "postmaster.pid").exists():
            with contextlib.suppress(DeploymentError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop", timeout=60)
        shutil.rmtree(self.directory, ignore_errors=True)
