"""Single writer: only one daemon may act per history database.

SQLite: an exclusive `flock` on `<database>.lock`; PostgreSQL: a session
advisory lock on a connection held for the life of the process. Both are
released by the kernel or the server when the holder dies, even by
SIGKILL, so a new daemon can start at once after a crash.

The lock file is created 0600 (owner read/write only): it holds nothing but
the holder's PID, and only a process that may write the database (its
owner) ever needs to open it; 0666 would let any local user hold the lease
and so stop the daemon from starting. An older file is narrowed to 0600.
"""

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

LOCK_FILE_MODE = 0o600
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"homeostat-writer").digest()[:8], "big", signed=True)


class LeaseHeld(Exception):
    """The lease cannot be had (another live daemon holds it, or the database cannot hold
    one); the message says why."""


class Lease:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._file: Any = None
        self._connection: Any = None

    def acquire(self) -> None:
        url = self.engine.url
        backend = url.get_backend_name()
        if backend == "sqlite":
            database = url.database
            if not database or database == ":memory:":
                return  # private to this process
            path = Path(database).resolve().with_name(Path(database).name + ".lock")
            handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, LOCK_FILE_MODE), "a+")
            if os.fstat(handle.fileno()).st_uid == os.getuid():
                os.fchmod(handle.fileno(), LOCK_FILE_MODE)  # one made 0666 by an older homeostat
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise LeaseHeld(
                    f"another homeostat daemon already writes to {database} (lock {path} is held)"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            self._file = handle
        elif backend == "postgresql":
            key = ADVISORY_KEY
            # AUTOCOMMIT: the session holding the lock must never sit "idle in transaction",
            # where a server timeout would end it and silently drop the lock.
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            if not got:
                connection.close()
                raise LeaseHeld(f"another homeostat daemon already writes to {url.render_as_string()}")
            self._connection = connection
        else:
            raise LeaseHeld(
                f"no single-writer lease for {backend} history databases: use sqlite or postgresql"
            )

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._connection is not None:
            # Unlock first: the server ends an invalidated session asynchronously, and a writer
            # starting right after this release must find the lock free, not still held.
            with contextlib.suppress(SQLAlchemyError):  # a dead session holds no lock anyway
                self._connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
            # Pooled connections outlive close(): end the session itself as well.
            self._connection.invalidate()
            self._connection.close()
            self._connection = None
