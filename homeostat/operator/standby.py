"""Hot standby: a second `run` on a held lease waits for it instead of exiting.

The lease is the database's own lock (lease.py), so there is nothing to
elect and nothing to configure: the standby asks for the lock again every
POLL_SECONDS, and the server or the kernel frees it when the leader dies
or shuts down. While it waits the daemon serves /healthz (200: waiting is
its job), /readyz (503 "standby") and `homeostat_leader 0`, and it runs no
pass, sends no mutation and touches no journal row. A failed poll (the
database restarting) is logged and retried: a standby must outlive its
database's blips, or the pair loses its spare exactly when it is needed.
The leader, in turn, checks every POLL_SECONDS that its lease still holds
(`keep_lease`): a PostgreSQL session can end under it (a failover), and a
leader that kept acting then would be a second writer beside the standby
that just took the lock.
"""

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from homeostat.operator.history import first_line
from homeostat.operator.lease import Lease

# Lease polling: well inside the contract's 15 s takeover, and one cheap query a second.
POLL_SECONDS = 1.0


class Role(StrEnum):
    LEADER = "leader"
    STANDBY = "standby"
    STOPPED = "stopped"  # asked to stop while waiting: it never led


def try_lease(lease: Lease, log: Any) -> bool:
    """One poll; a database that fails to answer is not a lease taken (logged, retried)."""
    try:
        return lease.try_acquire()
    except SQLAlchemyError as exc:
        log.warning("lease_poll_failed", error=first_line(exc))
        return False


def wait_for_lease(
    try_acquire: Callable[[], bool],
    wait: Callable[[float], bool],
    clock: Callable[[], float],
    log: Any,
    *,
    on_standby: Callable[[], None] = lambda: None,
    poll_seconds: float = POLL_SECONDS,
) -> Role:
    """LEADER once `try_acquire` succeeds; STOPPED when `wait` (which sleeps up to its argument
    and returns True when asked to stop) reports a stop first. `on_standby` runs once, before
    the first wait, when the lease was not free at once."""
    if try_acquire():
        return Role.LEADER
    since = clock()
    log.info("standby_waiting", poll_seconds=poll_seconds)
    on_standby()
    while not wait(poll_seconds):
        if try_acquire():
            log.info("standby_took_over", waited_seconds=round(clock() - since, 3))
            return Role.LEADER
    log.info("standby_stopped", waited_seconds=round(clock() - since, 3))
    return Role.STOPPED


def keep_lease(
    still_held: Callable[[], bool],
    wait: Callable[[float], bool],
    log: Any,
    *,
    on_lost: Callable[[], None],
    poll_seconds: float = POLL_SECONDS,
) -> None:
    """While leading: check the lease every poll until a stop; when it is gone, log
    `lease_lost` and call `on_lost` once (the daemon stops, and exits 1)."""
    while not wait(poll_seconds):
        if not still_held():
            log.error("lease_lost")
            on_lost()
            return
