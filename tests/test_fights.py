"""Fights (contract section 2.1): the pure rule, and passes against moto where a person reverts.

The rule is `fights.judge`, tested on history rows built here (properties: never Fighting
below the threshold, a manifest change always resumes, corrections outside the window never
count). The passes run `run_pass` against in-process moto with a real SQLite history and an
injected clock: between passes a "person" sets a service's desiredCount back, and the calls
homeostat sends are counted.
"""

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws
from prometheus_client import CollectorRegistry

from homeostat.desired_state.identifiers import Kind, Revision
from homeostat.desired_state.state import DesiredState, Resource, Source
from homeostat.metrics import Metrics
from homeostat.operator.execution import Executor
from homeostat.operator.fights import FightRule, FightWatch, judge
from homeostat.operator.history import HistoryQuery, HistoryStore
from homeostat.operator.passes import run_pass
from homeostat.operator.records import FIGHT_MANIFEST, ActionRecord, FightDetected, FightResolved
from homeostat.operator.reporter import Reporter
from homeostat.operator.statuses import PassReport, State
from homeostat.reconcilers.actions import Action, Outcome
from homeostat.reconcilers.alarm_state import AlarmAction, window_ended, window_started
from homeostat.reconcilers.aurora_cluster import AuroraClusterAction
from homeostat.reconcilers.ecs_service import ECSAction, ECSService
from homeostat.reconcilers.ecs_service_reconciler import ECSServiceReconciler
from homeostat.reconcilers.registry import gauges

from .conftest import CountingClients

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
RULE = FightRule(threshold=3, window=timedelta(hours=1))
ECS = Kind("ECSService")
KEY = ("ECSService", "api")
TARGET = "prod/api"
DRIFT_REASON = "drift: desiredCount differs from the manifest"


def correction(
    minutes_ago: float,
    before: Any = 2,
    after: Any = 4,
    *,
    field: str = "desiredCount",
    action: str = ECSAction.UPDATE_SERVICE,
    target: str = TARGET,
    reason: str = DRIFT_REASON,
    outcome: Outcome = Outcome.APPLIED,
) -> ActionRecord:
    return ActionRecord(
        time=NOW - timedelta(minutes=minutes_ago),
        kind=KEY[0],
        name=KEY[1],
        action=str(action),
        target=target,
        outcome=outcome,
        before={field: before},
        after={field: after},
        reason=reason,
        error=None,
        revision="r1",
        dry_run=outcome == Outcome.DRY_RUN,
    )


def planned(before: Any = 2, after: Any = 4, field: str = "desiredCount") -> Action:
    return Action(ECS, "api", ECSAction.UPDATE_SERVICE, TARGET, {field: before}, {field: after}, DRIFT_REASON)


def detected_row(minutes_ago: float, digest: str = "d1") -> ActionRecord:
    return ActionRecord(
        time=NOW - timedelta(minutes=minutes_ago),
        kind=KEY[0],
        name=KEY[1],
        action="fight_detected",
        target=TARGET,
        outcome=Outcome.CONFLICT,
        before={"desiredCount": [2, 3, 2, 2]},
        after={"desiredCount": 4, FIGHT_MANIFEST: digest},
        reason="fight",
        error=None,
        revision="r1",
        dry_run=False,
    )


def resolved_row(minutes_ago: float) -> ActionRecord:
    row = detected_row(minutes_ago)
    return ActionRecord(
        **{**{f: getattr(row, f) for f in row.__dataclass_fields__}, "action": "fight_resolved"}
    )


# --- the pure rule ------------------------------------------------------------------------------


def test_three_reverted_corrections_and_a_fourth_needed_make_a_fight_with_the_values_seen() -> None:
    rows = [correction(30, 2), correction(20, 3), correction(10, 2)]
    verdict = judge(RULE, KEY, [planned(1)], rows, None, "d1", NOW, None)
    assert verdict.fight is not None
    assert (verdict.fight.target, verdict.fight.field, verdict.fight.desired) == (TARGET, "desiredCount", 4)
    assert verdict.fight.seen == (2, 3, 2, 1)
    assert [type(e) for e in verdict.events] == [FightDetected]
    expected = (
        "desiredCount of prod/api was corrected 3 times and changed back each time (values seen 2, 3, 2, 1"
    )
    assert expected in RULE.message(verdict.fight)


def test_nothing_planned_for_the_field_is_no_fight_however_many_corrections() -> None:
    rows = [correction(m) for m in (40, 30, 20, 10)]
    assert judge(RULE, KEY, [], rows, None, "d1", NOW, None).fight is None
    other = planned(before="app:1", after="app:2", field="taskDefinition")
    assert judge(RULE, KEY, [other], rows, None, "d1", NOW, None).fight is None


@pytest.mark.parametrize(
    "row",
    [
        correction(10, outcome=Outcome.DRY_RUN),
        correction(10, outcome=Outcome.FAILED),
        correction(10, outcome=Outcome.CONFLICT),
        correction(10, after=5),  # corrected to another desired value: the manifest changed since
        correction(10, target="prod/web"),
        correction(10, action=ECSAction.REDEPLOY),
    ],
    ids=["dry-run", "failed", "conflict", "other-desired-value", "other-target", "not-a-correction"],
)
def test_only_applied_corrections_of_the_same_field_to_the_same_value_count(row: ActionRecord) -> None:
    rows = [correction(30), correction(20), row]
    assert judge(RULE, KEY, [planned()], rows, None, "d1", NOW, None).fight is None
    assert judge(RULE, KEY, [planned()], [*rows, correction(5)], None, "d1", NOW, None).fight is not None


@pytest.mark.parametrize(
    ("action", "target", "field", "other"),
    [
        (ECSAction.UPDATE_SCALABLE_TARGET, "service/prod/api", "minCapacity", "maxCapacity"),
        (
            AuroraClusterAction.MODIFY_DB_CLUSTER,
            "omnirapeutic-production",
            "serverlessV2Scaling.maxCapacity",
            "backupRetentionPeriod",
        ),
        (ECSAction.UPDATE_SERVICE, TARGET, "taskDefinition", "desiredCount"),
    ],
    ids=["scalable-target-bounds", "aurora-settings", "task-definition"],
)
def test_each_field_of_each_kind_is_counted_on_its_own(
    action: str, target: str, field: str, other: str
) -> None:
    def fix(minutes: float, key: str) -> ActionRecord:
        return correction(minutes, 1, 2, field=key, action=action, target=target, reason="drift: differs")

    plan = Action(ECS, "api", action, target, {field: 1}, {field: 2}, "drift: differs")  # type: ignore[arg-type]
    others = [fix(30, other), fix(20, other), fix(10, other)]
    assert judge(RULE, KEY, [plan], others, None, "d1", NOW, None).fight is None
    verdict = judge(
        RULE, KEY, [plan], [*others, fix(25, field), fix(15, field), fix(5, field)], None, "d1", NOW, None
    )
    assert verdict.fight is not None
    assert (verdict.fight.target, verdict.fight.field) == (target, field)


def test_a_maintenance_window_silencing_and_re_enabling_alarms_is_not_a_fight() -> None:
    def alarm(minutes: float, before: bool, reason: str) -> ActionRecord:
        action = AlarmAction.DISABLE if not before else AlarmAction.ENABLE
        return correction(
            minutes, before, not before, field="actionsEnabled", action=action, target="a1", reason=reason
        )

    windows = [
        alarm(50, True, window_started("sunday")),
        alarm(40, False, window_ended("sunday")),
        alarm(30, True, window_started("sunday")),
        alarm(20, False, window_ended("sunday")),
    ]
    enable = Action(
        Kind("MaintenanceWindow"), "api", AlarmAction.ENABLE, "a1", {"actionsEnabled": False},
        {"actionsEnabled": True}, "drift",
    )  # fmt: skip
    assert judge(RULE, KEY, [enable], windows, None, "d1", NOW, None).fight is None
    ended = Action(
        Kind("MaintenanceWindow"), "api", AlarmAction.ENABLE, "a1", {"actionsEnabled": False},
        {"actionsEnabled": True}, window_ended("sunday"),
    )  # fmt: skip
    drifts = [alarm(m, False, "drift") for m in (30, 20, 10)]
    assert judge(RULE, KEY, [ended], drifts, None, "d1", NOW, None).fight is None  # a window's end
    assert judge(RULE, KEY, [enable], [*windows, *drifts], None, "d1", NOW, None).fight is not None


def test_a_fight_stays_while_corrections_are_needed_and_resumes_after_a_quiet_window() -> None:
    row = detected_row(90)
    still = judge(RULE, KEY, [planned()], [], row, "d1", NOW, NOW - timedelta(hours=2))
    assert still.fight is not None
    assert still.needed_at == NOW
    quiet = judge(RULE, KEY, [], [], row, "d1", NOW, NOW - timedelta(minutes=59))
    assert quiet.fight is not None
    assert not quiet.events
    over = judge(RULE, KEY, [], [], row, "d1", NOW, NOW - timedelta(hours=1))
    assert over.fight is None
    assert [type(e) for e in over.events] == [FightResolved]
    assert "no correction was needed for 1h" in over.events[0].reason  # type: ignore[union-attr]


def test_a_process_that_does_not_know_when_a_correction_was_last_needed_counts_this_pass() -> None:
    """After a restart a fight resumes one window after the first pass, never early."""
    verdict = judge(RULE, KEY, [], [], detected_row(300), "d1", NOW, None)
    assert verdict.fight is not None
    assert verdict.needed_at == NOW


def test_after_a_fight_ended_only_newer_corrections_count() -> None:
    rows = [correction(30), correction(20), correction(10)]
    assert judge(RULE, KEY, [planned()], rows, resolved_row(15), "d1", NOW, None).fight is None
    assert judge(RULE, KEY, [planned()], rows, resolved_row(35), "d1", NOW, None).fight is not None
    # The correction of the pass that ended the fight (recorded right after it) counts.
    assert judge(RULE, KEY, [planned()], rows, resolved_row(30), "d1", NOW, None).fight is not None


minutes_in_window = st.floats(min_value=0, max_value=59.9)
values = st.integers(min_value=0, max_value=3)  # never the desired 4


@given(
    threshold=st.integers(min_value=2, max_value=6),
    ages=st.lists(minutes_in_window, max_size=5),
    befores=st.lists(values, min_size=5, max_size=5),
)
def test_never_fighting_below_the_threshold(threshold: int, ages: list[float], befores: list[int]) -> None:
    rule = FightRule(threshold, timedelta(hours=1))
    rows = [correction(age, before) for age, before in zip(ages, befores, strict=False)][: threshold - 1]
    assert judge(rule, KEY, [planned()], rows, None, "d1", NOW, None).fight is None


@given(
    ages=st.lists(minutes_in_window, min_size=3, max_size=8),
    plans=st.lists(st.sampled_from([planned(), planned(1)]), max_size=2),
    needed=st.one_of(st.none(), st.integers(min_value=0, max_value=600)),
    detected=st.integers(min_value=0, max_value=600),
)
def test_a_manifest_change_always_resumes(
    ages: list[float], plans: list[Action], needed: int | None, detected: int
) -> None:
    needed_at = None if needed is None else NOW - timedelta(minutes=needed)
    rows = [correction(age) for age in ages]
    verdict = judge(RULE, KEY, plans, rows, detected_row(detected, "old"), "new", NOW, needed_at)
    assert verdict.fight is None
    assert [type(e) for e in verdict.events] == [FightResolved]


@given(
    outside=st.lists(st.floats(min_value=60, max_value=10_000), max_size=8),
    inside=st.lists(minutes_in_window, max_size=4),
)
def test_corrections_outside_the_window_never_count(outside: list[float], inside: list[float]) -> None:
    old = [correction(age) for age in outside]
    recent = [correction(age) for age in inside]
    with_old = judge(RULE, KEY, [planned()], [*old, *recent], None, "d1", NOW, None)
    without = judge(RULE, KEY, [planned()], recent, None, "d1", NOW, None)
    assert (with_old.fight is None) == (without.fight is None) == (len(inside) < RULE.threshold)


# --- passes against moto: a person keeps reverting api ------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def service(name: str, count: int = 4) -> Resource[Any]:
    model = ECSService.model_validate(
        {
            "apiVersion": "homeostat/v1",
            "kind": "ECSService",
            "metadata": {"name": name},
            "spec": {"cluster": "prod", "service": name, "desiredCount": count},
        }
    )
    return Resource(model, Source("services.yaml", 1))


class Stack:
    """moto's ECS with two services, homeostat's parts on one SQLite history, and a clock."""

    def __init__(self, clients: CountingClients, db: Path) -> None:
        self.clients = clients
        self.db = db
        self.clock = Clock()
        ecs = clients.client("ecs")
        ecs.create_cluster(clusterName="prod")
        ecs.register_task_definition(
            family="app", containerDefinitions=[{"name": "app", "image": "nginx", "memory": 128}]
        )
        for name in ("api", "web"):
            ecs.create_service(cluster="prod", serviceName=name, taskDefinition="app:1", desiredCount=1)
        self.restart()

    def restart(self) -> None:
        """A new process: a new history store, executor, reporter and fight watch on the same DB."""
        self.store = HistoryStore(f"sqlite:///{self.db}")
        self.reporter = Reporter(Metrics(CollectorRegistry(), gauges()))
        self.executor = Executor(self.store, self.reporter.metrics, structlog.get_logger(), self.clock)
        self.watch = FightWatch(self.store, RULE)

    def revert(self, name: str, count: int) -> None:
        """The person in the console."""
        self.clients.client("ecs").update_service(cluster="prod", service=name, desiredCount=count)
        self.clients.log.calls.clear()

    def run(self, desired: DesiredState, minutes: float = 1) -> PassReport:
        self.clock.now += timedelta(minutes=minutes)
        self.clients.log.calls.clear()
        report = run_pass(
            desired,
            [ECSServiceReconciler(recall=self.store)],
            self.clients,
            self.executor,
            clock=self.clock,
            dry_run=False,
            fights=self.watch,
        )
        self.reporter.pass_reported(report)
        return report

    def updates(self, name: str) -> int:
        return sum(1 for p in self.clients.log.of("UpdateService") if p["service"] == name)

    def rows(self, action: str) -> list[ActionRecord]:
        return [r for r in self.store.query(HistoryQuery(limit=1000)) if r.action == action]

    def sample(self, metric: str, **labels: str) -> float | None:
        return self.reporter.metrics.registry.get_sample_value(f"homeostat_{metric}", labels)


def states(report: PassReport) -> dict[str, State]:
    return {s.name: s.state for s in report.statuses}


@pytest.fixture
def stack(counting_clients: CountingClients, tmp_path: Path) -> Iterator[Stack]:
    with mock_aws():
        yield Stack(counting_clients, tmp_path / "history.db")


def desired_of(*resources: Resource[Any]) -> DesiredState:
    return DesiredState(Revision("r1"), Path(), resources)


def fight_three_times(stack: Stack, desired: DesiredState) -> PassReport:
    """Three corrections of api, each reverted by the person; the fourth pass finds it reverted."""
    for value in (2, 3, 2):
        report = stack.run(desired)
        assert states(report)["api"] == State.FIXED
        assert stack.updates("api") == 1
        stack.revert("api", value)
    stack.revert("web", 1)  # web drifts once: it is still reconciled
    return stack.run(desired)


def test_after_three_reverted_corrections_homeostat_stops_and_other_services_go_on(stack: Stack) -> None:
    desired = desired_of(service("api"), service("web"))
    report = fight_three_times(stack, desired)
    assert states(report) == {"api": State.FIGHTING, "web": State.FIXED}
    assert stack.updates("api") == 0  # no 4th UpdateService
    assert stack.updates("web") == 1
    api = next(s for s in report.statuses if s.name == "api")
    assert "corrected 3 times and changed back each time (values seen 1, 2, 3, 2; desired 4)" in api.message
    assert "manifest changes or 1h passes" in api.message
    [row] = stack.rows("fight_detected")
    assert (row.before, row.after["desiredCount"], row.outcome) == (
        {"desiredCount": [1, 2, 3, 2]},
        4,
        "conflict",
    )
    assert "corrected 3 times within 1h" in row.reason
    assert stack.sample("resource_fighting", kind="ECSService", name="api") == 1
    assert stack.sample("resource_fighting", kind="ECSService", name="web") == 0
    assert stack.sample("fights_total", kind="ECSService") == 1
    stack.run(desired)
    assert stack.updates("api") == 0
    assert len(stack.rows("fight_detected")) == 1  # one row per fight, however many passes
    assert stack.sample("fights_total", kind="ECSService") == 1
    stack.reporter.keep_only([(ECS, "web")])  # api's manifest removed: its series go
    assert stack.sample("resource_fighting", kind="ECSService", name="api") is None


def test_an_in_sync_pass_hashes_no_manifest_and_a_fighting_one_is_still_judged(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resource neither fighting nor correcting anything is no fight without its manifest's
    digest (an in-sync pass of 1,000 services would hash 1,000 manifests); a fighting one is
    judged on it, so it stays Fighting with nothing planned."""
    from homeostat.operator import fights

    hashed: list[str] = []
    digest = fights.manifest_digest
    monkeypatch.setattr(fights, "manifest_digest", lambda r: hashed.append(r.name) or digest(r))
    desired = desired_of(service("api"), service("web"))
    fight_three_times(stack, desired)
    hashed.clear()
    stack.revert("api", 4)  # the other party stopped: api needs no correction now
    report = stack.run(desired)
    assert states(report) == {"api": State.FIGHTING, "web": State.IN_SYNC}
    assert hashed == ["api"]


def test_a_restart_neither_repeats_the_row_nor_forgets_the_fight(stack: Stack) -> None:
    desired = desired_of(service("api"), service("web"))
    fight_three_times(stack, desired)
    stack.restart()
    report = stack.run(desired)
    assert states(report)["api"] == State.FIGHTING
    assert stack.updates("api") == 0
    assert len(stack.rows("fight_detected")) == 1
    assert stack.sample("resource_fighting", kind="ECSService", name="api") == 1
    assert stack.sample("fights_total", kind="ECSService") is None  # not counted again


def test_a_manifest_change_resumes_the_resource_at_once(stack: Stack) -> None:
    fight_three_times(stack, desired_of(service("api"), service("web")))
    report = stack.run(desired_of(service("api", count=5), service("web")))
    assert states(report)["api"] == State.FIXED
    assert stack.updates("api") == 1
    [row] = stack.rows("fight_resolved")
    assert "the manifest changed" in row.reason
    assert stack.sample("resource_fighting", kind="ECSService", name="api") == 0


def test_a_quiet_fight_window_resumes_and_a_needed_correction_restarts_it(stack: Stack) -> None:
    desired = desired_of(service("api"), service("web"))
    fight_three_times(stack, desired)
    stack.run(desired, minutes=50)  # still reverted: a correction is needed 50 minutes later
    stack.revert("api", 4)  # the person gives up and sets the desired value
    report = stack.run(desired, minutes=50)  # quiet, but only 50 minutes since the last need
    assert states(report)["api"] == State.FIGHTING
    report = stack.run(desired, minutes=10)
    assert states(report)["api"] == State.IN_SYNC
    [row] = stack.rows("fight_resolved")
    assert "no correction was needed for 1h" in row.reason
    stack.revert("api", 2)  # one more revert is corrected: a new fight needs a new series
    report = stack.run(desired)
    assert states(report)["api"] == State.FIXED
    assert stack.updates("api") == 1


def test_the_history_reads_applied_corrections_since_an_instant_and_the_newest_fight_rows(
    tmp_path: Path,
) -> None:
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    web = replace(correction(5), name="web")
    store.add(
        [
            correction(90),  # before `since`
            correction(30),
            correction(20, outcome=Outcome.DRY_RUN),
            correction(15, outcome=Outcome.FAILED),
            correction(10, action=ECSAction.REDEPLOY),
            web,
            detected_row(8),
            resolved_row(4),
        ]
    )
    found = store.corrections("ECSService", NOW - timedelta(hours=1), [str(ECSAction.UPDATE_SERVICE)])
    assert {name: [r.time for r in rows] for name, rows in found.items()} == {
        "api": [NOW - timedelta(minutes=30)],
        "web": [NOW - timedelta(minutes=5)],
    }
    newest = store.newest_of("ECSService", ["fight_detected", "fight_resolved"])
    assert list(newest) == ["api"]
    assert newest["api"].action == "fight_resolved"
    assert store.newest_of("AlarmActions", ["fight_detected", "fight_resolved"]) == {}
