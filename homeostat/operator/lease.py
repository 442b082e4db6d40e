"""Single writer: only one daemon may act per history database and shard.

Each `--selector` shard has its own lease on the shared database: the lock key
is derived from the canonical selector text (a daemon without a selector keeps
the historical key and `<database>.lock`), so daemons of different shards lead
side by side and a second daemon of one shard is its standby.

SQLite: an exclusive `flock` on `<database>.lock`; PostgreSQL: a session
advisory lock on a connection held for the life of the process. Both are
released by the kernel or the server when the holder dies, even by
SIGKILL, so a new daemon can start at once after a crash, and a standby
(standby.py) polling `try_acquire` takes over within seconds.

The PostgreSQL lock lives on a connection of its own with TCP keepalives on
both ends: a leader whose host dies or is cut off sends no FIN, and without
keepalives the server would keep its session, and the lock, for hours.

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
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from homeostat.desired_state.selector import EVERYTHING, Selector

LOCK_FILE_MODE = 0o600
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"homeostat-writer").digest()[:8], "big", signed=True)


def advisory_key(shard: Selector) -> int:
    """The PostgreSQL advisory lock key of a shard: ADVISORY_KEY without a selector, else a
    stable 64-bit hash of the canonical selector text (the same however it was spelled)."""
    if not shard.pairs:
        return ADVISORY_KEY
    digest = hashlib.sha256(b"homeostat-writer\0" + shard.text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# The lease connection's keepalives (libpq on the client; the server's own, set for this session,
# so the *server* drops a dead leader's session): silent after 5 s, probed every 2 s, dead
# after 3 unanswered probes, so a lost leader's lock is free about 11 s after it went quiet.
KEEPALIVE_SECONDS = (5, 2, 3)
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": KEEPALIVE_SECONDS[0],
    "keepalives_interval": KEEPALIVE_SECONDS[1],
    "keepalives_count": KEEPALIVE_SECONDS[2],
    "options": (
        f"-c tcp_keepalives_idle={KEEPALIVE_SECONDS[0]} -c tcp_keepalives_interval={KEEPALIVE_SECONDS[1]}"
        f" -c tcp_keepalives_count={KEEPALIVE_SECONDS[2]}"
    ),
}


class LeaseHeld(Exception):
    """The lease cannot be had (another live daemon holds it, or the database cannot hold
    one); the message says why."""


class Lease:
    def __init__(self, engine: Engine, shard: Selector = EVERYTHING) -> None:
        self.engine = engine
        self.shard = shard
        self.key = advisory_key(shard)
        self._file: Any = None
        self._connection: Connection | None = None
        self._lock_engine: Engine | None = None
        self._holding = False

    def acquire(self) -> None:
        """Take the lease now, or raise LeaseHeld (`run --once`, and the tests)."""
        if not self.try_acquire():
            raise LeaseHeld(self._held_message())

    def try_acquire(self) -> bool:
        """True when the lease is ours (now or already); False while another live daemon holds
        it. Raises LeaseHeld only when this database cannot hold a lease at all. Cheap enough
        to poll every second: one non-blocking flock, or one query on a kept connection."""
        backend = self.engine.url.get_backend_name()
        if backend == "sqlite":
            return self._try_file()
        if backend == "postgresql":
            return self._try_advisory()
        raise LeaseHeld(f"no single-writer lease for {backend} history databases: use sqlite or postgresql")

    def _held_message(self) -> str:
        url = self.engine.url
        shard = f" for shard {self.shard.text!r}" if self.shard.pairs else ""
        if url.get_backend_name() == "sqlite":
            lock = self._lock_path()
            return f"another homeostat daemon already writes to {url.database}{shard} (lock {lock} is held)"
        return f"another homeostat daemon already writes to {url.render_as_string()}{shard}"

    def _lock_path(self) -> Path:
        database = str(self.engine.url.database)
        suffix = f".shard-{self.shard.digest}.lock" if self.shard.pairs else ".lock"
        return Path(database).resolve().with_name(Path(database).name + suffix)

    def _try_file(self) -> bool:
        if self._file is not None:
            return True
        database = self.engine.url.database
        if not database or database == ":memory:":
            return True  # private to this process
        path = self._lock_path()
        handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, LOCK_FILE_MODE), "a+")
        if os.fstat(handle.fileno()).st_uid == os.getuid():
            os.fchmod(handle.fileno(), LOCK_FILE_MODE)  # one made 0666 by an older homeostat
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def _try_advisory(self) -> bool:
        if self._holding:
            return True  # asking again would stack a second, never-released hold on the lock
        if self._lock_engine is None:
            # Its own engine: the keepalives apply to the lease connection only, and NullPool
            # means closing it ends the session rather than parking it in a pool.
            self._lock_engine = sa.create_engine(self.engine.url, poolclass=NullPool, connect_args=KEEPALIVES)
        if self._connection is None:
            # AUTOCOMMIT: the session holding the lock must never sit "idle in transaction",
            # where a server timeout would end it and silently drop the lock.
            self._connection = self._lock_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = self._connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
            self._holding = bool(got.scalar())
        except SQLAlchemyError:
            self._drop_connection()  # the next try reconnects (a restarted server, a cut link)
            raise
        return self._holding  # when False, the kept connection holds nothing: the next poll asks on it

    def still_held(self) -> bool:
        """False once a held lease is gone: the PostgreSQL session holding the lock has ended
        (a database failover, an administrator's pg_terminate_backend, a keepalive timeout),
        so a standby may already lead. A flock cannot be lost while the file stays open."""
        if self._connection is None:
            return self.engine.url.get_backend_name() == "sqlite"  # a PostgreSQL lease has no session
        try:
            self._connection.execute(sa.text("SELECT 1"))
        except SQLAlchemyError:
            self._drop_connection()
            return False
        return self._holding

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._connection is not None:
            # Unlock first: the server ends an invalidated session asynchronously, and a writer
            # starting right after this release must find the lock free, not still held.
            with contextlib.suppress(SQLAlchemyError):  # a dead session holds no lock anyway
                self._connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self._drop_connection()
        if self._lock_engine is not None:
            self._lock_engine.dispose()
            self._lock_engine = None

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._connection.invalidate()
                self._connection.close()
            self._connection = None
        self._holding = False
