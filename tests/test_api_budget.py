"""The shared API budget (contract section 3 `--api-rate`, section 5 `api_budget_wait_seconds_total`).

The bucket runs on a fake clock: no test here measures wall time. The end-to-end test puts AWS's
published RDS limit in front of moto (server-side, real time) and proves a pass that deletes far
more than a second's worth at the default budget is never throttled.
"""

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client import CollectorRegistry

from homeostat.desired_state.loading import load_directory
from homeostat.metrics import Metrics
from homeostat.operator.aws_session import BotoClients
from homeostat.operator.budget import DEFAULT_RATES, FLOOR_SHARE, ApiBudget, parse_rates
from homeostat.operator.execution import Executor
from homeostat.operator.local_aws import LocalAws, Throttle
from homeostat.operator.options import UsageError, parse_settings
from homeostat.operator.passes import run_pass
from homeostat.operator.statuses import State
from homeostat.reconcilers.registry import default_reconcilers, gauges, kind_table
from tests.conftest import MotoServer
from tests.snapshot_helpers import CLUSTER, PREFIX, create_cluster, manifest_yaml, set_created


class FakeTime:
    """A clock that only moves when slept on (or told to)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += seconds


def test_defaults_are_the_contract_and_an_entry_overrides_one_service() -> None:
    assert dict(DEFAULT_RATES) == {"rds": 10, "ecs": 20, "cloudwatch": 3, "application-autoscaling": 10}
    assert dict(parse_rates("rds=1000, cloudwatch=0.5")) == {
        "rds": 1000,
        "ecs": 20,
        "cloudwatch": 0.5,
        "application-autoscaling": 10,
    }
    assert parse_rates("") == DEFAULT_RATES


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("rds", "expected SERVICE=RPS, got 'rds'"),
        ("rds=fast", "rds: expected requests per second, got 'fast'"),
        ("rds=0", "rds: requests per second must be above 0"),
        ("rds=nan", "rds: requests per second must be above 0"),
        ("=5", "expected SERVICE=RPS, got '=5'"),
    ],
)
def test_a_bad_rate_is_one_line_naming_the_option(value: str, message: str) -> None:
    with pytest.raises(UsageError, match="^--api-rate: " + message.replace("(", r"\(")):
        parse_settings(["run", "--api-rate", value])


def test_options_and_their_environment_variables() -> None:
    settings = parse_settings(["run"], {"HOMEOSTAT_API_RATE": "rds=1000", "HOMEOSTAT_CONCURRENCY": "3"})
    assert settings is not None
    assert settings.api_rate["rds"] == 1000
    assert settings.concurrency == 3
    defaults = parse_settings(["run"], {})
    assert defaults is not None
    assert (defaults.concurrency, dict(defaults.api_rate)) == (8, dict(DEFAULT_RATES))
    with pytest.raises(UsageError, match="--concurrency: must be from 1 to 64"):
        parse_settings(["run", "--concurrency", "0"], {})


def test_a_burst_of_one_second_then_the_rate() -> None:
    """rds=10: ten requests at once, then one every 100 ms."""
    fake = FakeTime()
    budget = ApiBudget({"rds": 10}, clock=fake.clock, sleep=fake.sleep)
    sent_at = []
    for _ in range(30):
        budget.acquire("rds", "us-east-1")
        sent_at.append(fake.now - 1000.0)
    assert sent_at[:10] == [0.0] * 10
    assert sent_at[10:] == pytest.approx([0.1 * k for k in range(1, 21)])


def test_an_idle_bucket_banks_at_most_one_second() -> None:
    fake = FakeTime()
    budget = ApiBudget({"cloudwatch": 3}, clock=fake.clock, sleep=fake.sleep)
    fake.now += 3600  # an hour idle
    waits = [budget.acquire("cloudwatch", None) for _ in range(5)]
    assert waits == pytest.approx([0, 0, 0, 1 / 3, 1 / 3])


def test_workers_share_one_bucket_and_queue_in_turn() -> None:
    """Eight threads, 40 requests: each reserves the next token, so the waits are 0 (x10), then
    1/10 s, 2/10 s, ... (the sleep of this fake does not move the clock: reservations alone
    keep them in line)."""
    waits: list[float] = []
    lock = threading.Lock()

    def record(seconds: float) -> None:
        with lock:
            waits.append(seconds)

    budget = ApiBudget({"rds": 10}, clock=lambda: 0.0, sleep=record)
    threads = [
        threading.Thread(target=lambda: [budget.acquire("rds", "eu-west-1") for _ in range(5)])
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(waits) == pytest.approx([0.1 * k for k in range(1, 31)])


def test_one_bucket_per_service_and_region_and_unlisted_services_are_not_paced() -> None:
    fake = FakeTime()
    budget = ApiBudget({"rds": 1, "ecs": 1}, clock=fake.clock, sleep=fake.sleep)
    assert budget.acquire("rds", "us-east-1") == 0
    assert budget.acquire("rds", "eu-west-1") == 0, "another region has its own bucket"
    assert budget.acquire("ecs", "us-east-1") == 0, "another service has its own bucket"
    assert budget.acquire("sts", "us-east-1") == 0
    assert [budget.acquire("sts", "us-east-1") for _ in range(100)] == [0] * 100
    assert budget.acquire("rds", "us-east-1") == 1.0
    assert budget.rate("sts", None) is None


def test_a_throttle_halves_the_rate_which_grows_back_linearly() -> None:
    fake = FakeTime()
    budget = ApiBudget({"rds": 10}, clock=fake.clock, sleep=fake.sleep)
    budget.throttled("rds", None)
    assert budget.rate("rds", None) == 5
    budget.throttled("rds", None)
    assert budget.rate("rds", None) == 5, "answers to requests sent before the cut say nothing new"
    fake.now += 1.0  # + 10% of 10 rps per second
    assert budget.rate("rds", None) == pytest.approx(6)
    budget.throttled("rds", None)
    assert budget.rate("rds", None) == pytest.approx(3)
    fake.now += 100
    assert budget.rate("rds", None) == 10, "back to the configured rate, never above"
    for _ in range(20):
        fake.now += 1.0
        budget.throttled("rds", None)
    assert budget.rate("rds", None) >= 10 * FLOOR_SHARE
    assert budget.rate("rds", None) <= 10 * FLOOR_SHARE + 1.0


def test_after_a_throttle_requests_wait_at_the_lower_rate() -> None:
    fake = FakeTime()
    budget = ApiBudget({"rds": 10}, clock=fake.clock, sleep=fake.sleep)
    budget.throttled("rds", None)  # the bank is dropped and the rate halved
    assert budget.acquire("rds", None) == pytest.approx(0.2)


def test_waiting_is_counted_per_service() -> None:
    fake = FakeTime()
    metrics = Metrics(CollectorRegistry(), gauges())
    budget = ApiBudget(
        {"cloudwatch": 2}, clock=fake.clock, sleep=fake.sleep, on_wait=metrics.count_budget_wait
    )
    for _ in range(4):
        budget.acquire("cloudwatch", "us-east-1")
    value = metrics.registry.get_sample_value(
        "homeostat_api_budget_wait_seconds_total", {"service": "cloudwatch"}
    )
    assert value == pytest.approx(0.5 + 0.5), "the third and fourth wait half a second each"


# -- end to end: AWS's published limit in front of moto ------------------------------------

DELETIONS = 36  # more than three seconds' worth at rds=10 (and any server burst)
RDS_LIMIT = 12.0  # requests per second, AWS's published RDS limit


@pytest.fixture
def throttled_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalAws, list[Throttle]]]:
    made: list[Throttle] = []

    def wrap(app: Any) -> Throttle:
        made.append(Throttle(app, {"rds": RDS_LIMIT}))
        return made[-1]

    server = LocalAws(middleware=wrap).start()
    MotoServer(server.url, server).reset()  # moto's backends are global to the process
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    try:
        yield server, made
    finally:
        server.stop()


def seed(server: LocalAws, tmp_path: Path, count: int) -> Path:
    import boto3

    rds = boto3.client("rds", endpoint_url=server.url, region_name="us-east-1")
    create_cluster(rds)
    now = datetime.now(UTC)
    for i in range(count + 1):
        snapshot_id = f"{PREFIX}{i:03d}"
        rds.create_db_cluster_snapshot(DBClusterIdentifier=CLUSTER, DBClusterSnapshotIdentifier=snapshot_id)
        set_created(snapshot_id, now - timedelta(days=30, minutes=count - i))
    directory = tmp_path / "desired"
    directory.mkdir()
    (directory / "snapshots.yaml").write_text(
        manifest_yaml("aurora", CLUSTER, None).replace("maxDeletionsPerRun: 20", "maxDeletionsPerRun: 100")
    )
    return directory


@pytest.mark.e2e
def test_at_the_default_budget_no_call_is_throttled_at_the_published_limit(
    throttled_aws: tuple[LocalAws, list[Throttle]], tmp_path: Path
) -> None:
    """36 deletions with 8 workers against a server that throttles above 12 requests/s: the
    default budget (rds=10) sends them in about 3 s and not one is throttled; the wait is counted."""
    server, (throttle,) = throttled_aws
    throttle.reject = False  # the seeding is not under test: its burst is counted, never refused
    desired = load_directory(seed(server, tmp_path, DELETIONS), kinds=kind_table())
    throttle.reject = True
    throttle.reset()  # the seeding spent the server's burst
    metrics = Metrics(CollectorRegistry(), gauges())
    budget = ApiBudget(DEFAULT_RATES, on_wait=metrics.count_budget_wait)
    calls: list[tuple[str, str, str]] = []
    aws = BotoClients("us-east-1", on_call=lambda *call: calls.append(call), budget=budget)
    executor = Executor(None, metrics, structlog.get_logger(), lambda: datetime.now(UTC), concurrency=8)
    report = run_pass(
        desired, default_reconcilers(), aws, executor, clock=lambda: datetime.now(UTC), dry_run=False
    )
    assert [s.state for s in report.statuses] == [State.FIXED]
    assert sum(1 for r in report.records if r.action == "delete_snapshot") == DELETIONS
    assert throttle.throttled == {}, "no request went over the published limit"
    assert {result for _, _, result in calls} == {"ok"}
    waited = metrics.registry.get_sample_value("homeostat_api_budget_wait_seconds_total", {"service": "rds"})
    assert waited is not None
    assert waited > 0


@pytest.mark.e2e
def test_the_server_throttle_is_real_without_the_budget(
    throttled_aws: tuple[LocalAws, list[Throttle]], tmp_path: Path
) -> None:
    """The control: the same limit answers Throttling to a client sending as fast as it can."""
    import boto3

    server, (throttle,) = throttled_aws
    rds = boto3.client("rds", endpoint_url=server.url, region_name="us-east-1")
    throttle.reset()
    errors = []
    for _ in range(3 * int(RDS_LIMIT)):
        try:
            rds.describe_db_clusters()
        except Exception as exc:  # noqa: BLE001 - botocore raises ClientError after its retries
            errors.append(type(exc).__name__)
    assert throttle.throttled.get("rds", 0) > 0
