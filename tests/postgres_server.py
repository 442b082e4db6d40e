"""A throwaway PostgreSQL server on 127.0.0.1 for the history-database tests.

Uses the machine's PostgreSQL binaries (Debian's postgresql package). PostgreSQL
refuses to run as root, so as root the server runs as the `postgres` system
user; the data directory lives in a temporary folder that user owns. Nothing is
skipped: a missing PostgreSQL fails the tests that need it, saying what to install.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port


def _binaries() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise AssertionError(
        "PostgreSQL server binaries not found: install Debian's postgresql package "
        "(apt-get install postgresql)"
    )


@dataclass(frozen=True)
class PostgresServer:
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://homeostat@127.0.0.1:{self.port}/postgres"


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = _binaries()
    root = Path(tempfile.mkdtemp(prefix="homeostat-pg-"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "homeostat", "--no-sync")
    options = f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start")
    try:
        yield PostgresServer(port)
    finally:
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)
