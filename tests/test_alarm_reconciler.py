"""Specification of the AlarmActions and MaintenanceWindow reconcilers against moto (in process).

moto accepts more than 100 names per Enable/DisableAlarmActions call and ignores
DescribeAlarms paging, so these tests count and inspect every call through a
botocore hook (`counting_clients`) and use botocore's Stubber where paging or
a failure part-way through a listing must be shown.
"""

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from homeostat.desired_state.identifiers import Kind
from homeostat.reconcilers.actions import Action, Measurement
from homeostat.reconcilers.alarm_state import AlarmAction
from homeostat.reconcilers.alarms import AlarmReconciler
from homeostat.reconcilers.maintenance_window import MaintenanceWindowReconciler

from .alarm_helpers import (
    RecordingClients,
    actions_enabled,
    alarm_actions_yaml,
    alarm_reconcilers,
    one_off_window_yaml,
    put_alarms,
    put_composite_alarms,
    reconcile,
    weekly_window_yaml,
    write_desired,
)
from .conftest import REGION

START = datetime(2027, 3, 7, 2, tzinfo=UTC)
END = START + timedelta(hours=4)
METRIC = [f"prod-metric-{i:03d}" for i in range(200)]
COMPOSITE = [f"prod-composite-{i:02d}" for i in range(50)]


@pytest.fixture
def aws() -> Iterator[RecordingClients]:
    with mock_aws():
        yield RecordingClients()


def names_per_call(aws: RecordingClients, operation: str) -> list[int]:
    return [len(params["AlarmNames"]) for params in aws.log.of(operation)]


def runbook(tmp_path: Path) -> Any:
    """AlarmActions prod- enabled, and a one-off window silencing prod- on [START, END)."""
    return write_desired(
        tmp_path,
        {
            "alarms.yaml": alarm_actions_yaml("production-alarms", "alarmNamePrefix: prod-"),
            "window.yaml": one_off_window_yaml("sunday", START, END, "alarmNamePrefix: prod-"),
        },
    )


# --- the window: silence at the start, re-enable at the end --------------------------------------


def test_window_silences_250_metric_and_composite_alarms_in_calls_of_at_most_100(
    aws: RecordingClients, tmp_path: Path
) -> None:
    """During the window every selected alarm is disabled, 100 names per call, and the window owns it."""
    cloudwatch = aws.client("cloudwatch")
    put_alarms(cloudwatch, METRIC)
    put_composite_alarms(COMPOSITE, METRIC[0])
    aws.log.calls.clear()

    result = reconcile(runbook(tmp_path), aws, START + timedelta(minutes=1))

    assert all(r.error is None for r in result.results)
    assert set(actions_enabled(cloudwatch, "prod-").values()) == {False}
    assert names_per_call(aws, "DisableAlarmActions") == [100, 100, 50]
    assert {(a.kind, a.name, a.reason) for a in result.actions} == {
        (Kind("MaintenanceWindow"), "sunday", "maintenance window sunday started")
    }
    assert sorted(a.target for a in result.actions) == sorted(METRIC + COMPOSITE)
    assert result.plan(Kind("AlarmActions"), "production-alarms").actions == ()


def test_after_the_window_ends_every_alarm_is_re_enabled_as_the_window_ended(
    aws: RecordingClients, tmp_path: Path
) -> None:
    """The first pass after the end re-enables the alarms in calls of at most 100 names, saying why."""
    cloudwatch = aws.client("cloudwatch")
    put_alarms(cloudwatch, METRIC)
    put_composite_alarms(COMPOSITE, METRIC[0])
    desired = runbook(tmp_path)
    reconcile(desired, aws, START + timedelta(minutes=1))
    aws.log.calls.clear()

    result = reconcile(desired, aws, END + timedelta(seconds=1))

    assert set(actions_enabled(cloudwatch, "prod-").values()) == {True}
    assert names_per_call(aws, "EnableAlarmActions") == [100, 100, 50]
    assert {(a.kind, a.name, a.action, a.reason) for a in result.actions} == {
        (Kind("AlarmActions"), "production-alarms", "enable_alarm_actions", "maintenance window sunday ended")
    }


def test_alarms_disabled_before_a_restart_are_re_enabled_without_having_seen_the_start(
    aws: RecordingClients, tmp_path: Path
) -> None:
    """Level-triggered: alarms left disabled by a window are re-enabled by the first pass after its end."""
    cloudwatch = aws.client("cloudwatch")
    put_alarms(cloudwatch, METRIC[:5], enabled=False)
    desired = write_desired(
        tmp_path, {"window.yaml": one_off_window_yaml("sunday", START, END, "alarmNamePrefix: prod-")}
    )

    result = reconcile(desired, aws, END + timedelta(minutes=10))

    assert set(actions_enabled(cloudwatch, "prod-").values()) == {True}
    assert {(a.kind, a.reason) for a in result.actions} == {
        (Kind("MaintenanceWindow"), "maintenance window sunday ended")
    }


def test_a_pass_lists_each_prefix_once_in_pages_of_100_for_both_kinds(
    aws: RecordingClients, tmp_path: Path
) -> None:
    """Both alarm kinds share one listing per pass: one DescribeAlarms query per minimal prefix."""
    put_alarms(aws.client("cloudwatch"), METRIC[:3])
    desired = write_desired(
        tmp_path,
        {
            "alarms.yaml": alarm_actions_yaml("production-alarms", "alarmNamePrefix: prod-"),
            "window.yaml": weekly_window_yaml("sunday", "alarmNamePrefix: prod-metric-"),
        },
    )
    aws.log.calls.clear()

    reconcile(desired, aws, START - timedelta(days=1))

    [query] = aws.log.of("DescribeAlarms")
    assert query["AlarmNamePrefix"] == "prod-"
    assert query["MaxRecords"] == 100
    assert query["AlarmTypes"] == ["MetricAlarm", "CompositeAlarm"]


def test_alarms_selected_by_name_are_described_in_batches_of_100(
    aws: RecordingClients, tmp_path: Path
) -> None:
    """150 names that no prefix covers are read with two DescribeAlarms calls of at most 100 names."""
    names = [f"db-{i:03d}" for i in range(150)]
    put_alarms(aws.client("cloudwatch"), names)
    desired = write_desired(
        tmp_path,
        {"window.yaml": one_off_window_yaml("db", START, END, "alarmNames: [" + ", ".join(names) + "]")},
    )
    aws.log.calls.clear()

    result = reconcile(desired, aws, START)

    assert [len(q["AlarmNames"]) for q in aws.log.of("DescribeAlarms")] == [100, 50]
    assert all(q["MaxRecords"] == 100 for q in aws.log.of("DescribeAlarms"))
    assert len(result.actions) == 150
    assert names_per_call(aws, "DisableAlarmActions") == [100, 50]


# --- drift outside windows -----------------------------------------------------------------------


def test_alarms_disabled_by_hand_outside_a_window_are_restored_as_drift(
    aws: RecordingClients, tmp_path: Path
) -> None:
    """On a Wednesday, alarms someone disabled after Monday's pass saw them on are re-enabled by
    their AlarmActions, as drift (Sunday's window ended before that pass: it changed nothing since)."""
    cloudwatch = aws.client("cloudwatch")
    put_alarms(cloudwatch, METRIC[:10])
    put_composite_alarms(COMPOSITE[:2], METRIC[0])
    desired = write_desired(
        tmp_path,
        {
            "alarms.yaml": alarm_actions_yaml("production-alarms", "alarmNamePrefix: prod-"),
            "window.yaml": weekly_window_yaml("sunday", "alarmNamePrefix: prod-"),
        },
    )
    wednesday = datetime(2027, 3, 10, 12, tzinfo=UTC)
    reconcilers = alarm_reconcilers()
    assert reconcile(desired, aws, wednesday - timedelta(days=2), reconcilers=reconcilers).actions == []
    cloudwatch.disable_alarm_actions(AlarmNames=[METRIC[3], COMPOSITE[1]])

    result = reconcile(desired, aws, wednesday, reconcilers=reconcilers)

    assert [(a.kind, a.target, a.action, a.reason) for a in result.actions] == [
        (Kind("AlarmActions"), COMPOSITE[1], "enable_alarm_actions", "drift"),
        (Kind("AlarmActions"), METRIC[3], "enable_alarm_actions", "drift"),
    ]
    assert set(actions_enabled(cloudwatch, "prod-").values()) == {True}
    aws.log.calls.clear()
    again = reconcile(desired, aws, wednesday + timedelta(minutes=1), reconcilers=reconcilers)
    assert again.actions == []
    assert aws.log.operations() == {"DescribeAlarms"}


def test_actions_disabled_by_hand_after_the_pass_at_the_windows_end_are_drift(
    aws: RecordingClients, tmp_path: Path
) -> None:
    """The pass at the end re-enables as the window ended; a hand edit 10 minutes later is drift."""
    cloudwatch = aws.client("cloudwatch")
    put_alarms(cloudwatch, METRIC[:3])
    desired = runbook(tmp_path)
    reconcilers = alarm_reconcilers()
    reconcile(desired, aws, START + timedelta(minutes=1), reconcilers=reconcilers)
    at_end = reconcile(desired, aws, END, reconcilers=reconcilers)
    assert {a.reason for a in at_end.actions} == {"maintenance window sunday ended"}
    cloudwatch.disable_alarm_actions(AlarmNames=[METRIC[1]])

    later = reconcile(desired, aws, END + timedelta(minutes=10), reconcilers=reconcilers)

    assert [(a.kind, a.name, a.target, a.reason) for a in later.actions] == [
        (Kind("AlarmActions"), "production-alarms", METRIC[1], "drift")
    ]


def test_a_first_pass_days_after_a_window_re_enables_what_it_left_off_as_the_window_ended(
    aws: RecordingClients, tmp_path: Path
) -> None:
    """A process that saw no pass since the window's end (down over the end) names the window."""
    cloudwatch = aws.client("cloudwatch")
    put_alarms(cloudwatch, METRIC[:2], enabled=False)
    result = reconcile(runbook(tmp_path), aws, END + timedelta(days=3))
    assert {(a.kind, a.reason) for a in result.actions} == {
        (Kind("AlarmActions"), "maintenance window sunday ended")
    }


def test_alarms_nothing_selects_are_never_touched(aws: RecordingClients, tmp_path: Path) -> None:
    """Alarms outside every selector keep whatever actionsEnabled they have, even during a window."""
    cloudwatch = aws.client("cloudwatch")
    put_alarms(cloudwatch, ["prod-a"])
    put_alarms(cloudwatch, ["staging-a"], enabled=False)
    put_alarms(cloudwatch, ["staging-b"])
    reconcile(runbook(tmp_path), aws, START)
    assert actions_enabled(cloudwatch, "staging-") == {"staging-a": False, "staging-b": True}


def test_a_suspended_alarm_actions_freezes_only_alarms_no_live_window_selects(
    aws: RecordingClients, tmp_path: Path
) -> None:
    """A suspended AlarmActions is not reconciled: its alarm outside every window stays as it is,
    while an alarm a live window selects is re-enabled after maintenance (rule 3)."""
    cloudwatch = aws.client("cloudwatch")
    put_alarms(cloudwatch, ["prod-a", "ops-b"], enabled=False)
    desired = write_desired(
        tmp_path,
        {
            "alarms.yaml": alarm_actions_yaml(
                "frozen", "alarmNames: [prod-a, ops-b]", extra="  suspend: true\n"
            ),
            "window.yaml": weekly_window_yaml("sunday", "alarmNamePrefix: prod-"),
        },
    )
    result = reconcile(desired, aws, datetime(2027, 3, 10, tzinfo=UTC))
    assert [(a.kind, a.name, a.target) for a in result.actions] == [
        (Kind("MaintenanceWindow"), "sunday", "prod-a")
    ]
    assert actions_enabled(cloudwatch, "prod-a") == {"prod-a": True}
    assert actions_enabled(cloudwatch, "ops-b") == {"ops-b": False}


# --- bad input: an alarm that does not exist ---------------------------------------------------


def test_alarm_actions_naming_a_missing_alarm_is_an_error_of_that_resource_only(
    aws: RecordingClients, tmp_path: Path
) -> None:
    """A named alarm that does not exist errors its resource; its existing alarms and others proceed."""
    cloudwatch = aws.client("cloudwatch")
    put_alarms(cloudwatch, ["api-5xx", "web-5xx"], enabled=False)
    desired = write_desired(
        tmp_path,
        {
            "api.yaml": alarm_actions_yaml("api", "alarmNames: [api-5xx, api-typo]"),
            "web.yaml": alarm_actions_yaml("web", "alarmNames: [web-5xx]"),
        },
    )
    result = reconcile(desired, aws, START)
    assert result.plan(Kind("AlarmActions"), "api").error == "alarm(s) not found: api-typo"
    assert result.plan(Kind("AlarmActions"), "web").error is None
    assert actions_enabled(cloudwatch, "") == {"api-5xx": True, "web-5xx": True}


# --- plan notes, measurements, wake times --------------------------------------------------------


def test_window_plan_notes_its_next_edges_and_the_alarms_it_would_silence(
    aws: RecordingClients, tmp_path: Path
) -> None:
    """Before a window, its plan says when it starts and ends and which alarms it would silence."""
    put_alarms(aws.client("cloudwatch"), ["prod-a", "prod-b"])
    result = reconcile(runbook(tmp_path), aws, START - timedelta(hours=1), apply=False)
    plan = result.plan(Kind("MaintenanceWindow"), "sunday")
    assert plan.notes == (
        "next start 2027-03-07T02:00:00Z, end 2027-03-07T06:00:00Z",
        "would silence 2 alarm(s): prod-a, prod-b",
    )


def test_plans_report_window_activity_and_managed_alarm_counts(aws: RecordingClients, tmp_path: Path) -> None:
    """Window plans carry maintenance_window_active; every alarm plan carries the same alarms_managed."""
    put_alarms(aws.client("cloudwatch"), ["prod-a", "prod-b", "other"])
    result = reconcile(runbook(tmp_path), aws, START, apply=False)
    managed = [
        ("alarms_managed", (("state", "enabled"),), 0),
        ("alarms_managed", (("state", "disabled"),), 2),
    ]
    window = result.plan(Kind("MaintenanceWindow"), "sunday").measurements
    assert as_tuples(window) == [("maintenance_window_active", (("name", "sunday"),), 1), *managed]
    assert as_tuples(result.plan(Kind("AlarmActions"), "production-alarms").measurements) == managed


def as_tuples(measurements: tuple[Measurement, ...]) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    return [(m.metric.name, tuple(sorted(m.labels.items())), m.value) for m in measurements]


def test_wake_times_are_each_windows_next_start_and_end(tmp_path: Path) -> None:
    """The daemon is asked to wake at every window's next start and end (suspended windows excluded)."""
    desired = write_desired(
        tmp_path,
        {
            "a.yaml": one_off_window_yaml("once", START, END, "alarmNamePrefix: prod-"),
            "b.yaml": weekly_window_yaml("daily", "alarmNamePrefix: db-", schedule="0 5 * * *"),
            "c.yaml": weekly_window_yaml("paused", "alarmNamePrefix: x-").replace(
                "timeZone: UTC", "timeZone: UTC\n  suspend: true"
            ),
        },
    )
    now = START - timedelta(hours=3)
    assert MaintenanceWindowReconciler().wake_times(desired, now) == [
        START,
        datetime(2027, 3, 7, 5, tzinfo=UTC),
        END,
        datetime(2027, 3, 7, 9, tzinfo=UTC),
    ]
    assert AlarmReconciler({}).wake_times(desired, now) == []


# --- paging and fail-closed (Stubber: moto returns one page and never fails part-way) ------------


class StubbedClients:
    """An AwsClients whose cloudwatch client answers from a Stubber."""

    def __init__(self) -> None:
        self.cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        self.stubber = Stubber(self.cloudwatch)

    def client(self, service: str) -> Any:
        assert service == "cloudwatch"
        return self.cloudwatch


def page(names: list[str], enabled: bool, token: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "MetricAlarms": [{"AlarmName": n, "ActionsEnabled": enabled} for n in names],
        "CompositeAlarms": [],
    }
    if token:
        response["NextToken"] = token
    return response


def query(prefix: str, token: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "AlarmNamePrefix": prefix,
        "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
        "MaxRecords": 100,
    }
    if token:
        params["NextToken"] = token
    return params


def two_prefixes(tmp_path: Path) -> Any:
    return write_desired(
        tmp_path,
        {
            "prod.yaml": alarm_actions_yaml("prod", "alarmNamePrefix: prod-"),
            "stage.yaml": alarm_actions_yaml("stage", "alarmNamePrefix: stage-"),
        },
    )


def test_listing_asks_for_pages_of_100_and_follows_next_token(tmp_path: Path) -> None:
    """DescribeAlarms is called with MaxRecords=100 and again with each NextToken until none is left."""
    aws = StubbedClients()
    first = [f"prod-{i:03d}" for i in range(100)]
    aws.stubber.add_response("describe_alarms", page(first, False, token="t1"), query("prod-"))
    aws.stubber.add_response("describe_alarms", page(["prod-100"], True), query("prod-", "t1"))
    aws.stubber.add_response("describe_alarms", page([], True), query("stage-"))
    with aws.stubber:
        result = reconcile(two_prefixes(tmp_path), aws, START, apply=False)
    aws.stubber.assert_no_pending_responses()
    assert sorted(a.target for a in result.plan(Kind("AlarmActions"), "prod").actions) == first


def test_a_listing_that_fails_part_way_changes_nothing_for_its_selector(tmp_path: Path) -> None:
    """Throttled on page 2: the prefix's resource errors with no actions; other selectors proceed."""
    aws = StubbedClients()
    aws.stubber.add_response("describe_alarms", page(["prod-a"], False, token="t1"), query("prod-"))
    aws.stubber.add_client_error(
        "describe_alarms", service_error_code="Throttling", expected_params=query("prod-", "t1")
    )
    aws.stubber.add_response("describe_alarms", page(["stage-a"], False), query("stage-"))
    with aws.stubber:
        result = reconcile(two_prefixes(tmp_path), aws, START, apply=False)
    prod = result.plan(Kind("AlarmActions"), "prod")
    assert prod.actions == ()
    assert prod.error is not None
    assert "Throttling" in prod.error
    assert "fail closed" in prod.error
    assert prod.measurements == ()
    assert [a.target for a in result.plan(Kind("AlarmActions"), "stage").actions] == ["stage-a"]


def test_a_failed_re_enable_retried_by_the_next_pass_still_names_the_window(tmp_path: Path) -> None:
    """The end's re-enable is throttled; the retry a minute later is still "... ended", not drift."""
    aws = StubbedClients()
    desired = runbook(tmp_path)
    reconcilers = alarm_reconcilers()
    aws.stubber.add_response("describe_alarms", page(["prod-a"], False), query("prod-"))
    aws.stubber.add_client_error("enable_alarm_actions", service_error_code="Throttling")
    aws.stubber.add_response("describe_alarms", page(["prod-a"], False), query("prod-"))
    aws.stubber.add_response("enable_alarm_actions", {}, {"AlarmNames": ["prod-a"]})
    with aws.stubber:
        first = reconcile(desired, aws, END, reconcilers=reconcilers)
        retry = reconcile(desired, aws, END + timedelta(minutes=1), reconcilers=reconcilers)
    aws.stubber.assert_no_pending_responses()
    assert [r.error is None for r in first.results] == [False]
    assert [(a.target, a.reason) for a in retry.actions] == [("prod-a", "maintenance window sunday ended")]
    assert [r.error for r in retry.results] == [None]


def test_a_failed_enable_call_fails_every_action_of_its_batch() -> None:
    """When an EnableAlarmActions call fails, each alarm in it gets that error; other batches succeed."""
    aws = StubbedClients()
    actions = [
        Action(Kind("AlarmActions"), "prod", AlarmAction.ENABLE, f"a-{i:03d}", {}, {}, "drift")
        for i in range(150)
    ] + [Action(Kind("AlarmActions"), "prod", AlarmAction.DISABLE, "b", {}, {}, "drift")]
    aws.stubber.add_response("disable_alarm_actions", {}, {"AlarmNames": ["b"]})
    aws.stubber.add_client_error("enable_alarm_actions", service_error_code="Throttling")
    aws.stubber.add_response(
        "enable_alarm_actions", {}, {"AlarmNames": [f"a-{i:03d}" for i in range(100, 150)]}
    )
    with aws.stubber:
        results = AlarmReconciler({}).apply(actions, aws)
    assert [r.action for r in results] == actions
    assert Counter(r.error is None for r in results) == Counter({False: 100, True: 51})
    assert all("Throttling" in (r.error or "") for r in results[:100])


# --- one listing per pass, no state shared between passes or processes ------------------------


class FakeCloudWatch:
    """Answers DescribeAlarms with one alarm and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def describe_alarms(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        return page(["prod-a"], True)


class FakeClients:
    def __init__(self, cloudwatch: FakeCloudWatch) -> None:
        self.cloudwatch = cloudwatch

    def client(self, service: str) -> Any:
        return self.cloudwatch


def test_each_pass_lists_once_for_both_kinds_and_never_reuses_a_listing(tmp_path: Path) -> None:
    """One DescribeAlarms per pass covers the AlarmActions and the window; the next pass lists again."""
    cloudwatch = FakeCloudWatch()
    desired = runbook(tmp_path)
    reconcilers = alarm_reconcilers()
    reconcile(desired, FakeClients(cloudwatch), START, apply=False, reconcilers=reconcilers)
    assert cloudwatch.calls == 1
    reconcile(desired, FakeClients(cloudwatch), START, apply=False, reconcilers=reconcilers)
    reconcile(desired, FakeClients(cloudwatch), START, apply=False)  # another process
    assert cloudwatch.calls == 3


def test_a_window_naming_a_missing_alarm_notes_it_and_still_silences_the_rest(
    aws: RecordingClients, tmp_path: Path
) -> None:
    """A window's missing alarm is a plan note, not an error, so backoff never delays its edges."""
    put_alarms(aws.client("cloudwatch"), ["db-cpu"])
    desired = write_desired(
        tmp_path, {"window.yaml": one_off_window_yaml("db", START, END, "alarmNames: [db-cpu, db-typo]")}
    )
    plan = reconcile(desired, aws, START).plan(Kind("MaintenanceWindow"), "db")
    assert plan.error is None
    assert "alarm(s) not found: db-typo" in plan.notes
    assert [a.target for a in plan.actions] == ["db-cpu"]
