"""Single writer: only one daemon may act per history database and shard.

Each `--selector` shard has its own lease on the shared database: the lock key
is derived from the canonical selector text (a daemon without a selector keeps
the historical key and `<database>.lock`), so daemons of different shards lead
side by side and a second daemon of one shard is its standby. A shard also
holds the historical lock *shared*, which a daemon without a selector needs
exclusively: that one never leads beside a shard (see `Lease`).

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
    """The lease of one shard (EVERYTHING: a daemon without `--selector`).

    A shard's lease is two locks: its own key exclusively, and the whole database's key
    *shared*; a daemon without a selector holds the whole database's key exclusively. So
    daemons of different shards lead side by side, while a daemon of everything never leads
    beside any shard (it would reconcile their resources too): whichever comes second waits
    as a standby, which also makes splitting a running daemon into shards a rolling change.
    """

    def __init__(self, engine: Engine, shard: Selector = EVERYTHING) -> None:
        self.engine = engine
        self.shard = shard
        self.key = advisory_key(shard)
        self._files: list[Any] = []
        self._connection: Connection | None = None
        self._lock_engine: Engine | None = None
        self._holding = False
        self._blocked_by_everything = False  # the last failed try met a daemon without a selector

    def acquire(self) -> None:
        """Take the lease now, or raise LeaseHeld (`run --once`, and the tests)."""
        if not self.try_acquire():
            raise LeaseHeld(self._held_message())

    def try_acquire(self) -> bool:
        """True when the lease is ours (now or already); False while another live daemon holds
        it. Raises LeaseHeld only when this database cannot hold a lease at all. Cheap enough
        to poll every second: non-blocking flocks, or queries on a kept connection."""
        backend = self.engine.url.get_backend_name()
        if backend == "sqlite":
            return self._try_file()
        if backend == "postgresql":
            return self._try_advisory()
        raise LeaseHeld(f"no single-writer lease for {backend} history databases: use sqlite or postgresql")

    def _held_message(self) -> str:
        url = self.engine.url
        where = url.database if url.get_backend_name() == "sqlite" else url.render_as_string()
        if self._blocked_by_everything:
            return f"a homeostat daemon without --selector already writes to {where} (it manages every shard)"
        # Without a selector, the holders may be another such daemon or any shard's daemons.
        shard = f" for shard {self.shard.text!r}" if self.shard.pairs else ""
        holders = "" if self.shard.pairs else ", by a daemon or by --selector shards"
        if url.get_backend_name() == "sqlite":
            lock = self._lock_path(self.shard)
            return f"another homeostat daemon already writes to {where}{shard} (lock {lock} is held{holders})"
        return f"another homeostat daemon already writes to {where}{shard}" + (
            f" ({holders[2:]})" if holders else ""
        )

    def _lock_path(self, shard: Selector) -> Path:
        database = str(self.engine.url.database)
        suffix = f".shard-{shard.digest}.lock" if shard.pairs else ".lock"
        return Path(database).resolve().with_name(Path(database).name + suffix)

    def _try_file(self) -> bool:
        if self._files:
            return True
        database = self.engine.url.database
        if not database or database == ":memory:":
            return True  # private to this process
        if not self.shard.pairs:
            whole = self._flock(self._lock_path(EVERYTHING), fcntl.LOCK_EX)
            self._files = [whole] if whole is not None else []
            self._blocked_by_everything = False
        else:
            whole = self._flock(self._lock_path(EVERYTHING), fcntl.LOCK_SH)
            self._blocked_by_everything = whole is None
            own = self._flock(self._lock_path(self.shard), fcntl.LOCK_EX) if whole is not None else None
            if own is None and whole is not None:
                whole.close()  # a standby holds nothing: a daemon of everything may start
            self._files = [whole, own] if whole is not None and own is not None else []
        return bool(self._files)

    @staticmethod
    def _flock(path: Path, mode: int) -> Any:
        """The open lock file once locked in `mode` (an exclusive holder writes its PID), or None."""
        handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, LOCK_FILE_MODE), "a+")
        if os.fstat(handle.fileno()).st_uid == os.getuid():
            os.fchmod(handle.fileno(), LOCK_FILE_MODE)  # one made 0666 by an older homeostat
        try:
            fcntl.flock(handle.fileno(), mode | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        if mode == fcntl.LOCK_EX:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        return handle

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
            self._holding = self._advisory_locks(self._connection)
        except SQLAlchemyError:
            self._drop_connection()  # the next try reconnects (a restarted server, a cut link)
            raise
        return self._holding  # when False, the kept connection holds nothing: the next poll asks on it

    def _advisory_locks(self, connection: Connection) -> bool:
        def ask(function: str, key: int) -> bool:
            return bool(connection.execute(sa.text(f"SELECT {function}(:k)"), {"k": key}).scalar())

        if not self.shard.pairs:
            self._blocked_by_everything = False
            return ask("pg_try_advisory_lock", ADVISORY_KEY)
        self._blocked_by_everything = not ask("pg_try_advisory_lock_shared", ADVISORY_KEY)
        if self._blocked_by_everything:
            return False
        if ask("pg_try_advisory_lock", self.key):
            return True
        ask("pg_advisory_unlock_shared", ADVISORY_KEY)  # a standby holds nothing
        return False

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
        for handle in reversed(self._files):
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()
        self._files = []
        if self._connection is not None:
            # Unlock first: the server ends an invalidated session asynchronously, and a writer
            # starting right after this release must find the lock free, not still held.
            with contextlib.suppress(SQLAlchemyError):  # a dead session holds no lock anyway
                if self._holding:
                    self._connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                if self._holding and self.shard.pairs:
                    unlock = sa.text("SELECT pg_advisory_unlock_shared(:k)")
                    self._connection.execute(unlock, {"k": ADVISORY_KEY})
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
