"""Specification of `MaintenanceWindow.applyPendingMaintenance` (contract section 2, issue 14 part 1).

While an occurrence of the window is active, the pending maintenance actions of the listed
clusters are applied, each once per occurrence (restarts included: the history is the
memory), `OptInType=immediate`; never outside an active occurrence. Outside one they are
read at most once an hour, only for the notes; `plan` reads them too. moto lacks the two
operations: `pending_helpers.FakePendingMaintenance` answers them, moto answers
DescribeDBClusters (the ARNs).
"""

import textwrap
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import structlog
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.parsers import ResponseParserError
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.loading import load_directory
from homeostat.desired_state.state import DesiredState
from homeostat.desired_state.windows import current_start
from homeostat.operator.execution import Executor
from homeostat.operator.history import HistoryStore
from homeostat.operator.passes import observe_and_diff, run_pass
from homeostat.operator.statuses import PassReport, State
from homeostat.reconcilers.maintenance_window import MaintenanceWindow, MaintenanceWindowReconciler
from homeostat.reconcilers.pending_maintenance import (
    Pending,
    PendingMaintenance,
    PendingMaintenanceAction,
    PendingRead,
    occurrence_key,
    plan_pending,
    read_pending,
    remembered_sent,
)
from homeostat.reconcilers.registry import default_reconcilers, kind_table
from homeostat.reconcilers.rollouts import Remembered

from .conftest import REGION, CountingClients, MotoServer
from .pending_helpers import APPLY, DESCRIBE, FakePendingMaintenance, detail
from .snapshot_helpers import create_cluster

CLUSTER = "omnirapeutic-production"
OTHER = "omnirapeutic-reporting"
ARN = f"arn:aws:rds:{REGION}:123456789012:cluster:{CLUSTER}"
OTHER_ARN = f"arn:aws:rds:{REGION}:123456789012:cluster:{OTHER}"
SUNDAY = datetime(2026, 12, 6, 2, tzinfo=UTC)  # an occurrence of "0 2 * * SUN" (4h) starts
INSIDE = SUNDAY + timedelta(minutes=30)
OUTSIDE = SUNDAY - timedelta(days=2)  # the Friday before
KIND = Kind("MaintenanceWindow")


def window_yaml(name: str = "sunday", listed: str = f"- dbClusterIdentifier: {CLUSTER}") -> str:
    return textwrap.dedent(
        """\
        apiVersion: homeostat/v1
        kind: MaintenanceWindow
        metadata: {name: %s}
        spec:
          schedule: "0 2 * * SUN"
          duration: 4h
          applyPendingMaintenance:
        %s
        """
    ) % (name, textwrap.indent(listed, "    "))


def desired_of(directory: Path, *documents: str) -> DesiredState:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "windows.yaml").write_text("---\n".join(documents))
    return load_directory(directory, kinds=kind_table())


@pytest.fixture
def fake() -> FakePendingMaintenance:
    return FakePendingMaintenance(
        pending={ARN: [detail("system-update"), detail("db-upgrade")]},
    )


@pytest.fixture
def clients(counting_clients: CountingClients, fake: FakePendingMaintenance) -> Iterator[CountingClients]:
    with mock_aws():
        rds = boto3.client("rds", region_name=REGION)
        create_cluster(rds, CLUSTER)
        create_cluster(rds, OTHER)
        fake.attach(counting_clients.client("rds"))
        yield counting_clients


def one_pass(
    desired: DesiredState, clients: CountingClients, store: HistoryStore, reconcilers: Any, now: datetime
) -> PassReport:
    executor = Executor(store, None, structlog.get_logger(), lambda: now)
    return run_pass(desired, reconcilers, clients, executor, clock=lambda: now, dry_run=False)


def status_of(report: PassReport, name: str = "sunday") -> Any:
    return next(s for s in report.statuses if s.kind == KIND and s.name == name)


def store_at(tmp_path: Path) -> HistoryStore:
    return HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")


def test_inside_the_window_each_pending_action_is_applied_once_by_arn_and_immediately(
    clients: CountingClients, fake: FakePendingMaintenance, tmp_path: Path
) -> None:
    store = store_at(tmp_path)
    report = one_pass(
        desired_of(tmp_path / "d", window_yaml()), clients, store, default_reconcilers(recall=store), INSIDE
    )

    assert fake.applied == [
        {"ResourceIdentifier": ARN, "ApplyAction": "system-update", "OptInType": "immediate"},
        {"ResourceIdentifier": ARN, "ApplyAction": "db-upgrade", "OptInType": "immediate"},
    ]
    status = status_of(report)
    assert status.state == State.FIXED
    rows = [r for r in status.records if r.action == PendingMaintenanceAction.APPLY_PENDING_MAINTENANCE]
    assert [r.outcome for r in rows] == ["applied", "applied"]
    assert {r.target for r in rows} == {CLUSTER}
    assert all("sunday@2026-12-06T02:00:00Z" in r.reason for r in rows)
    assert {r.after["occurrence"] for r in rows} == {"sunday@2026-12-06T02:00:00Z"}


def test_outside_the_window_nothing_is_applied_and_the_notes_say_what_is_pending(
    clients: CountingClients, fake: FakePendingMaintenance, tmp_path: Path
) -> None:
    store = store_at(tmp_path)
    report = one_pass(
        desired_of(tmp_path / "d", window_yaml()), clients, store, default_reconcilers(recall=store), OUTSIDE
    )

    assert fake.applied == []
    status = status_of(report)
    assert status.state == State.IN_SYNC
    assert f"pending maintenance on {CLUSTER}: system-update, db-upgrade" in status.message
    assert status.plan.facts["pendingMaintenance"] == [f"{CLUSTER}: system-update", f"{CLUSTER}: db-upgrade"]


def test_the_actions_filter_is_honoured(
    clients: CountingClients, fake: FakePendingMaintenance, tmp_path: Path
) -> None:
    store = store_at(tmp_path)
    listed = f"- dbClusterIdentifier: {CLUSTER}\n  actions: [system-update]"
    report = one_pass(
        desired_of(tmp_path / "d", window_yaml(listed=listed)),
        clients,
        store,
        default_reconcilers(recall=store),
        INSIDE,
    )

    assert [p["ApplyAction"] for p in fake.applied] == ["system-update"]
    assert f"{CLUSTER} db-upgrade: not in this window's actions; left to AWS" in status_of(report).plan.notes


def test_never_twice_in_one_occurrence_across_a_restart_and_again_in_the_next_occurrence(
    clients: CountingClients, fake: FakePendingMaintenance, tmp_path: Path
) -> None:
    """AWS keeps listing the applied actions here (the fake ignores the opt-in): only the
    history keeps a new process from sending them again in the same occurrence."""
    desired = desired_of(tmp_path / "d", window_yaml())
    first = store_at(tmp_path)
    one_pass(desired, clients, first, default_reconcilers(recall=first), INSIDE)
    assert len(fake.applied) == 2
    first.close()

    restarted = store_at(tmp_path)  # a new process: new reconcilers, the same history database
    later = one_pass(
        desired, clients, restarted, default_reconcilers(recall=restarted), INSIDE + timedelta(hours=3)
    )
    assert len(fake.applied) == 2
    assert status_of(later).state == State.IN_SYNC
    assert (
        "system-update: applied in this occurrence (sunday@2026-12-06T02:00:00Z)" in status_of(later).message
    )

    next_week = one_pass(
        desired, clients, restarted, default_reconcilers(recall=restarted), INSIDE + timedelta(days=7)
    )
    assert len(fake.applied) == 4
    assert {r.after["occurrence"] for r in status_of(next_week).records} == {"sunday@2026-12-13T02:00:00Z"}


def test_an_interrupted_application_counts_as_sent() -> None:
    """AWS may have seen a call the process died in: a restart must not send it again."""

    class Rows:
        def remembered(
            self, kind: str, names: Sequence[str], action: str, outcomes: Sequence[str]
        ) -> dict[str, list[Remembered]]:
            after = {
                "occurrence": "sunday@2026-12-06T02:00:00Z",
                "cluster": CLUSTER,
                "action": "system-update",
            }
            # Only the interrupted row: it is recalled only if interrupted rows are asked for.
            return (
                {name: [Remembered(SUNDAY, after, None)] for name in names}
                if "interrupted" in outcomes
                else {}
            )

    assert remembered_sent(Rows(), KIND, "sunday") == frozenset(
        {("sunday@2026-12-06T02:00:00Z", CLUSTER, "system-update")}
    )
    assert remembered_sent(None, KIND, "sunday") is None


def test_an_action_already_opted_in_immediately_is_not_sent_again(
    clients: CountingClients, fake: FakePendingMaintenance, tmp_path: Path
) -> None:
    """`plan` has no history: AWS's own OptInStatus keeps it, and a person's opt-in, from repeating."""
    fake.pending[ARN] = [detail("system-update", opt_in_status="immediate")]
    store = store_at(tmp_path)
    report = one_pass(
        desired_of(tmp_path / "d", window_yaml()), clients, store, default_reconcilers(recall=store), INSIDE
    )
    assert fake.applied == []
    assert "already opted in for immediate application" in status_of(report).message


def test_outside_the_window_the_pending_actions_are_read_at_most_once_an_hour(
    clients: CountingClients, fake: FakePendingMaintenance, tmp_path: Path
) -> None:
    desired = desired_of(tmp_path / "d", window_yaml())
    store = store_at(tmp_path)
    reconcilers = default_reconcilers(recall=store)
    for minutes in (0, 10, 59):
        one_pass(desired, clients, store, reconcilers, OUTSIDE + timedelta(minutes=minutes))
    assert len(fake.describes) == 1
    one_pass(desired, clients, store, reconcilers, OUTSIDE + timedelta(minutes=60))
    assert len(fake.describes) == 2
    # Inside the window every pass reads.
    for seconds in (0, 60, 120):
        one_pass(desired, clients, store, reconcilers, INSIDE + timedelta(seconds=seconds))
    assert len(fake.describes) == 5


def test_one_paged_read_per_pass_serves_every_listed_cluster_of_every_window(
    clients: CountingClients, fake: FakePendingMaintenance, tmp_path: Path
) -> None:
    fake.pending[OTHER_ARN] = [detail("system-update")]
    fake.page_size = 1  # AWS may answer fewer than MaxRecords: Marker is followed
    both = f"- dbClusterIdentifier: {CLUSTER}\n- dbClusterIdentifier: {OTHER}"
    desired = desired_of(
        tmp_path / "d", window_yaml("sunday"), window_yaml("saturday", both).replace("SUN", "SAT")
    )
    clients.log.calls.clear()
    report = observe_and_diff(desired, default_reconcilers(), clients, OUTSIDE)

    counts = clients.log.count()
    assert (counts["DescribeDBClusters"], counts[DESCRIBE]) == (1, 2)  # two pages of one read
    [first, second] = clients.log.of(DESCRIBE)
    assert first["Filters"] == [{"Name": "db-cluster-id", "Values": [ARN, OTHER_ARN]}]
    assert first["MaxRecords"] == 100
    assert second["Marker"] == "1"
    [saturday] = [p for _, r, p in report[0] if r.name == "saturday"]
    assert saturday.facts["pendingMaintenance"] == [
        f"{CLUSTER}: system-update",
        f"{CLUSTER}: db-upgrade",
        f"{OTHER}: system-update",
    ]


def test_plan_reads_the_pending_actions_and_shows_what_it_would_apply(
    clients: CountingClients, fake: FakePendingMaintenance, tmp_path: Path
) -> None:
    desired = desired_of(tmp_path / "d", window_yaml())
    planned, _ = observe_and_diff(desired, default_reconcilers(), clients, INSIDE)

    [plan] = [p for _, r, p in planned if r.kind == KIND]
    assert [a.after["action"] for a in plan.actions] == ["system-update", "db-upgrade"]
    assert all("would apply unless the history holds it applied" in a.reason for a in plan.actions)
    assert fake.applied == []


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (ResponseParserError("invalid XML received"), "ResponseParserError: invalid XML received"),
        (
            EndpointConnectionError(endpoint_url="https://rds.us-east-1.amazonaws.com"),
            "EndpointConnectionError: Could not connect",
        ),
        (
            ClientError({"Error": {"Code": "InternalFailure", "Message": "boom"}}, DESCRIBE),
            f"{DESCRIBE} failed: InternalFailure: boom",
        ),
        (RuntimeError("a bug"), "RuntimeError: a bug"),
    ],
    ids=["ResponseParserError", "BotoCoreError", "ClientError", "any-exception"],
)
def test_a_failed_read_is_the_windows_error_inside_it_and_a_note_outside_it(
    clients: CountingClients, fake: FakePendingMaintenance, tmp_path: Path, failure: Exception, said: str
) -> None:
    fake.failure[DESCRIBE] = failure
    desired = desired_of(tmp_path / "d", window_yaml(), window_yaml("plain", "[]"))
    store = store_at(tmp_path)

    inside = one_pass(desired, clients, store, default_reconcilers(recall=store), INSIDE)
    assert status_of(inside).state == State.ERROR
    assert status_of(inside).message.startswith(f"cannot read pending maintenance: {said}")
    assert status_of(inside, "plain").state == State.IN_SYNC  # the pass went on
    assert fake.applied == []

    outside = one_pass(desired, clients, store, default_reconcilers(recall=store), OUTSIDE)
    assert status_of(outside).state == State.IN_SYNC
    assert "cannot read pending maintenance" in status_of(outside).message


@pytest.mark.parametrize(
    "failure",
    [ResponseParserError("invalid XML received"), RuntimeError("a bug")],
    ids=["ResponseParserError", "any-exception"],
)
def test_a_failed_application_is_that_actions_error_and_the_others_are_still_sent(
    clients: CountingClients, fake: FakePendingMaintenance, tmp_path: Path, failure: Exception
) -> None:
    fake.failure[APPLY] = failure
    store = store_at(tmp_path)
    report = one_pass(
        desired_of(tmp_path / "d", window_yaml()), clients, store, default_reconcilers(recall=store), INSIDE
    )
    status = status_of(report)
    assert status.state == State.ERROR
    assert [r.outcome for r in status.records] == ["failed", "failed"]
    assert type(failure).__name__ in (status.records[0].error or "")
    # A failed application is not remembered as sent: a later pass of the occurrence retries it.
    del fake.failure[APPLY]
    one_pass(
        desired_of(tmp_path / "d", window_yaml()),
        clients,
        store,
        default_reconcilers(recall=store),
        INSIDE + timedelta(minutes=10),
    )
    assert len(fake.applied) == 2


def test_a_listed_cluster_that_does_not_exist_is_an_error_only_inside_the_window(
    clients: CountingClients, tmp_path: Path
) -> None:
    desired = desired_of(tmp_path / "d", window_yaml(listed="- dbClusterIdentifier: no-such-cluster"))
    store = store_at(tmp_path)
    inside = one_pass(desired, clients, store, default_reconcilers(recall=store), INSIDE)
    assert (status_of(inside).state, status_of(inside).message) == (
        State.ERROR,
        "DB cluster(s) not found: no-such-cluster",
    )
    outside = one_pass(desired, clients, store, default_reconcilers(recall=store), OUTSIDE)
    assert status_of(outside).state == State.IN_SYNC
    assert "DB cluster(s) not found: no-such-cluster" in status_of(outside).message


def test_the_window_start_silences_alarms_and_applies_maintenance_in_one_pass(
    clients: CountingClients, fake: FakePendingMaintenance, tmp_path: Path
) -> None:
    """Two reconcilers act on the window's resource in that pass: each sends its own actions."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.put_metric_alarm(
        AlarmName=f"{CLUSTER}-cpu",
        MetricName="CPUUtilization",
        Namespace="AWS/RDS",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=80,
        ComparisonOperator="GreaterThanThreshold",
        ActionsEnabled=True,
    )
    window = window_yaml().replace(
        "  applyPendingMaintenance:",
        f"  silenceAlarms: [{{alarmNamePrefix: {CLUSTER}}}]\n  applyPendingMaintenance:",
    )
    store = store_at(tmp_path)
    report = one_pass(
        desired_of(tmp_path / "d", window), clients, store, default_reconcilers(recall=store), SUNDAY
    )

    status = status_of(report)
    assert status.state == State.FIXED
    assert sorted(str(r.action) for r in status.records) == [
        "apply_pending_maintenance",
        "apply_pending_maintenance",
        "disable_alarm_actions",
    ]
    assert all(r.outcome == "applied" for r in status.records)
    [alarm] = cloudwatch.describe_alarms(AlarmNamePrefix=CLUSTER)["MetricAlarms"]
    assert alarm["ActionsEnabled"] is False
    assert len(fake.applied) == 2


# The pure decision ---------------------------------------------------------------------------

WINDOW = MaintenanceWindow.model_validate(
    {
        "apiVersion": "homeostat/v1",
        "kind": "MaintenanceWindow",
        "metadata": {"name": "sunday"},
        "spec": {
            "schedule": "0 2 * * SUN",
            "duration": "4h",
            "applyPendingMaintenance": [{"dbClusterIdentifier": CLUSTER, "actions": ["system-update"]}],
        },
    }
).spec
LISTED = WINDOW.applyPendingMaintenance


def read_of(*pending: Pending, at: datetime = OUTSIDE) -> PendingRead:
    return PendingRead(at, frozenset({CLUSTER}), {CLUSTER: ARN}, {CLUSTER: pending})


def test_an_action_aws_would_apply_before_the_next_occurrence_is_warned_of() -> None:
    forced = Pending("system-update", forced_apply=SUNDAY - timedelta(hours=1))
    planned = plan_pending(KIND, "sunday", WINDOW, LISTED, read_of(forced), frozenset(), OUTSIDE)
    assert planned.actions == ()
    assert planned.facts["maintenanceWarnings"] == [
        f"warning: {CLUSTER} system-update: ForcedApplyDate 2026-12-06T01:00:00Z before the window's next "
        "start 2026-12-06T02:00:00Z; AWS would apply it outside the window"
    ]
    assert planned.facts["maintenanceWarnings"][0] in planned.notes


@pytest.mark.parametrize(
    ("pending", "warned"),
    [
        (Pending("system-update", auto_applied_after=SUNDAY - timedelta(minutes=1)), True),
        (Pending("system-update", auto_applied_after=SUNDAY), False),  # applied in the window first
        (Pending("system-update", forced_apply=SUNDAY + timedelta(days=30)), False),
        (Pending("system-update"), False),
        (Pending("db-upgrade", forced_apply=OUTSIDE), False),  # not the window's to apply
    ],
    ids=["auto-applied-before", "auto-applied-at-start", "forced-later", "undated", "filtered-out"],
)
def test_the_warning_compares_the_dates_with_the_next_start(pending: Pending, *, warned: bool) -> None:
    planned = plan_pending(KIND, "sunday", WINDOW, LISTED, read_of(pending), frozenset(), OUTSIDE)
    assert bool(planned.facts["maintenanceWarnings"]) is warned


def test_a_read_from_before_the_occurrence_began_is_not_acted_on() -> None:
    stale = read_of(Pending("system-update"), at=SUNDAY - timedelta(seconds=1))
    planned = plan_pending(KIND, "sunday", WINDOW, LISTED, stale, frozenset(), INSIDE)
    assert planned.actions == ()
    fresh = plan_pending(
        KIND, "sunday", WINDOW, LISTED, read_of(Pending("system-update"), at=SUNDAY), frozenset(), INSIDE
    )
    assert [a.params["ResourceIdentifier"] for a in fresh.actions] == [ARN]


def test_the_reconciler_remembers_its_last_read_on_the_instance_not_the_module(
    clients: CountingClients, fake: FakePendingMaintenance, tmp_path: Path
) -> None:
    desired = desired_of(tmp_path / "d", window_yaml())
    resources = list(desired.of_kind(KIND))
    for _ in range(2):  # two instances (two wirings) read once each
        reconciler = MaintenanceWindowReconciler()
        reconciler.observe(resources, desired, clients, OUTSIDE)
        reconciler.observe(resources, desired, clients, OUTSIDE + timedelta(minutes=5))
    assert len(fake.describes) == 2


@given(
    week=st.integers(min_value=-200, max_value=200),
    offsets=st.tuples(st.integers(0, 4 * 3600 - 1), st.integers(0, 4 * 3600 - 1)),
    other_week=st.integers(min_value=-200, max_value=200),
)
def test_the_occurrence_key_is_stable_within_one_occurrence_and_differs_between_two(
    week: int, offsets: tuple[int, int], other_week: int
) -> None:
    start = SUNDAY + timedelta(weeks=week)
    first, second = (start + timedelta(seconds=s) for s in offsets)
    key = occurrence_key("sunday", WINDOW, first)
    assert key is not None
    assert key == occurrence_key("sunday", WINDOW, second)
    assert current_start(WINDOW, first) == start
    other = occurrence_key("sunday", WINDOW, SUNDAY + timedelta(weeks=other_week, seconds=offsets[0]))
    assert (other == key) is (other_week == week)
    assert occurrence_key("sunday", WINDOW, start - timedelta(seconds=1)) is None  # between occurrences


def test_read_pending_never_raises_whatever_botocore_raises() -> None:
    class Broken:
        def describe_db_clusters(self, **_: Any) -> Any:
            raise ResponseParserError("invalid XML received")

    read = read_pending(Broken(), [CLUSTER], OUTSIDE)
    assert read.error == "cannot read pending maintenance: ResponseParserError: invalid XML received"


def test_a_pending_maintenance_entry_validates_strictly() -> None:
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        PendingMaintenance.model_validate({"dbClusterIdentifier": CLUSTER, "action": ["x"]})
    with pytest.raises(ValueError, match="at least 1 item"):
        PendingMaintenance.model_validate({"dbClusterIdentifier": CLUSTER, "actions": []})


@pytest.mark.e2e
def test_moto_servers_http_500_is_the_windows_error_not_a_crashed_pass(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    """moto's server answers DescribePendingMaintenanceActions with HTTP 500, which botocore
    raises as ResponseParserError (no ClientError): the window's error, the pass goes on."""
    create_cluster(moto_server.client("rds"), CLUSTER)

    class ServerClients:
        def __init__(self) -> None:
            self._clients: dict[str, Any] = {}

        def client(self, service: str) -> Any:
            return self._clients.setdefault(service, moto_server.client(service))

    desired = desired_of(tmp_path / "d", window_yaml(), window_yaml("plain", "[]"))
    store = store_at(tmp_path)
    executor = Executor(store, None, structlog.get_logger(), lambda: INSIDE)
    report = run_pass(
        desired,
        default_reconcilers(recall=store),
        ServerClients(),
        executor,
        clock=lambda: INSIDE,
        dry_run=False,
    )
    assert status_of(report).state == State.ERROR
    assert "cannot read pending maintenance: ResponseParserError" in status_of(report).message
    assert status_of(report, "plain").state == State.IN_SYNC
