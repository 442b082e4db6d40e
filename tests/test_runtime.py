"""The runtime shared by every command, in process: wiring, reporter, run --once, read-only commands.

Specification (issue 10 item 3, issue 11 items 7 and 8): `run --once` is one
pass of the daemon's loop on the daemon's wiring (last known good, `unmanage`
rows, the lease); `plan` and `history` create no database or file; `run` with
nothing valid to enforce exits 1; the lock file is 0600; a stop during a long
observe ends it at the next AWS read and records nothing as failed.
"""

import importlib.abc
import os
import signal
import stat
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from prometheus_client import CollectorRegistry

from homeostat.desired_state.identifiers import Kind
from homeostat.metrics import Metrics
from homeostat.operator.aws_session import BotoClients, ShuttingDown, utc_timestamp
from homeostat.operator.cli import EXIT_INTERRUPTED, main
from homeostat.operator.history import HistoryQuery, HistoryStore
from homeostat.operator.lease import Lease
from homeostat.operator.loop import Loop
from homeostat.operator.options import Settings
from homeostat.operator.reporter import Reporter
from homeostat.operator.requests import PassReason, PassRequest
from homeostat.operator.statuses import PassReport, ResourceStatus, State
from homeostat.operator.wiring import build_runtime
from homeostat.reconcilers.actions import ApplyResult, Measurement, ObserveError, Plan
from homeostat.reconcilers.registry import gauges
from homeostat.reconcilers.snapshot_retention import OWNED

from .alarm_helpers import put_alarms
from .conftest import REGION
from .snapshot_helpers import create_cluster
from .waiting import wait_for

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SERVICE = (
    "apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {{name: {n}}}\n"
    "spec: {{cluster: prod, service: {n}, desiredCount: {c}}}\n"
)


def settings(tmp_path: Path, desired: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "command": "run",
        "desired_state": desired,
        "history": f"sqlite:///{tmp_path / 'h.db'}",
        "listen": "127.0.0.1:0",
        "resync": 60,
        "dry_run": False,
        "region": REGION,
        "log_format": "json",
    }
    values.update(extra)
    return Settings(**values)


def seed(names: dict[str, int]) -> Any:
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName="prod")
    for name, count in names.items():
        ecs.register_task_definition(
            family=name, containerDefinitions=[{"name": name, "image": "x", "memory": 64}]
        )
        ecs.create_service(cluster="prod", serviceName=name, taskDefinition=f"{name}:1", desiredCount=count)
    return ecs


# --- the reporter -------------------------------------------------------------------------------


def status(name: str, state: State, *measurements: Measurement) -> ResourceStatus:
    plan = Plan(Kind("ECSService"), name, measurements=measurements)
    return ResourceStatus(Kind("ECSService"), name, state, "", NOW, plan)


def report(*statuses: ResourceStatus) -> PassReport:
    return PassReport("r", NOW, list(statuses), {Kind("ECSService"): 0.5})


def test_the_reporter_removes_exactly_the_series_a_removed_resource_set() -> None:
    """Each resource's in-sync and measured series go with it; the others' stay."""
    registry = CollectorRegistry()
    reporter = Reporter(Metrics(registry, gauges()))
    reporter.pass_reported(
        report(
            status("a", State.IN_SYNC, Measurement(OWNED, {"name": "a"}, 3.0)),
            status("b", State.FIXED, Measurement(OWNED, {"name": "b"}, 4.0)),
        )
    )
    assert registry.get_sample_value("homeostat_snapshots_owned", {"name": "b"}) == 4.0
    assert (
        registry.get_sample_value("homeostat_reconcile_duration_seconds_count", {"kind": "ECSService"}) == 1
    )
    reporter.keep_only({(Kind("ECSService"), "a")})
    assert registry.get_sample_value("homeostat_snapshots_owned", {"name": "b"}) is None
    assert (
        registry.get_sample_value("homeostat_resource_in_sync", {"kind": "ECSService", "name": "b"}) is None
    )
    assert registry.get_sample_value("homeostat_snapshots_owned", {"name": "a"}) == 3.0
    assert registry.get_sample_value("homeostat_resource_in_sync", {"kind": "ECSService", "name": "a"}) == 1


def test_a_suspended_resource_loses_its_measured_series_but_reports_not_in_sync() -> None:
    """Suspended: not reconciled, so its last measured values would go stale; in-sync is 0."""
    registry = CollectorRegistry()
    reporter = Reporter(Metrics(registry, gauges()))
    reporter.pass_reported(report(status("a", State.IN_SYNC, Measurement(OWNED, {"name": "a"}, 3.0))))
    reporter.pass_reported(report(status("a", State.SUSPENDED)))
    assert registry.get_sample_value("homeostat_snapshots_owned", {"name": "a"}) is None
    assert registry.get_sample_value("homeostat_resource_in_sync", {"kind": "ECSService", "name": "a"}) == 0


def test_a_series_two_resources_report_stays_until_the_last_of_them_is_gone() -> None:
    """A shared series (same labels from two resources) is removed only with its last reporter."""
    registry = CollectorRegistry()
    reporter = Reporter(Metrics(registry, gauges()))
    shared = Measurement(OWNED, {"name": "shared"}, 2.0)
    reporter.pass_reported(report(status("a", State.IN_SYNC, shared), status("b", State.IN_SYNC, shared)))
    reporter.keep_only({(Kind("ECSService"), "b")})
    assert registry.get_sample_value("homeostat_snapshots_owned", {"name": "shared"}) == 2.0
    reporter.keep_only(set())
    assert registry.get_sample_value("homeostat_snapshots_owned", {"name": "shared"}) is None


def test_backing_off_and_unreached_resources_keep_their_previous_in_sync_value() -> None:
    """A pass that did not look at a resource says nothing new about it."""
    registry = CollectorRegistry()
    reporter = Reporter(Metrics(registry, gauges()))
    reporter.pass_reported(report(status("a", State.IN_SYNC)))
    reporter.pass_reported(report(status("a", State.BACKING_OFF), status("b", State.NOT_REACHED)))
    assert registry.get_sample_value("homeostat_resource_in_sync", {"kind": "ECSService", "name": "a"}) == 1
    assert (
        registry.get_sample_value("homeostat_resource_in_sync", {"kind": "ECSService", "name": "b"}) is None
    )
    skipped = {"kind": "ECSService", "result": "skipped"}
    assert registry.get_sample_value("homeostat_reconcile_total", skipped) == 2


def test_a_run_once_reporter_counts_but_sets_no_per_resource_series() -> None:
    """`run --once` serves no /metrics: its reporter keeps the counters (summed per kind and
    result) and sets none of the per-resource gauges nobody could scrape."""
    registry = CollectorRegistry()
    reporter = Reporter(Metrics(registry, gauges()), per_resource=False)
    reporter.pass_reported(
        report(
            status("a", State.IN_SYNC, Measurement(OWNED, {"name": "a"}, 3.0)),
            status("b", State.FIXED),
            status("c", State.ERROR),
        )
    )
    success, error = {"kind": "ECSService", "result": "success"}, {"kind": "ECSService", "result": "error"}
    assert registry.get_sample_value("homeostat_reconcile_total", success) == 2
    assert registry.get_sample_value("homeostat_reconcile_total", error) == 1
    for gauge in ("resource_in_sync", "resource_suspended", "resource_fighting"):
        assert registry.get_sample_value(f"homeostat_{gauge}", {"kind": "ECSService", "name": "a"}) is None
    assert registry.get_sample_value("homeostat_snapshots_owned", {"name": "a"}) is None


# --- run --once: one pass of the same loop ------------------------------------------------------


def test_run_once_saves_the_last_known_good_and_records_unmanage_against_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest removed between two `run --once` is an `unmanage` row compared with the saved revision."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "api.yaml").write_text(SERVICE.format(n="api", c=2))
    (state / "web.yaml").write_text(SERVICE.format(n="web", c=1))
    url = f"sqlite:///{tmp_path / 'h.db'}"
    argv = ["run", "--once", "--desired-state", str(state), "--history", url, "--log-format", "json"]
    with mock_aws():
        ecs = seed({"api": 1, "web": 1})
        assert main(argv) == 0
        assert ecs.describe_services(cluster="prod", services=["api"])["services"][0]["desiredCount"] == 2
        (state / "web.yaml").unlink()
        assert main(argv) == 0
    out = capsys.readouterr()
    assert "last_known_good_saved" in out.err
    assert "last_known_good_restored" in out.err
    history = HistoryStore(url)
    rows = history.query(HistoryQuery(limit=100))
    history.close()
    assert [(r.kind, r.name, r.action, r.outcome) for r in rows if r.action == "unmanage"] == [
        ("ECSService", "web", "unmanage", "applied")
    ]
    assert [(r.name, r.action) for r in rows if r.action == "update_service"] == [("api", "update_service")]


def test_run_once_parses_the_desired_state_once_and_the_saved_revision_only_when_it_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The validation before the pass and the pass share one parse; the last known good is rebuilt
    only when the directory's bytes differ from it (then removals are unmanaged against it)."""
    from homeostat.desired_state import loading
    from homeostat.operator.last_good import LastKnownGood

    parses: list[Path] = []
    rebuilds: list[str] = []
    parse, rebuild = loading._parse_or_reject, LastKnownGood.rebuild
    monkeypatch.setattr(
        loading, "_parse_or_reject", lambda f, d, *a, **k: parses.append(d) or parse(f, d, *a, **k)
    )
    monkeypatch.setattr(
        LastKnownGood,
        "rebuild",
        lambda self, saved, d: rebuilds.append(saved.revision) or rebuild(self, saved, d),
    )
    state = tmp_path / "state"
    state.mkdir()
    (state / "api.yaml").write_text(SERVICE.format(n="api", c=2))
    url = f"sqlite:///{tmp_path / 'h.db'}"
    argv = ["run", "--once", "--desired-state", str(state), "--history", url, "--log-format", "json"]
    with mock_aws():
        seed({"api": 1})
        assert main(argv) == 0
        assert main(argv) == 0  # the same bytes as saved: nothing rebuilt
        assert (len(parses), rebuilds) == (2, [])
        (state / "web.yaml").write_text(SERVICE.format(n="web", c=1))
        ecs = boto3.client("ecs", region_name=REGION)
        ecs.register_task_definition(
            family="web", containerDefinitions=[{"name": "web", "image": "x", "memory": 64}]
        )
        ecs.create_service(cluster="prod", serviceName="web", taskDefinition="web:1", desiredCount=1)
        assert main(argv) == 0  # other bytes: the saved revision is what removals are judged by
    assert len(parses) == 3
    assert len(rebuilds) == 1


def test_run_once_exits_1_on_a_conflict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Conflict is not success for `run --once` (State.CONFLICT, not a string)."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "w.yaml").write_text(SERVICE.format(n="worker", c=3))
    with mock_aws():
        seed({"worker": 2})
        boto3.client("application-autoscaling", region_name=REGION).register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId="service/prod/worker",
            ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=1,
            MaxCapacity=4,
        )
        code = main(
            ["run", "--once", "--desired-state", str(state), "--history", f"sqlite:///{tmp_path / 'h.db'}"]
        )
    assert code == 1
    assert "Conflict" in capsys.readouterr().out


# --- read-only commands and nothing to enforce -------------------------------------------------


def test_plan_creates_no_database_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`plan` is read-only: nothing appears in the working directory (no homeostat.db, no lock)."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "api.yaml").write_text(SERVICE.format(n="api", c=2))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with mock_aws():
        seed({"api": 1})
        assert main(["plan", "--desired-state", str(state)]) == 2
    assert "update_service" in capsys.readouterr().out
    assert list(work.iterdir()) == []


def test_history_of_a_database_that_does_not_exist_exits_1_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`history` never creates a database: a missing one is an error, not "no rows"."""
    missing = tmp_path / "wrong" / "path.db"
    (tmp_path / "wrong").mkdir()
    assert main(["history", "--history", f"sqlite:///{missing}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"homeostat: error: history database {missing} does not exist"]
    assert list((tmp_path / "wrong").iterdir()) == []


def test_run_with_no_valid_revision_and_no_last_known_good_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing to enforce: `run` exits 1 with the reason instead of running forever."""
    missing = tmp_path / "nonexistent"
    code = main(
        [
            "run",
            "--desired-state",
            str(missing),
            "--history",
            f"sqlite:///{tmp_path / 'h.db'}",
            "--listen",
            "127.0.0.1:0",
            "--region",
            REGION,
            "--log-format",
            "json",
        ]
    )
    assert code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("homeostat: error:")]
    assert len(lines) == 1
    assert "no valid desired state" in lines[0]
    assert str(missing) in lines[0]
    assert "no last known good" in lines[0]


class _InterruptImport(importlib.abc.MetaPathFinder):
    """Ctrl-C arriving while a command's modules are being imported."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == "homeostat.operator.commands":
            raise KeyboardInterrupt


def test_ctrl_c_while_the_commands_import_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The heavy imports happen inside main's guard: an interrupt there is 130, without a traceback."""
    monkeypatch.delitem(sys.modules, "homeostat.operator.commands", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_InterruptImport(), *sys.meta_path])
    assert main(["plan", "--desired-state", "anywhere"]) == EXIT_INTERRUPTED
    assert "Traceback" not in capsys.readouterr().err


# --- the lease file and stopping between AWS calls ---------------------------------------------


@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "older-0666-file"])
def test_the_sqlite_lock_file_is_private_to_its_owner(tmp_path: Path, existing: bool) -> None:
    """The lock file is 0600 whatever the umask, and an older 0666 one is narrowed."""
    lock = tmp_path / "h.db.lock"
    if existing:
        lock.touch()
        lock.chmod(0o666)
    previous = os.umask(0)
    try:
        history = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
        lease = Lease(history.engine)
        lease.acquire()
    finally:
        os.umask(previous)
    try:
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    finally:
        lease.release()
        history.close()


def test_a_stopping_session_refuses_reads_but_not_mutations() -> None:
    """The before-call hook refuses a read once stopping; a mutation in flight still goes out."""
    stopping = [False]
    with mock_aws():
        aws = BotoClients(REGION, stopping=lambda: stopping[0])
        ecs = aws.client("ecs")
        ecs.create_cluster(clusterName="prod")
        stopping[0] = True
        with pytest.raises(ShuttingDown):
            ecs.list_clusters()
        ecs.create_cluster(clusterName="second")  # a mutation is never refused here
        stopping[0] = False
        assert len(ecs.list_clusters()["clusterArns"]) == 2


class SlowObserver:
    """An ECSService reconciler whose observe reads AWS once per resource; SIGTERM comes after 3 reads."""

    kinds = (Kind("ECSService"),)

    def __init__(self) -> None:
        self.loop: Loop | None = None
        self.reads = 0

    def observe(self, resources: Any, desired: Any, aws: Any, now: datetime) -> dict[str, object]:
        observed: dict[str, object] = {}
        for resource in resources:
            aws.client("ecs").list_clusters()
            self.reads += 1
            if self.reads == 3 and self.loop is not None:
                self.loop.stop("SIGTERM")  # what the signal handler does
            observed[resource.name] = object()
        return observed

    def diff(self, resource: Any, observed: object, now: datetime) -> Plan:
        if isinstance(observed, ObserveError):
            return Plan(Kind("ECSService"), resource.name, error=observed.message)
        return Plan(Kind("ECSService"), resource.name)

    def apply(self, actions: Any, aws: Any) -> list[ApplyResult]:
        return []

    def wake_times(self, desired: Any, now: datetime) -> list[datetime]:
        return []


def test_a_stop_during_a_long_observe_ends_it_at_the_next_read_and_records_no_failure(tmp_path: Path) -> None:
    """SIGTERM mid-observe: no further AWS read, every resource 'shutting down', no failure, no backoff."""
    desired = tmp_path / "desired"
    desired.mkdir()
    for index in range(20):
        (desired / f"s{index:02d}.yaml").write_text(SERVICE.format(n=f"s{index:02d}", c=1))
    observer = SlowObserver()
    registry = CollectorRegistry()
    with mock_aws():
        runtime = build_runtime(settings(tmp_path, desired), registry=registry, reconcilers=(observer,))
        loop = Loop(runtime)
        observer.loop = loop
        try:
            result = loop.run_one_pass([PassRequest(PassReason.STARTUP)])
        finally:
            runtime.close()
    assert observer.reads == 3
    ok = {"service": "ecs", "operation": "ListClusters", "result": "ok"}
    assert registry.get_sample_value("homeostat_aws_api_calls_total", ok) == 3
    assert result is not None
    assert {s.state for s in result.statuses} == {State.NOT_REACHED}
    assert {s.message for s in result.statuses} == {"shutting down"}
    assert loop.backoff.retry_times() == set()
    history = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    assert [r for r in history.query(HistoryQuery()) if r.outcome == "failed"] == []
    history.close()


@pytest.mark.e2e  # moto's server in a thread and a daemon running for --duration
def test_demo_runs_the_daemon_on_an_explicit_endpoint_without_touching_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`demo` is `run` on the shared runtime: it stops cleanly on --duration and edits no os.environ."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its work directory stays in the test's
    before = dict(os.environ)
    code = main(
        ["demo", "--duration", "3s", "--listen", "127.0.0.1:0", "--history", f"sqlite:///{tmp_path}/x.db"]
    )
    assert code == 0
    assert dict(os.environ) == before
    out = capsys.readouterr().out
    assert "seeded it: cluster omnirapeutic-production" in out
    assert "homeostat is running" in out
    assert "demo stopped cleanly" in out


def test_an_explicit_endpoint_ignores_the_environment_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's session uses its endpoint and credentials only: a stray AWS_PROFILE cannot break it."""
    from homeostat.operator.aws_session import Endpoint

    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    aws = BotoClients(REGION, endpoint=Endpoint("http://127.0.0.1:1", "demo", "demo"))
    assert aws.session.get_credentials().access_key == "demo"
    assert aws.client("ecs").meta.endpoint_url == "http://127.0.0.1:1"


class InterruptedObserver(SlowObserver):
    """Ctrl-C arrives during the observe: the process signals itself, then reads AWS again."""

    def __init__(self, requests: Any) -> None:
        super().__init__()
        self.requests = requests
        self.refused = False

    def observe(self, resources: Any, desired: Any, aws: Any, now: datetime) -> dict[str, object]:
        aws.client("ecs").list_clusters()
        os.kill(os.getpid(), signal.SIGINT)
        wait_for(lambda: self.requests.stopping, timeout=30, what="the SIGINT handled")
        try:
            aws.client("ecs").list_clusters()
        except ShuttingDown:
            self.refused = True
            raise
        return {}


def test_ctrl_c_during_run_once_stops_the_pass_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run --once` handles SIGINT like the daemon: the next read is refused, nothing is recorded
    as failed, and the exit code is 130, never 0."""
    from homeostat.operator import wiring

    state = tmp_path / "state"
    state.mkdir()
    (state / "api.yaml").write_text(SERVICE.format(n="api", c=2))
    observers: list[InterruptedObserver] = []
    real_build = wiring.build_runtime

    def build(settings: Settings, **kwargs: Any) -> Any:
        runtime = real_build(settings, **kwargs)
        observers.append(InterruptedObserver(runtime.requests))
        runtime.reconcilers = (observers[0],)
        return runtime

    monkeypatch.setattr(wiring, "build_runtime", build)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with mock_aws():
        code = main(
            ["run", "--once", "--desired-state", str(state), "--history", url, "--log-format", "json"]
        )
    assert code == EXIT_INTERRUPTED
    assert observers[0].refused
    err = capsys.readouterr().err
    assert "homeostat: error: interrupted by SIGINT" in err
    assert "Traceback" not in err
    history = HistoryStore(url)
    assert [r for r in history.query(HistoryQuery()) if r.outcome == "failed"] == []
    history.close()


def test_the_demo_prints_the_port_it_serves_when_asked_for_any_port() -> None:
    """`demo --listen 127.0.0.1:0` chooses the free port itself: the URLs it prints are real."""
    from homeostat.operator.demo import _free_listen

    host, _, port = _free_listen("127.0.0.1:0").rpartition(":")
    assert host == "127.0.0.1"
    assert int(port) > 0


def test_the_demo_narrates_a_resume_and_an_applied_pending_maintenance_in_plain_words() -> None:
    from homeostat.operator.demo import _plain

    resume = {
        "event": "action",
        "action": "resume",
        "kind": "ECSService",
        "name": "web",
        "outcome": "applied",
    }
    assert _plain({**resume, "reason": "the hold expired: INC-1"}) == (
        "homeostat RESUMED ECSService/web: the hold expired: INC-1"
    )
    applied = {
        "event": "action",
        "action": "apply_pending_maintenance",
        "kind": "MaintenanceWindow",
        "name": "w",
        "outcome": "applied",
        "target": "prod",
        "after": {"action": "system-update", "optInType": "immediate"},
        "reason": "r",
    }
    assert _plain(applied) == (
        "homeostat APPLIED MaintenanceWindow/w: system-update on Aurora cluster prod, OptInType immediate (r)"
    )


def test_the_demo_narrates_a_fight_with_the_values_seen() -> None:
    from homeostat.operator.demo import _plain

    line = _plain(
        {
            "event": "action",
            "action": "fight_detected",
            "kind": "ECSService",
            "name": "api",
            "target": "prod/api",
            "outcome": "conflict",
            "before": {"desiredCount": [2, 2, 1]},
            "reason": "fight: desiredCount corrected 2 times within 1m",
        }
    )
    assert line is not None
    assert line.startswith("homeostat STOPS FIGHTING over ECSService/api prod/api: fight: desiredCount")
    assert "(desiredCount was set back to 2, 2, 1)" in line


# --- timestamps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1764590400, datetime(2025, 12, 1, 12, tzinfo=UTC)),  # JSON protocols: epoch seconds
        (1764590400.5, datetime(2025, 12, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        ("1764590400", datetime(2025, 12, 1, 12, tzinfo=UTC)),
        ("2025-12-01T12:00:00.000Z", datetime(2025, 12, 1, 12, tzinfo=UTC)),  # query/XML protocols
        ("2025-12-01T13:00:00+01:00", datetime(2025, 12, 1, 12, tzinfo=UTC)),
        ("Mon, 01 Dec 2025 12:00:00 GMT", datetime(2025, 12, 1, 12, tzinfo=UTC)),  # RFC 822 headers
    ],
)
def test_timestamps_parse_to_the_instant_botocores_parser_gives_in_utc(
    value: object, expected: datetime
) -> None:
    """The session's timestamp parser gives the instant botocore's default parser gives (which
    builds a dateutil tzlocal for every value), always as an aware UTC datetime."""
    from botocore.utils import parse_timestamp

    parsed = utc_timestamp(value)
    assert parsed == expected == parse_timestamp(value)
    assert parsed.tzinfo is UTC


def test_every_client_of_the_session_parses_timestamps_in_utc() -> None:
    with mock_aws():
        clients = BotoClients(REGION)
        rds = clients.client("rds")
        create_cluster(rds, "ts")
        (cluster,) = rds.describe_db_clusters(DBClusterIdentifier="ts")["DBClusters"]
        assert cluster["ClusterCreateTime"].tzinfo is UTC
        other = clients.in_region("eu-west-1").client("cloudwatch")
        put_alarms(other, ["a"])
        (alarm,) = other.describe_alarms()["MetricAlarms"]
        assert alarm["StateUpdatedTimestamp"].tzinfo is UTC
