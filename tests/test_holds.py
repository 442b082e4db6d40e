"""Bounded holds (`suspend: {until, reason}`, issue 14 item 3): the pure "held at now" rule, its
validation, the statuses, wake times, `resume` rows and gauges it gives."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.loading import load_directory
from homeostat.desired_state.models import Hold, SpecBase
from homeostat.desired_state.state import DesiredState, InvalidDesiredState
from homeostat.metrics import Metrics
from homeostat.operator.cli import main
from homeostat.operator.commands import expired_holds
from homeostat.operator.execution import Executor
from homeostat.operator.history import HistoryQuery, HistoryStore
from homeostat.operator.passes import run_pass
from homeostat.operator.reporter import Reporter
from homeostat.operator.requests import PassReason
from homeostat.operator.statuses import State
from homeostat.operator.wakes import wake_requests
from homeostat.reconcilers.alarm_actions import policy_of
from homeostat.reconcilers.maintenance_window import MaintenanceWindowReconciler, window_of
from homeostat.reconcilers.registry import gauges, kind_table
from tests.test_pass_workers import FakeClock, FakeKind

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
UNTIL = T0 + timedelta(minutes=30)
REASON = "INC-4411: api held at 8 tasks during the incident"
ECS = Kind("ECSService")

instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(until=instants, now=instants)
def test_a_bounded_hold_holds_exactly_before_its_until(until: datetime, now: datetime) -> None:
    spec = SpecBase(suspend=Hold(until=until, reason="r"))
    assert spec.held(now) == (now < until)
    assert spec.hold == Hold(until=until, reason="r")


@given(now=instants)
def test_a_plain_suspend_holds_always_and_none_never(now: datetime) -> None:
    assert SpecBase(suspend=True).held(now)
    assert not SpecBase(suspend=False).held(now)
    assert SpecBase(suspend=True).hold is None


def service(name: str, suspend: str = "") -> str:
    return (
        f"apiVersion: homeostat/v1\nkind: ECSService\nmetadata:\n  name: {name}\n"
        f"spec:\n  cluster: c\n  service: {name}\n  desiredCount: 1\n{suspend}"
    )


def bounded(until: str = UNTIL.isoformat(), reason: str = REASON) -> str:
    return f"  suspend:\n    until: {until!r}\n    reason: {reason!r}\n"


def load(tmp_path: Path, *manifests: str) -> DesiredState:
    directory = tmp_path / "desired"
    directory.mkdir(exist_ok=True)
    (directory / "services.yaml").write_text("---\n".join(manifests))
    return load_directory(directory, kinds=kind_table())


def errors_of(tmp_path: Path, suspend: str) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(InvalidDesiredState) as caught:
        load(tmp_path, service("api", suspend))
    return [(e.line, e.field, e.message) for e in caught.value.errors]


@pytest.mark.parametrize(
    ("suspend", "field"),
    [
        ("  suspend:\n    reason: r\n", "spec.suspend.until"),
        (f"  suspend:\n    until: '{UNTIL.isoformat()}'\n", "spec.suspend.reason"),
        (f"  suspend:\n    until: '{UNTIL.isoformat()}'\n    reason: '  '\n", "spec.suspend.reason"),
        ("  suspend:\n    until: '2026-12-02T09:00:00'\n    reason: r\n", "spec.suspend.until"),
        ("  suspend:\n    until: 2026-12-02T09:00:00\n    reason: r\n", "spec.suspend.until"),
        ("  suspend:\n    until: 1796202000\n    reason: r\n", "spec.suspend.until"),
        ("  suspend:\n    until: '2026-12-02T09:00:00Z'\n    reason: r\n    by: me\n", "spec.suspend.by"),
        ("  suspend: yes please\n", "spec.suspend"),
    ],
    ids=["no-until", "no-reason", "blank-reason", "no-offset", "yaml-naive", "number", "unknown", "text"],
)
def test_a_malformed_hold_is_one_located_error(tmp_path: Path, suspend: str, field: str) -> None:
    """One error per problem, at the hold's own field (not one per branch of `true | {..}`)."""
    errors = errors_of(tmp_path, suspend)
    assert [(f, line is not None and line >= 6) for line, f, _ in errors] == [(field, True)]


def test_a_yaml_timestamp_with_an_offset_is_a_valid_until(tmp_path: Path) -> None:
    desired = load(
        tmp_path, service("api", "  suspend:\n    until: 2026-12-01T10:30:00+01:00\n    reason: r\n")
    )
    assert desired.resources[0].manifest.spec.hold.until == T0 + timedelta(minutes=30)


def test_validate_warns_about_a_past_until_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # web's hold ends long after the real clock the CLI reads
    desired = load(
        tmp_path,
        service("api", bounded("2020-01-01T00:00:00Z")),
        service("web", bounded("2099-01-01T00:00:00Z")),
    )
    assert [w.split(": warning: ")[0] for w in expired_holds(desired, T0)] == [
        "services.yaml:1: spec.suspend.until"
    ]
    capsys.readouterr()
    assert main(["validate", str(tmp_path / "desired")]) == 0
    err = capsys.readouterr().err
    assert "spec.suspend.until: warning: 2020-01-01T00:00:00Z is already past" in err
    assert "web" not in err


def held_then_expired(tmp_path: Path) -> tuple[DesiredState, FakeKind, FakeClock, Executor, HistoryStore]:
    desired = load(tmp_path, service("api", bounded()), service("web"))
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    clock = FakeClock(T0)
    return desired, FakeKind(ECS), clock, Executor(store, None, structlog.get_logger(), clock), store


def one_pass(desired: DesiredState, kind: FakeKind, clock: FakeClock, executor: Executor) -> Any:
    return run_pass(desired, (kind,), None, executor, clock=clock, dry_run=False)  # type: ignore[arg-type]


def test_held_until_until_then_reconciled_with_one_resume_row_per_hold(tmp_path: Path) -> None:
    """Before `until`: Suspended with the reason and expiry, nothing applied. From `until` on:
    reconciled, one `resume` row, never a second one (a new executor stands for a restart)."""
    desired, kind, clock, executor, store = held_then_expired(tmp_path)
    clock.advance((UNTIL - T0).total_seconds() - 1)
    held = one_pass(desired, kind, clock, executor)
    api = held.statuses[0]
    assert (api.name, api.state) == ("api", State.SUSPENDED)
    assert api.message == f"suspended until 2026-12-01T09:30:00Z: {REASON}"
    assert api.to_json()["suspension"] == {"until": "2026-12-01T09:30:00Z", "reason": REASON}
    assert held.statuses[1].to_json()["suspension"] is None
    assert kind.applied == ["web"]
    clock.advance(1)  # exactly `until`: the hold has ended
    resumed = one_pass(desired, kind, clock, executor)
    assert [(s.name, s.state) for s in resumed.statuses] == [("api", State.FIXED), ("web", State.FIXED)]
    assert resumed.statuses[0].to_json()["suspension"] is None
    assert [r.action for r in resumed.statuses[0].records] == ["resume", "fix"]  # the end, then the fix
    assert kind.applied == ["web", "api", "web"]
    restarted = Executor(store, None, structlog.get_logger(), clock)
    one_pass(desired, kind, clock, restarted)
    rows = [r for r in store.query(HistoryQuery(limit=100)) if r.action == "resume"]
    assert [(r.name, r.target, r.before, r.after, r.reason) for r in rows] == [
        (
            "api",
            "2026-12-01T09:30:00Z",
            {"suspended": True, "until": "2026-12-01T09:30:00Z"},
            {"suspended": False},
            f"the hold expired: {REASON}",
        )
    ]


def test_a_new_until_is_a_new_hold_with_its_own_resume_row(tmp_path: Path) -> None:
    desired, kind, clock, executor, store = held_then_expired(tmp_path)
    clock.advance(3600)
    one_pass(desired, kind, clock, executor)
    later = load(tmp_path, service("api", bounded((UNTIL + timedelta(hours=1)).isoformat())))
    one_pass(later, kind, clock, executor)
    assert [r.target for r in store.query(HistoryQuery(limit=100)) if r.action == "resume"] == [
        "2026-12-01T09:30:00Z"
    ]
    clock.advance(3600)
    one_pass(later, kind, clock, executor)
    assert sorted(r.target for r in store.query(HistoryQuery(limit=100)) if r.action == "resume") == [
        "2026-12-01T09:30:00Z",
        "2026-12-01T10:30:00Z",
    ]


def test_every_future_until_is_a_scheduled_wake_that_bypasses_backoff(tmp_path: Path) -> None:
    desired = load(
        tmp_path,
        service("api", bounded()),
        service("old", bounded("2020-01-01T00:00:00Z")),
        service("web", "  suspend: true\n"),
    )
    wakes = wake_requests(desired, (), [], T0, structlog.get_logger())
    assert list(wakes) == [UNTIL]
    assert wakes[UNTIL].reason == PassReason.SCHEDULED
    assert "api" in wakes[UNTIL].detail


def test_gauges_say_held_for_every_resource_and_the_expiry_while_a_bounded_hold_holds(tmp_path: Path) -> None:
    desired, kind, clock, executor, _ = held_then_expired(tmp_path)
    plain = load(tmp_path, service("api", bounded()), service("web", "  suspend: true\n"))
    registry = CollectorRegistry()
    reporter = Reporter(Metrics(registry, gauges()))

    def sample(metric: str, name: str) -> float | None:
        return registry.get_sample_value(f"homeostat_{metric}", {"kind": "ECSService", "name": name})

    reporter.pass_reported(one_pass(plain, kind, clock, executor))
    assert (sample("resource_suspended", "api"), sample("resource_suspended", "web")) == (1, 1)
    assert sample("suspension_expiry_timestamp_seconds", "api") == UNTIL.timestamp()
    assert sample("suspension_expiry_timestamp_seconds", "web") is None  # a plain `true` has none
    clock.advance(3600)
    reporter.pass_reported(one_pass(desired, kind, clock, executor))
    assert (sample("resource_suspended", "api"), sample("resource_suspended", "web")) == (0, 0)
    assert sample("suspension_expiry_timestamp_seconds", "api") is None
    reporter.keep_only(set())
    assert sample("resource_suspended", "api") is None


def test_a_bounded_hold_suspends_an_alarm_kinds_decisions_only_while_it_holds(tmp_path: Path) -> None:
    """AlarmActions and MaintenanceWindow contribute as suspended (not live) before `until`, as
    live from `until` on; a held window asks for no wake-ups of its own (the hold's end does)."""
    directory = tmp_path / "desired"
    directory.mkdir()
    (directory / "alarms.yaml").write_text(
        "apiVersion: homeostat/v1\nkind: AlarmActions\nmetadata: {name: prod}\n"
        f"spec:\n  alarmNamePrefix: prod-\n  actionsEnabled: true\n{bounded()}---\n"
        "apiVersion: homeostat/v1\nkind: MaintenanceWindow\nmetadata: {name: sunday}\n"
        "spec:\n  schedule: '0 2 * * 0'\n  duration: 4h\n  timeZone: UTC\n"
        f"  silenceAlarms:\n    - alarmNamePrefix: prod-\n{bounded()}"
    )
    desired = load_directory(directory, kinds=kind_table())
    actions, window = desired.resources
    before, after = UNTIL - timedelta(seconds=1), UNTIL
    assert (policy_of(actions, before).suspended, policy_of(actions, before).live) == (True, False)
    assert (policy_of(actions, after).suspended, policy_of(actions, after).live) == (False, True)
    assert (window_of(window, before).suspended, window_of(window, after).suspended) == (True, False)
    windows = MaintenanceWindowReconciler()
    assert windows.wake_times(desired, before) == []
    assert windows.wake_times(desired, after)
