"""Specification (contract sections 2 and 6, issue 15 item 4): every kind takes an optional
`spec.region` (default: the daemon's region); one process reconciles several regions with one
set of AWS clients per region, built once; each region's resources are observed and changed
with that region's clients, at the floor of calls per region; a cross-kind fact (a window
silencing alarms) never reaches into another region; a region that fails is the error of its
own resources only. Cross-document checks compare resources of one region.

In-process moto keeps regions apart (one backend per region), which is what these tests rely on.
"""

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import structlog
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from homeostat.desired_state.loading import load_directory
from homeostat.desired_state.state import DesiredState, InvalidDesiredState
from homeostat.operator.aws_session import BotoClients
from homeostat.operator.budget import ApiBudget
from homeostat.operator.execution import Executor
from homeostat.operator.passes import run_pass
from homeostat.operator.statuses import PassReport, State
from homeostat.reconcilers.aws import fan_out, together
from homeostat.reconcilers.registry import default_reconcilers, kind_table

from .snapshot_helpers import create_cluster, set_created

EU, US = "eu-west-1", "us-east-1"
NOW = datetime.now(UTC).replace(microsecond=0)
PREFIX = "prod-manual-"
ALARMS = ["prod-cpu", "prod-memory"]


def document(kind: str, name: str, region: str | None, body: str) -> str:
    where = f"  region: {region}\n" if region is not None else ""
    return f"apiVersion: homeostat/v1\nkind: {kind}\nmetadata: {{name: {name}}}\nspec:\n{where}{body}---\n"


def service(name: str, region: str | None, count: int) -> str:
    return document("ECSService", name, region, f"  cluster: prod\n  service: api\n  desiredCount: {count}\n")


def retention(name: str, region: str | None, prefix: str = PREFIX) -> str:
    body = (
        f"  dbClusterIdentifier: aurora\n  snapshotPrefix: {prefix}\n"
        "  retention: {maxAge: 7d, minKeep: 1, maxDeletionsPerRun: 20}\n"
    )
    return document("SnapshotRetention", name, region, body)


def alarm_actions(name: str, region: str | None, enabled: bool, prefix: str = "prod-") -> str:
    body = f"  alarmNamePrefix: {prefix}\n  actionsEnabled: {str(enabled).lower()}\n"
    return document("AlarmActions", name, region, body)


def window(name: str, region: str | None) -> str:
    start, end = (NOW - timedelta(hours=1)).isoformat(), (NOW + timedelta(hours=1)).isoformat()
    body = f'  start: "{start}"\n  end: "{end}"\n  silenceAlarms:\n    - alarmNamePrefix: prod-\n'
    return document("MaintenanceWindow", name, region, body)


def load(directory: Path, text: str) -> DesiredState:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "state.yaml").write_text(text)
    return load_directory(directory, kinds=kind_table())


def errors_of(directory: Path, text: str) -> list[str]:
    with pytest.raises(InvalidDesiredState) as caught:
        load(directory, text)
    return [str(e) for e in caught.value.errors]


# --- validation ---------------------------------------------------------------------------


def test_a_region_is_validated_as_an_aws_region_name(tmp_path: Path) -> None:
    """A typo in a region is an error located at spec.region, never a silent default."""
    (error,) = errors_of(tmp_path, service("api", "EU-West-1", 2))
    assert error.startswith("state.yaml:5: spec.region:")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(service("a", EU, 1), service("b", US, 1), id="one-service-in-two-regions"),
        pytest.param(retention("a", EU), retention("b", US), id="one-snapshot-prefix-in-two-regions"),
        pytest.param(
            alarm_actions("a", EU, True), alarm_actions("b", US, False), id="one-alarm-selector-two-values"
        ),
        pytest.param(retention("a", None), retention("b", EU), id="no-region-is-a-value-of-its-own"),
    ],
)
def test_resources_that_would_collide_in_one_region_are_valid_in_two(
    tmp_path: Path, first: str, second: str
) -> None:
    """Names, prefixes and selectors are unique per account and region: across regions they may repeat."""
    assert len(load(tmp_path, first + second).resources) == 2


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        pytest.param(service("a", US, 1), service("b", US, 1), "as does ECSService 'a'", id="service"),
        pytest.param(retention("a", US), retention("b", US), "overlaps", id="snapshot-prefix"),
        pytest.param(
            alarm_actions("a", US, True), alarm_actions("b", US, False), "conflicts with", id="alarm-values"
        ),
        pytest.param(retention("a", None), retention("b", None), "overlaps", id="both-without-region"),
    ],
)
def test_resources_that_collide_in_one_region_are_still_an_error(
    tmp_path: Path, first: str, second: str, message: str
) -> None:
    """The per-region checks still catch a collision inside one region, at the second declaration."""
    (error,) = errors_of(tmp_path, retention("other", EU, "other-") + first + second)
    assert message in error
    assert " 'b' " in error, "reported at the second declaration"


def test_per_region_errors_come_in_declaration_order(tmp_path: Path) -> None:
    """Collisions found in different regions are reported in the order they were declared."""
    text = retention("a", US) + retention("b", EU) + retention("c", EU) + retention("d", US)
    assert [int(e.split(":")[1]) for e in errors_of(tmp_path, text)] == [19, 28]


def test_a_task_definition_from_must_be_declared_in_the_same_region(tmp_path: Path) -> None:
    """A service runs task definitions registered in its own region: naming one of another is an error."""
    definition = document(
        "ECSTaskDefinition",
        "api",
        EU,
        "  family: api\n  definition:\n    containerDefinitions: [{name: api, image: nginx, memory: 128}]\n",
    )
    runner = document("ECSService", "api", US, "  cluster: prod\n  service: api\n  taskDefinitionFrom: api\n")
    (error,) = errors_of(tmp_path, definition + runner)
    assert error.endswith("which is declared with another spec.region only")


# --- two regions in one pass --------------------------------------------------------------


class Recorder:
    """Wraps the session's `client` to count creations and log each call with its region."""

    def __init__(self, aws: BotoClients, failing: str | None = None) -> None:
        self.created: Counter[tuple[str, str | None]] = Counter()
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._failing = failing
        self._create = aws.session.client
        aws.session.client = self.client  # type: ignore[method-assign]

    def client(self, service: str, **kwargs: Any) -> Any:
        created = self._create(service, **kwargs)
        region = str(created.meta.region_name)
        self.created[(service, kwargs.get("region_name"))] += 1
        created.meta.events.register("before-call.*.*", lambda model, **_: self._called(region, model))
        return created

    def _called(self, region: str, model: Any) -> None:
        with self._lock:
            self.calls.append((region, model.name))
        if region == self._failing:
            raise EndpointConnectionError(endpoint_url=f"https://{region}.unreachable.invalid")

    def of(self, region: str) -> Counter[str]:
        with self._lock:
            return Counter(op for r, op in self.calls if r == region)


@pytest.fixture
def two_regions() -> Iterator[None]:
    """In each region: service prod/api at 1 task, cluster aurora with 3 expired snapshots,
    alarms prod-* with actions enabled in us-east-1 only."""
    with mock_aws():
        for region in (EU, US):
            ecs = boto3.client("ecs", region_name=region)
            ecs.create_cluster(clusterName="prod")
            ecs.register_task_definition(
                family="api", containerDefinitions=[{"name": "api", "image": "nginx", "memory": 128}]
            )
            ecs.create_service(cluster="prod", serviceName="api", taskDefinition="api:1", desiredCount=1)
            rds = boto3.client("rds", region_name=region)
            create_cluster(rds, "aurora")
            for i in range(3):
                rds.create_db_cluster_snapshot(
                    DBClusterIdentifier="aurora", DBClusterSnapshotIdentifier=f"{PREFIX}{i}"
                )
                set_created(f"{PREFIX}{i}", NOW - timedelta(days=30 - i), region=region)
            cloudwatch = boto3.client("cloudwatch", region_name=region)
            for name in ALARMS:
                cloudwatch.put_metric_alarm(
                    AlarmName=name,
                    MetricName="CPUUtilization",
                    Namespace="AWS/ECS",
                    Statistic="Average",
                    Period=60,
                    EvaluationPeriods=1,
                    Threshold=80.0,
                    ComparisonOperator="GreaterThanThreshold",
                    ActionsEnabled=region == US,
                )
        yield


def two_region_state(directory: Path) -> DesiredState:
    """eu-west-1 (the default: its resources name no region): 3 tasks, retention, alarms on.
    us-east-1: 2 tasks, retention, and an active window silencing prod-* alarms."""
    return load(
        directory,
        service("api-eu", None, 3)
        + retention("snapshots-eu", None)
        + alarm_actions("alarms-eu", None, True)
        + service("api-us", US, 2)
        + retention("snapshots-us", US)
        + window("window-us", US),
    )


def reconcile(desired: DesiredState, aws: BotoClients, reconcilers: Any = None) -> PassReport:
    executor = Executor(None, None, structlog.get_logger(), lambda: NOW)
    return run_pass(
        desired,
        reconcilers if reconcilers is not None else default_reconcilers(),
        aws,
        executor,
        clock=lambda: NOW,
        dry_run=False,
    )


def states(report: PassReport) -> dict[str, State]:
    return {s.name: s.state for s in report.statuses}


def live(region: str) -> tuple[int, list[str], dict[str, bool]]:
    """desiredCount of prod/api, the manual snapshots, and each alarm's actions in `region`."""
    ecs = boto3.client("ecs", region_name=region)
    (item,) = ecs.describe_services(cluster="prod", services=["api"])["services"]
    rds = boto3.client("rds", region_name=region)
    snapshots = rds.describe_db_cluster_snapshots(DBClusterIdentifier="aurora", SnapshotType="manual")
    cloudwatch = boto3.client("cloudwatch", region_name=region)
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix="prod-")["MetricAlarms"]
    return (
        int(item["desiredCount"]),
        sorted(s["DBClusterSnapshotIdentifier"] for s in snapshots["DBClusterSnapshots"]),
        {a["AlarmName"]: bool(a["ActionsEnabled"]) for a in alarms},
    )


READS = {
    "DescribeServices": 1,
    "DescribeScalableTargets": 1,
    "DescribeDBClusters": 1,
    "DescribeDBClusterSnapshots": 1,
    "DescribeAlarms": 1,
}


@pytest.mark.usefixtures("two_regions")
def test_each_region_is_reconciled_in_its_own_region_with_clients_built_once(tmp_path: Path) -> None:
    """Two passes over two regions: each resource is fixed in its own region (the window of
    us-east-1 silences only us-east-1's alarms; eu-west-1's are enabled by its AlarmActions);
    one client per service and region, built once; per region one read per batch and one call
    per change, the same floor as a single region."""
    aws = BotoClients(EU)
    recorder = Recorder(aws)
    desired = two_region_state(tmp_path)
    reconcilers = default_reconcilers()

    first = reconcile(desired, aws, reconcilers)
    assert states(first) == dict.fromkeys(
        ["api-eu", "api-us", "snapshots-eu", "snapshots-us", "alarms-eu", "window-us"], State.FIXED
    )
    assert live(EU) == (3, [f"{PREFIX}2"], dict.fromkeys(ALARMS, True))
    assert live(US) == (2, [f"{PREFIX}2"], dict.fromkeys(ALARMS, False))
    assert recorder.of(EU) == Counter(
        {**READS, "UpdateService": 1, "DeleteDBClusterSnapshot": 2, "EnableAlarmActions": 1}
    )
    assert recorder.of(US) == Counter(
        {**READS, "UpdateService": 1, "DeleteDBClusterSnapshot": 2, "DisableAlarmActions": 1}
    )

    # Every status says where it was reconciled: its spec.region, else the daemon's.
    assert {s.name: s.region for s in first.statuses} == {
        **dict.fromkeys(["api-eu", "snapshots-eu", "alarms-eu"], EU),
        **dict.fromkeys(["api-us", "snapshots-us", "window-us"], US),
    }

    recorder.calls.clear()
    second = reconcile(desired, aws, reconcilers)
    assert set(states(second).values()) == {State.IN_SYNC}
    assert recorder.of(EU) == recorder.of(US) == Counter(READS), "in sync: one listing per batch"
    services = {"ecs", "application-autoscaling", "rds", "cloudwatch"}
    assert recorder.created == Counter({(s, r): 1 for s in services for r in (EU, US)})


@pytest.mark.usefixtures("two_regions")
def test_a_region_that_fails_is_the_error_of_its_own_resources_only(tmp_path: Path) -> None:
    """us-east-1 cannot be reached: its resources are errors, eu-west-1's are fixed as usual."""
    aws = BotoClients(EU)
    recorder = Recorder(aws, failing=US)
    report = reconcile(two_region_state(tmp_path), aws)
    found = states(report)
    assert {name: found[name] for name in ("api-eu", "snapshots-eu", "alarms-eu")} == dict.fromkeys(
        ["api-eu", "snapshots-eu", "alarms-eu"], State.FIXED
    )
    assert {name: found[name] for name in ("api-us", "snapshots-us", "window-us")} == dict.fromkeys(
        ["api-us", "snapshots-us", "window-us"], State.ERROR
    )
    messages = {s.name: s.message for s in report.statuses}
    assert "Could not connect" in messages["api-us"]
    assert live(EU) == (3, [f"{PREFIX}2"], dict.fromkeys(ALARMS, True))
    assert recorder.of(US).keys() <= set(READS), "nothing is changed on the strength of a failed read"


@pytest.mark.usefixtures("two_regions")
def test_a_window_never_silences_the_alarms_of_another_region(tmp_path: Path) -> None:
    """Alarms of one name in two regions: the active window of us-east-1 disables them there,
    and eu-west-1's AlarmActions (which alone decides eu-west-1) enables them in eu-west-1."""
    desired = load(tmp_path, window("window-us", US) + alarm_actions("alarms-eu", EU, True))
    report = reconcile(desired, BotoClients(EU))
    assert states(report) == {"alarms-eu": State.FIXED, "window-us": State.FIXED}
    assert live(EU)[2] == dict.fromkeys(ALARMS, True)
    assert live(US)[2] == dict.fromkeys(ALARMS, False)


def test_regions_are_observed_concurrently(tmp_path: Path) -> None:
    """The two regions' observations of one kind are in flight together: both meet at a barrier
    inside DescribeAlarms (its timeout is generous); observed one after another, it would break."""
    barrier, meet = meeting(2)
    with mock_aws():
        aws = BotoClients(EU)
        for region in (EU, US):
            aws.in_region(region).client("cloudwatch").meta.events.register(
                "before-call.monitoring.DescribeAlarms", meet
            )
        desired = load(tmp_path, alarm_actions("alarms-eu", EU, True) + alarm_actions("alarms-us", US, True))
        report = reconcile(desired, aws)
    assert states(report) == {"alarms-eu": State.IN_SYNC, "alarms-us": State.IN_SYNC}
    assert barrier.broken is False


def test_one_budget_bucket_per_service_and_region() -> None:
    """rds at 1 request/s: a second read in eu-west-1 waits, the first in us-east-1 does not."""
    waits: list[float] = []
    budget = ApiBudget({"rds": 1.0}, clock=lambda: 0.0, sleep=waits.append)
    with mock_aws():
        aws = BotoClients(EU, budget=budget)
        aws.client("rds").describe_db_clusters()
        aws.in_region(US).client("rds").describe_db_clusters()
        assert waits == []
        aws.in_region(EU).client("rds").describe_db_clusters()
    assert waits == [1.0]
    assert aws.in_region(EU).client("rds") is aws.client("rds"), "the default region's clients are its own"
    assert aws.in_region(US) is aws.in_region(US)


# --- concurrent observation inside a kind -------------------------------------------------


def test_fan_out_keeps_the_order_and_bounds_the_workers() -> None:
    running, most = [0], [0]
    lock = threading.Lock()
    gate = threading.Barrier(3, timeout=30)

    def square(n: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        if n < 3:
            gate.wait()  # the first three are in flight together
        with lock:
            running[0] -= 1
        return n * n

    assert fan_out(square, range(10), workers=3) == [n * n for n in range(10)]
    assert most[0] == 3


def test_fan_out_raises_the_first_error_and_starts_nothing_after_it() -> None:
    started: list[int] = []

    def fail_first(n: int) -> int:
        started.append(n)
        if n == 0:
            raise RuntimeError("stop")
        return n

    with pytest.raises(RuntimeError, match="stop"):
        fan_out(fail_first, range(50), workers=2)
    assert len(started) < 50


def test_together_runs_both_reads_at_once_and_raises_only_after_both_returned() -> None:
    """The autoscaler check beside DescribeServices: both in flight at one moment (a barrier of
    two would time out run in turn); a failure of one is raised once the other has returned."""
    gate = threading.Barrier(2, timeout=30)
    assert together(lambda: (gate.wait(), "targets")[1], lambda: (gate.wait(), "services")[1]) == (
        "targets",
        "services",
    )
    finished: list[str] = []

    def slow() -> str:
        gate.wait()
        finished.append("first")
        return "first"

    def fails() -> str:
        gate.wait()
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        together(slow, fails)
    assert finished == ["first"]


def test_ctrl_c_in_together_is_raised_without_waiting_for_the_other_read() -> None:
    """`plan` observes on the main thread: Ctrl-C there must not wait for a read blocked on an
    endpoint that never answers (the process is leaving; the read's daemon thread with it)."""
    release, finished = threading.Event(), threading.Event()

    def blocked() -> str:
        release.wait(30)
        finished.set()
        return "late"

    def interrupted() -> str:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        together(blocked, interrupted)
    assert not finished.is_set(), "it waited for the blocked read"
    release.set()


def test_a_shutdown_stops_a_concurrent_observe_at_the_next_read(tmp_path: Path) -> None:
    """Ten clusters' snapshot listings, eight in flight at once when the stop is asked: those
    eight are answered, no further read is sent, and the pass reports shutting down (no error)."""
    stopping = [False]
    sent: list[str] = []
    lock = threading.Lock()
    in_flight = threading.Barrier(8, timeout=30, action=lambda: stopping.__setitem__(0, True))

    def listing(**_: Any) -> None:  # before-send: after the stop hook (before-call) let it go
        with lock:
            sent.append("DescribeDBClusterSnapshots")
        in_flight.wait()  # the eighth read asks for the stop, then all eight go on

    clusters = [f"aurora-{i:02d}" for i in range(10)]
    with mock_aws():
        rds = boto3.client("rds", region_name=US)
        for cluster in clusters:
            create_cluster(rds, cluster)
        aws = BotoClients(US, stopping=lambda: stopping[0])
        aws.client("rds").meta.events.register("before-send.rds.DescribeDBClusterSnapshots", listing)
        text = "".join(
            document(
                "SnapshotRetention",
                cluster,
                None,
                f"  dbClusterIdentifier: {cluster}\n  snapshotPrefix: {cluster}-manual-\n"
                "  retention: {maxAge: 7d}\n",
            )
            for cluster in clusters
        )
        executor = Executor(None, None, structlog.get_logger(), lambda: NOW)
        report = run_pass(
            load(tmp_path, text),
            default_reconcilers(),
            aws,
            executor,
            clock=lambda: NOW,
            dry_run=False,
            should_stop=lambda: stopping[0],
        )
    assert len(sent) == 8, "the reads in flight finish; no further read is sent"
    assert {(s.state, s.message) for s in report.statuses} == {(State.NOT_REACHED, "shutting down")}


def meeting(parties: int) -> tuple[threading.Barrier, Any]:
    """A barrier and a before-call handler that waits at it (returning None, so the call goes on)."""
    barrier = threading.Barrier(parties, timeout=30)

    def meet(**_: Any) -> None:
        barrier.wait()

    return barrier, meet


def test_the_batches_of_describe_services_are_in_flight_together(tmp_path: Path) -> None:
    """25 services of one cluster are 3 DescribeServices calls (10 per call), all in flight at once:
    they meet at a barrier of 3 inside the call (sent one after another, it would break)."""
    barrier, meet = meeting(3)
    with mock_aws():
        ecs = boto3.client("ecs", region_name=US)
        ecs.create_cluster(clusterName="prod")
        ecs.register_task_definition(
            family="api", containerDefinitions=[{"name": "api", "image": "nginx", "memory": 128}]
        )
        text = ""
        for i in range(25):
            ecs.create_service(
                cluster="prod", serviceName=f"s{i:02d}", taskDefinition="api:1", desiredCount=1
            )
            text += document(
                "ECSService", f"s{i:02d}", None, f"  cluster: prod\n  service: s{i:02d}\n  desiredCount: 1\n"
            )
        aws = BotoClients(US)
        recorder = Recorder(aws)
        aws.client("ecs").meta.events.register("before-call.ecs.DescribeServices", meet)
        report = reconcile(load(tmp_path, text), aws)
    assert set(states(report).values()) == {State.IN_SYNC}
    assert recorder.of(US)["DescribeServices"] == 3
    assert barrier.broken is False


def test_the_families_of_task_definitions_are_listed_together(tmp_path: Path) -> None:
    """Two ECSTaskDefinition families: their ListTaskDefinitions listings are in flight at once."""
    barrier, meet = meeting(2)
    definition = "  definition:\n    containerDefinitions: [{name: app, image: nginx, memory: 128}]\n"
    text = "".join(
        document("ECSTaskDefinition", family, None, f"  family: {family}\n{definition}")
        for family in ("api", "web")
    )
    with mock_aws():
        aws = BotoClients(US)
        aws.client("ecs").meta.events.register("before-call.ecs.ListTaskDefinitions", meet)
        report = reconcile(load(tmp_path, text), aws)
    assert states(report) == {"api": State.FIXED, "web": State.FIXED}, "each family registered once"
    assert barrier.broken is False


class RegionRds:
    """An RDS double of one region: cluster aurora exists; no maintenance is pending."""

    def __init__(self, region: str) -> None:
        self.meta = type("Meta", (), {"region_name": region})()
        self.reads = 0

    def describe_db_clusters(self, **_: Any) -> dict[str, Any]:
        arn = f"arn:aws:rds:{self.meta.region_name}:123456789012:cluster:aurora"
        return {"DBClusters": [{"DBClusterIdentifier": "aurora", "DBClusterArn": arn, "Status": "available"}]}

    def describe_pending_maintenance_actions(self, **_: Any) -> dict[str, Any]:
        self.reads += 1
        return {"PendingMaintenanceActions": []}


class OneService:
    def __init__(self, rds: RegionRds) -> None:
        self.rds = rds

    def client(self, service: str) -> Any:
        assert service == "rds"
        return self.rds


def test_the_hourly_pending_maintenance_read_is_kept_per_region(tmp_path: Path) -> None:
    """Outside their windows, a window of each region listing a cluster of one name: each region
    is read once and its read reused for the hour; one region's read never stands for the other's."""
    from homeostat.reconcilers.maintenance_window import KIND, MaintenanceWindowReconciler

    start, end = (NOW + timedelta(days=1)).isoformat(), (NOW + timedelta(days=1, hours=4)).isoformat()
    body = (
        f'  start: "{start}"\n  end: "{end}"\n  applyPendingMaintenance:\n    - dbClusterIdentifier: aurora\n'
    )
    desired = load(
        tmp_path,
        document("MaintenanceWindow", "eu", EU, body) + document("MaintenanceWindow", "us", US, body),
    )
    reconciler = MaintenanceWindowReconciler()
    rds = {EU: RegionRds(EU), US: RegionRds(US)}
    for minutes in (0, 5):
        for region in (EU, US):
            local = desired.in_region(region, EU)
            reconciler.observe(
                list(local.of_kind(KIND)), local, OneService(rds[region]), NOW + timedelta(minutes=minutes)
            )
    assert (rds[EU].reads, rds[US].reads) == (1, 1)
