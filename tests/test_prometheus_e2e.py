"""The dashboard end to end: a real Prometheus scrapes the real daemon, and every panel query returns data.

homeostat runs as a subprocess against moto's server (drift to fix, a
dry-run resource that stays drifted, a resource that fails), Prometheus runs
on 127.0.0.1 scraping it every second with alerts.yaml loaded, and every
query of every dashboard panel goes through Prometheus' HTTP API with the
template variables substituted as Grafana would.
"""

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from homeostat.desired_state.identifiers import Kind
from homeostat.reconcilers.registry import KINDS
from tests.conftest import REGION, MotoServer
from tests.daemon_helpers import CLUSTER, DaemonProcess, desired_count, seed_services, wait_for
from tests.prometheus_tools import (
    EXPORTED,
    PROMETHEUS_SERIES,
    Prometheus,
    alert_rules,
    dashboard,
    dashboard_queries,
    metric_names,
    running_prometheus,
)

pytestmark = pytest.mark.e2e

# Metrics set only from the plans of some kinds: they have series once one of those kinds has resources.
METRIC_KINDS: dict[str, set[Kind]] = {
    "homeostat_maintenance_window_active": {Kind("MaintenanceWindow")},
    "homeostat_alarms_managed": {Kind("AlarmActions"), Kind("MaintenanceWindow")},
    "homeostat_snapshot_newest_age_seconds": {Kind("SnapshotRetention")},
    "homeostat_snapshots_owned": {Kind("SnapshotRetention")},
    "homeostat_aurora_cluster_available": {Kind("AuroraCluster")},
    "homeostat_aurora_capacity_max_acu": {Kind("AuroraCluster")},
}
RATE_INTERVAL = "10s"  # what $__rate_interval stands for: ten scrapes at 1 s
RANGE_SECONDS = 15
SNAPSHOT_CLUSTER = "aurora-prod"
SNAPSHOT_PREFIX = "aurora-prod-manual-"
AURORA_CLUSTER = "aurora-serverless"


def registered_kinds() -> set[Kind]:
    return {d.kind for d in KINDS}


def has_data_source(metric: str, kinds: set[Kind]) -> bool:
    """Whether `metric` gets series in this run: always, or once a kind that reports it is registered."""
    wanted = METRIC_KINDS.get(metric)
    return wanted is None or bool(wanted & kinds)


def grafana_regex_escape(value: str) -> str:
    """A variable value inside `=~"..."`, escaped as Grafana's Prometheus datasource does. Pure."""
    return re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\\\1", value)


def substitute(expr: str, instance: str) -> str:
    """The query Grafana would send with `instance` selected. Pure."""
    out = expr.replace("$__rate_interval", RATE_INTERVAL)
    out = out.replace("${instance}", grafana_regex_escape(instance))
    out = out.replace("$instance", grafana_regex_escape(instance))
    assert "$" not in out, f"unsubstituted template variable in {out}"
    return out


# -- seeding moto and writing manifests ----------------------------------------------------


def ecs_manifest(name: str, count: int, *, dry_run: bool = False) -> str:
    return (
        f"apiVersion: homeostat/v1\nkind: ECSService\nmetadata:\n  name: {name}\n"
        f"spec:\n  cluster: {CLUSTER}\n  service: {name}\n  desiredCount: {count}\n"
        + ("  dryRun: true\n" if dry_run else "")
    )


def seed_and_write(moto: MotoServer, desired: Path, kinds: set[Kind]) -> Any:
    """AWS state with drift for every registered kind, and the manifests that fix it."""
    desired.mkdir()
    ecs = seed_services(moto, {"api": 1, "web": 2, "batch": 1})
    # api drifts (1 -> 3) and is fixed; batch is dry-run and stays drifted; ghost does not exist (errors).
    (desired / "services.yaml").write_text(
        "---\n".join(
            [
                ecs_manifest("api", 3),
                ecs_manifest("web", 2),
                ecs_manifest("batch", 4, dry_run=True),
                ecs_manifest("ghost", 1),
            ]
        )
    )
    if kinds & {Kind("AlarmActions"), Kind("MaintenanceWindow")}:
        cloudwatch = moto.client("cloudwatch")
        for name, enabled in (("prod-api-5xx", False), ("prod-api-latency", True), ("prod-db-cpu", True)):
            cloudwatch.put_metric_alarm(
                AlarmName=name,
                MetricName="CPUUtilization",
                Namespace="AWS/RDS",
                Statistic="Average",
                Period=60,
                EvaluationPeriods=1,
                Threshold=90.0,
                ComparisonOperator="GreaterThanThreshold",
                ActionsEnabled=enabled,
                AlarmActions=["arn:aws:sns:us-east-1:123456789012:on-call"],
            )
    if Kind("AlarmActions") in kinds:
        (desired / "alarms.yaml").write_text(
            "apiVersion: homeostat/v1\nkind: AlarmActions\nmetadata:\n  name: api-alarms\n"
            "spec:\n  alarmNamePrefix: prod-api-\n  actionsEnabled: true\n"
        )
    if Kind("MaintenanceWindow") in kinds:
        now = datetime.now(UTC).replace(microsecond=0)
        start = (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        end = (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        (desired / "maintenance.yaml").write_text(
            "apiVersion: homeostat/v1\nkind: MaintenanceWindow\nmetadata:\n  name: db-upgrade\n"
            f'spec:\n  start: "{start}"\n  end: "{end}"\n'
            "  silenceAlarms:\n    - alarmNamePrefix: prod-db-\n"
        )
    if Kind("SnapshotRetention") in kinds:
        rds = moto.client("rds")
        rds.create_db_cluster(
            DBClusterIdentifier=SNAPSHOT_CLUSTER,
            Engine="aurora-postgresql",
            MasterUsername="homeostat",
            MasterUserPassword="not-a-secret-1",
        )
        rds.create_db_cluster_snapshot(
            DBClusterSnapshotIdentifier=f"{SNAPSHOT_PREFIX}20260101-0300",
            DBClusterIdentifier=SNAPSHOT_CLUSTER,
        )
        (desired / "snapshots.yaml").write_text(
            "apiVersion: homeostat/v1\nkind: SnapshotRetention\nmetadata:\n  name: aurora-daily\n"
            f"spec:\n  dbClusterIdentifier: {SNAPSHOT_CLUSTER}\n  snapshotPrefix: {SNAPSHOT_PREFIX}\n"
            "  retention:\n    maxAge: 7d\n"
        )
    if Kind("AuroraCluster") in kinds:  # max ACUs raised by hand to 64; the manifest holds 16
        moto.client("rds").create_db_cluster(
            DBClusterIdentifier=AURORA_CLUSTER,
            Engine="aurora-postgresql",
            MasterUsername="homeostat",
            MasterUserPassword="not-a-secret-1",
            ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 64},
        )
        (desired / "aurora.yaml").write_text(
            "apiVersion: homeostat/v1\nkind: AuroraCluster\nmetadata:\n  name: aurora-serverless\n"
            f"spec:\n  dbClusterIdentifier: {AURORA_CLUSTER}\n"
            "  serverlessV2Scaling: {minCapacity: 0.5, maxCapacity: 16}\n"
        )
    return ecs


# -- the scenario, shared by the tests of this module ---------------------------------------


class Scenario:
    def __init__(self, daemon: DaemonProcess, prometheus: Prometheus, kinds: set[Kind], ecs: Any) -> None:
        self.daemon = daemon
        self.prometheus = prometheus
        self.kinds = kinds
        self.ecs = ecs
        self.instance = f"127.0.0.1:{daemon.port}"


@pytest.fixture(scope="module")
def scenario(
    _moto_server_session: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    """One daemon and one Prometheus for the whole module (starting them is the slow part).

    Module-scoped, so it resets moto's server itself (as the `moto_server` fixture
    does per test) and sets the same fake AWS environment as conftest's autouse fixture.
    """
    moto = _moto_server_session
    tmp_path = tmp_path_factory.mktemp("prometheus-e2e")
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("AWS_CONFIG_FILE", "/dev/null")
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        moto.reset()
        kinds = registered_kinds()
        ecs = seed_and_write(moto, tmp_path / "desired", kinds)
        daemon = DaemonProcess(
            moto,
            tmp_path / "desired",
            f"sqlite:///{tmp_path / 'history.db'}",
            "--resync",
            "1",
            log_dir=tmp_path,
        )
        try:
            daemon.wait_ready()
            with running_prometheus(tmp_path, [f"127.0.0.1:{daemon.port}"]) as prometheus:
                # A few scrapes, enough for rate() over $__rate_interval and a range query.
                wait_for(
                    lambda: _scrapes(prometheus, f"127.0.0.1:{daemon.port}") >= 8,
                    timeout=60,
                    interval=0.5,
                    what=f"8 successful scrapes; prometheus log: {prometheus.log_text()[-2000:]}",
                )
                yield Scenario(daemon, prometheus, kinds, ecs)
        finally:
            daemon.kill()


def _scrapes(prometheus: Prometheus, instance: str) -> int:
    answer = prometheus.query(f'sum_over_time(up{{job="homeostat", instance="{instance}"}}[1m])')
    result = answer["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def _run(scenario: Scenario, target: dict[str, Any], expr: str) -> dict[str, Any]:
    if target.get("instant"):
        return scenario.prometheus.query(expr)
    end = time.time()
    return scenario.prometheus.query_range(expr, end - RANGE_SECONDS, end, "1s")


def _has_data(answer: dict[str, Any]) -> bool:
    result = answer["data"]["result"]
    if answer["data"]["resultType"] == "matrix":
        return any(series["values"] for series in result)
    return bool(result)


def test_every_dashboard_query_parses_and_returns_data(scenario: Scenario, capsys: Any) -> None:
    """Each panel query is valid PromQL for a real Prometheus and returns series from the real daemon.

    A query whose metrics come only from a kind with no registered reconciler is
    checked to parse and to name metrics homeostat defines; all others must return data.
    """
    assert desired_count(scenario.ecs, "api") == 3, "the daemon fixed the drifted service"
    with_data: list[str] = []
    parse_only: list[str] = []
    failures: list[str] = []
    for title, ref, target in dashboard_queries(dashboard()):
        expr = substitute(target["expr"], scenario.instance)
        label = f"{title} [{ref}]"
        answer = _run(scenario, target, expr)
        if answer.get("status") != "success":
            failures.append(f"{label}: Prometheus rejects {expr!r}: {answer.get('error')}")
            continue
        names = metric_names(expr)
        undefined = names - EXPORTED - PROMETHEUS_SERIES
        if undefined:
            failures.append(f"{label}: names metrics homeostat does not export: {sorted(undefined)}")
            continue
        if all(has_data_source(name, scenario.kinds) for name in names):
            if _has_data(answer):
                with_data.append(label)
            else:
                failures.append(f"{label}: no data for {expr!r}")
        else:
            parse_only.append(label)
    with capsys.disabled():
        print(f"\nregistered kinds: {sorted(str(k) for k in scenario.kinds)}")
        print(f"panel queries with data ({len(with_data)}): {with_data}")
        print(f"panel queries parsed only, kind not registered ({len(parse_only)}): {parse_only}")
    assert not failures, "\n".join(failures)
    assert with_data


def _instant(scenario: Scenario, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
    answer = scenario.prometheus.query(substitute(expr, scenario.instance))
    assert answer["status"] == "success", answer
    return {
        tuple(
            sorted((k, v) for k, v in series["metric"].items() if k not in {"instance", "job", "__name__"})
        ): float(series["value"][1])
        for series in answer["data"]["result"]
    }


def test_panels_show_the_state_the_daemon_left(scenario: Scenario) -> None:
    """The panel queries report the scenario: api fixed, batch (dry run) and ghost (missing) drifted."""
    drifted = _instant(scenario, 'sum by (kind) (1 - homeostat_resource_in_sync{instance=~"$instance"})')
    assert drifted[(("kind", "ECSService"),)] == 2
    in_sync = _instant(scenario, 'homeostat_resource_in_sync{kind="ECSService", instance=~"$instance"}')
    assert {dict(labels)["name"]: value for labels, value in in_sync.items()} == {
        "api": 1,
        "web": 1,
        "batch": 0,
        "ghost": 0,
    }
    actions = _instant(scenario, 'sum by (kind, outcome) (homeostat_actions_total{instance=~"$instance"})')
    assert actions[(("kind", "ECSService"), ("outcome", "applied"))] >= 1
    assert actions[(("kind", "ECSService"), ("outcome", "dry_run"))] >= 1
    errors = _instant(
        scenario, 'sum by (kind) (homeostat_reconcile_total{result="error", instance=~"$instance"})'
    )
    assert errors[(("kind", "ECSService"),)] >= 1
    if Kind("MaintenanceWindow") in scenario.kinds:
        windows = _instant(scenario, 'homeostat_maintenance_window_active{instance=~"$instance"}')
        assert windows == {(("name", "db-upgrade"),): 1}
    if Kind("SnapshotRetention") in scenario.kinds:
        ages = _instant(scenario, 'homeostat_snapshot_newest_age_seconds{instance=~"$instance"}')
        assert 0 <= ages[(("name", "aurora-daily"),)] < 26 * 3600
    if Kind("AuroraCluster") in scenario.kinds:  # the daemon lowered the max raised by hand
        capacity = _instant(scenario, 'homeostat_aurora_capacity_max_acu{instance=~"$instance"}')
        assert capacity == {(("name", "aurora-serverless"),): 16}
        available = _instant(scenario, 'homeostat_aurora_cluster_available{instance=~"$instance"}')
        assert available == {(("name", "aurora-serverless"),): 1}


def test_every_metric_the_dashboard_names_is_on_the_daemons_metrics_page(scenario: Scenario) -> None:
    """The daemon's /metrics carries every metric a panel names (those of registered kinds)."""
    page = scenario.daemon.get("/metrics").text
    exposed = {line.split("{")[0].split(" ")[0] for line in page.splitlines() if line and line[0] != "#"}
    named = {
        name
        for _, _, target in dashboard_queries(dashboard())
        for name in metric_names(target["expr"])
        if name not in PROMETHEUS_SERIES
    }
    expected = {name for name in named if has_data_source(name, scenario.kinds)}
    assert expected
    assert expected <= exposed, sorted(expected - exposed)


def test_instance_variable_lists_the_scraped_daemon(scenario: Scenario) -> None:
    """The instance variable's `label_values(homeostat_build_info, instance)` finds the daemon."""
    answer = scenario.prometheus.get("/api/v1/label/instance/values", **{"match[]": "homeostat_build_info"})
    assert answer["status"] == "success"
    assert answer["data"] == [scenario.instance]


def test_alert_rules_load_and_evaluate_cleanly_on_real_data(scenario: Scenario) -> None:
    """Prometheus loads alerts.yaml and evaluates every rule against the daemon's series without error."""
    expected = {rule["alert"] for rule in alert_rules()}

    def evaluated() -> list[dict[str, Any]]:
        groups = scenario.prometheus.get("/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return (
            rules if rules and all(rule.get("lastEvaluation", "").startswith("2") for rule in rules) else []
        )

    rules = wait_for(evaluated, timeout=20, what="every rule evaluated once")
    assert {rule["name"] for rule in rules} == expected
    for rule in rules:
        assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"
    # A healthy daemon that just passed: neither down, absent nor stale.
    states = {rule["name"]: rule["state"] for rule in rules}
    for quiet in ("HomeostatDown", "HomeostatAbsent", "HomeostatNoRecentPass"):
        assert states[quiet] == "inactive", states


def test_prometheus_is_stopped_when_its_block_ends_even_on_an_exception(tmp_path: Path) -> None:
    """running_prometheus stops its server when the block ends, even when the block raises."""
    started: list[Prometheus] = []

    def use_and_fail() -> None:
        with running_prometheus(tmp_path, ["127.0.0.1:9"]) as prometheus:
            started.append(prometheus)
            assert prometheus.get("/api/v1/status/buildinfo")["status"] == "success"
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        use_and_fail()
    assert started[0].process.poll() is not None
    with pytest.raises(requests.ConnectionError):
        requests.get(started[0].url + "/-/ready", timeout=2)


def test_substitution_escapes_the_instance_like_grafana() -> None:
    """`$instance` becomes the regex-escaped address and `$__rate_interval` a duration. Pure."""
    expr = 'rate(homeostat_reconcile_total{instance=~"$instance"}[$__rate_interval])'
    assert substitute(expr, "127.0.0.1:9464") == (
        'rate(homeostat_reconcile_total{instance=~"127\\\\.0\\\\.0\\\\.1:9464"}[10s])'
    )
