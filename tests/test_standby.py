"""The hot standby's state machine, in process: a fake lease, a fake clock, no sleeping."""

from dataclasses import dataclass, field

import structlog
from sqlalchemy.exc import OperationalError

from homeostat.operator.standby import POLL_SECONDS, Role, keep_lease, try_lease, wait_for_lease
from homeostat.operator.status import LoopStatus


@dataclass
class FakeLease:
    """Free from poll number `free_at` on (0 = at once); records the instant of every poll."""

    clock: "FakeClock"
    free_at: int
    polls: list[float] = field(default_factory=list)

    def try_acquire(self) -> bool:
        self.polls.append(self.clock.now)
        return len(self.polls) > self.free_at


@dataclass
class FakeClock:
    now: float = 100.0
    stop_after: float | None = None  # a stop arrives once this many seconds have been waited
    waited: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waited.append(seconds)
        self.now += seconds
        return self.stop_after is not None and sum(self.waited) >= self.stop_after


def test_a_free_lease_leads_at_once_without_standing_by() -> None:
    clock = FakeClock()
    lease = FakeLease(clock, free_at=0)
    standbys: list[bool] = []
    role = wait_for_lease(
        lease.try_acquire, clock.wait, clock, structlog.get_logger(), on_standby=lambda: standbys.append(True)
    )
    assert role == Role.LEADER
    assert lease.polls == [100.0]
    assert clock.waited == []
    assert standbys == []


def test_a_held_lease_is_polled_every_poll_period_until_it_is_free() -> None:
    """Polled at once, then once per period; the takeover comes at the first poll that finds
    it free, so a leader gone at t is replaced by t + one period, well inside 15 s."""
    clock = FakeClock()
    lease = FakeLease(clock, free_at=5)
    standbys: list[bool] = []
    with structlog.testing.capture_logs() as logs:
        role = wait_for_lease(
            lease.try_acquire,
            clock.wait,
            clock,
            structlog.get_logger(),
            on_standby=lambda: standbys.append(True),
        )
    assert role == Role.LEADER
    assert lease.polls == [100.0 + i * POLL_SECONDS for i in range(6)]
    assert standbys == [True]
    assert POLL_SECONDS <= 2
    events = [(e["event"], e.get("waited_seconds")) for e in logs]
    assert events == [("standby_waiting", None), ("standby_took_over", 5 * POLL_SECONDS)]


def test_a_stop_while_standing_by_never_takes_the_lease() -> None:
    clock = FakeClock(stop_after=3 * POLL_SECONDS)
    lease = FakeLease(clock, free_at=1_000)
    with structlog.testing.capture_logs() as logs:
        role = wait_for_lease(lease.try_acquire, clock.wait, clock, structlog.get_logger())
    assert role == Role.STOPPED
    assert len(lease.polls) == 3  # the first poll, then one after each of the two waits not stopped
    assert [e["event"] for e in logs] == ["standby_waiting", "standby_stopped"]


def test_a_failing_poll_is_logged_and_is_not_a_lease() -> None:
    """A database restarting under the standby must not end it: the poll says 'not yet'."""

    class Broken:
        def try_acquire(self) -> bool:
            cause = Exception("server closed the connection")
            raise OperationalError("SELECT pg_try_advisory_lock", {}, cause)

    with structlog.testing.capture_logs() as logs:
        assert try_lease(Broken(), structlog.get_logger()) is False  # type: ignore[arg-type]  # duck lease
    assert [e["event"] for e in logs] == ["lease_poll_failed"]
    assert "server closed the connection" in logs[0]["error"]


def test_standby_status_is_live_but_not_ready_and_takeover_restarts_the_liveness_clock() -> None:
    status = LoopStatus(resync_seconds=10, started_monotonic=0.0)
    status.set_standby(True)
    assert status.healthy(now_monotonic=10_000.0)[0] is True  # waiting is its job, however long
    assert status.ready() == (False, "standby")
    status.set_standby(False)
    ok, message = status.ready()
    assert ok is False
    assert message == "no valid desired state loaded"
    assert status.healthy()[0] is True  # the wait is not counted against the new leader
    assert status.healthy(now_monotonic=status.started_monotonic + 31)[0] is False


def test_a_leader_checks_its_lease_every_poll_and_stops_once_when_it_is_lost() -> None:
    clock = FakeClock()
    checks: list[float] = []
    lost: list[float] = []

    def still_held() -> bool:
        checks.append(clock.now)
        return len(checks) < 4

    with structlog.testing.capture_logs() as logs:
        keep_lease(still_held, clock.wait, structlog.get_logger(), on_lost=lambda: lost.append(clock.now))
    assert checks == [100.0 + i * POLL_SECONDS for i in range(1, 5)]
    assert lost == [checks[-1]]
    assert [e["event"] for e in logs] == ["lease_lost"]


def test_a_leader_stopping_stops_checking_its_lease() -> None:
    clock = FakeClock(stop_after=2 * POLL_SECONDS)
    checks: list[float] = []
    lost: list[bool] = []
    keep_lease(
        lambda: checks.append(clock.now) is None,
        clock.wait,
        structlog.get_logger(),
        on_lost=lambda: lost.append(True),
    )
    assert checks == [100.0 + POLL_SECONDS]
    assert lost == []
