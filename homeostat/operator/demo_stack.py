"""The demo's stack and its person: what `homeostat demo` seeds into the embedded local AWS (an
ECS cluster with api, web and worker, an Aurora cluster with ten days of manual snapshots and
an emergency one, production alarms), and `Chaos`, who changes something every few seconds
the way a person would, and says so. `demo.py` runs the daemon beside them and narrates.
"""

import random
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from homeostat.operator.clock import rfc3339, time_of_day, utc_now
from homeostat.operator.local_maintenance import PendingMaintenance

CLUSTER = "omnirapeutic-production"
SERVICES = {"api": 42, "web": 17, "worker": 5}  # service -> newest task definition revision
ALARMS = (
    "api-5xx-rate",
    "api-latency-p99",
    "web-5xx-rate",
    "worker-queue-depth",
    "aurora-cpu",
    "aurora-free-storage",
)
ACCOUNT = "123456789012"
REGION = "us-east-1"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "desired-state"
DRIFT_EVERY_SECONDS = 20
# The demo's fight rule: 3 corrections within 60 s (the daemon's default window is 1 h). The
# person's other moves come minutes apart and never add up to a fight; the fight scene's old
# scaling script reverts api every 4 s, and is stopped after FIGHT_SECONDS.
DEMO_FIGHT_WINDOW = timedelta(seconds=60)
FIGHT_REVERT_EVERY_SECONDS = 4
FIGHT_SECONDS = 36
HOLD_SECONDS = 25  # the demo's bounded hold of web ends in front of the viewer
# The `suspend` block of web in services.yaml, commented out (as shipped) or in force.
_HOLD_BLOCK = re.compile(r"^  (# )?suspend:\n  (# )?  until: .*\n  (# )?  reason: .*\n", re.MULTILINE)
# moto accepts any credentials; these are passed explicitly, never through the environment.
DEMO_KEY = "demo"


def local_client(endpoint: str, service: str) -> Any:
    """A boto3 client of the local AWS, with the demo's explicit credentials."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=DEMO_KEY,
        aws_secret_access_key=DEMO_KEY,
    )


def say(message: str) -> None:
    print(f"[{time_of_day(utc_now())}] {message}", flush=True)


def seed(endpoint: str, now: datetime) -> None:
    def client(service: str) -> Any:
        return local_client(endpoint, service)

    ecs = client("ecs")
    ecs.create_cluster(clusterName=CLUSTER)
    for service, newest in SERVICES.items():
        family = f"{CLUSTER}-{service}"
        for _ in range(newest):
            ecs.register_task_definition(
                family=family,
                containerDefinitions=[{"name": service, "image": f"example/{service}", "memory": 512}],
            )
    ecs.create_service(
        cluster=CLUSTER, serviceName=f"{CLUSTER}-api", taskDefinition=f"{CLUSTER}-api:41", desiredCount=2
    )
    ecs.create_service(
        cluster=CLUSTER, serviceName=f"{CLUSTER}-web", taskDefinition=f"{CLUSTER}-web:17", desiredCount=3
    )
    ecs.create_service(
        cluster=CLUSTER, serviceName=f"{CLUSTER}-worker", taskDefinition=f"{CLUSTER}-worker:5", desiredCount=2
    )
    client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=f"service/{CLUSTER}/{CLUSTER}-worker",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=1,
        MaxCapacity=4,
    )
    rds = client("rds")
    rds.create_db_cluster(
        DBClusterIdentifier=CLUSTER,
        Engine="aurora-postgresql",
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
    )
    snapshots: dict[str, datetime] = {}
    for days in range(11):  # the runbook's nightly 03:00 snapshots of the last ten days (and today's)
        taken = (now - timedelta(days=days)).replace(hour=3, minute=0, second=0, microsecond=0)
        if taken <= now:
            snapshots[f"omnirapeutic-prod-manual-{taken:%Y%m%d-%H%M}"] = taken
    emergency = (now - timedelta(days=9)).replace(hour=14, minute=37, second=0, microsecond=0)
    snapshots[f"omnirapeutic-emergency-{emergency:%Y%m%d-%H%M}"] = emergency
    for identifier in snapshots:
        rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=identifier, DBClusterIdentifier=CLUSTER)
    _backdate_snapshots(snapshots)
    cloudwatch = client("cloudwatch")
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:{CLUSTER}-oncall"
    for alarm in ALARMS:
        cloudwatch.put_metric_alarm(
            AlarmName=f"{CLUSTER}-{alarm}",
            MetricName="Errors",
            Namespace="Demo",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
            AlarmActions=[topic],
            ActionsEnabled=True,
        )


def _backdate_snapshots(created: dict[str, datetime]) -> None:
    """moto stamps every snapshot "now" and no API changes it: set the in-process record (naive UTC)."""
    from moto.rds.models import rds_backends

    backend = rds_backends[ACCOUNT][REGION]
    for identifier, when in created.items():
        backend.cluster_snapshots[identifier].created = when.astimezone(UTC).replace(tzinfo=None)


class Chaos:
    """Makes drift the way a person would, and says so."""

    def __init__(
        self,
        endpoint: str,
        stop: threading.Event,
        desired: Path,
        maintenance: PendingMaintenance | None = None,
    ) -> None:
        self.ecs = local_client(endpoint, "ecs")
        self.rds = local_client(endpoint, "rds")
        self.maintenance = maintenance
        self.cloudwatch = local_client(endpoint, "cloudwatch")
        self.stop = stop
        self.desired = desired
        self.random = random.Random(7)  # noqa: S311 - picks demo drift, not secrets

    def run(self) -> None:
        moves = [
            self.scale_down,
            self.deploy_api,
            self.hold_web,
            self.fight_api,
            self.add_window,
            self.roll_back,
            self.silence_alarm,
        ]
        step = 0
        while not self.stop.wait(DRIFT_EVERY_SECONDS):
            try:
                moves[step % len(moves)]()
            except Exception as exc:  # noqa: BLE001 - the demo goes on; say what went wrong
                say(f"(demo could not make drift: {exc})")
            step += 1

    def scale_down(self) -> None:
        count = self.random.choice([0, 1])
        self.ecs.update_service(cluster=CLUSTER, service=f"{CLUSTER}-api", desiredCount=count)
        say(f"PERSON  scaled {CLUSTER}-api down to {count} tasks by hand in the console")

    def deploy_api(self) -> None:
        """A deployment by commit of a new image tag, and next time its revert: homeostat registers
        v1.2.4 and moves api to it, then finds v1.2.3's revision by its digest and registers nothing."""
        path = self.desired / "api-task-definition.json"
        text = path.read_text()
        old, new = ("v1.2.3", "v1.2.4") if "api:v1.2.3" in text else ("v1.2.4", "v1.2.3")
        path.write_text(text.replace(f"api:{old}", f"api:{new}"))
        what = "reverted api to image" if new == "v1.2.3" else "committed a new api image"
        say(f"PERSON  {what} {new} in api-task-definition.json")

    def hold_web(self) -> None:
        """An incident: web is held for HOLD_SECONDS with a reason and scaled by hand meanwhile. The
        hold ends by itself: homeostat records `resume` and puts web back at its declared count."""
        until = utc_now().replace(microsecond=0) + timedelta(seconds=HOLD_SECONDS)
        reason = "INC-4711: web held at 6 tasks while we investigate"
        path = self.desired / "services.yaml"
        path.write_text(with_hold(path.read_text(), until, reason))
        say(f"PERSON  held web until {time_of_day(until)} UTC in services.yaml: {reason}")
        # Scaled once homeostat holds web (it loads an edit within 2 s): a pass still on the
        # revision before the hold would put web back at once, and the hold would show nothing.
        if self.stop.wait(3):
            return
        self.ecs.update_service(cluster=CLUSTER, service=f"{CLUSTER}-web", desiredCount=6)
        say(f"PERSON  scaled {CLUSTER}-web to 6 tasks by hand; homeostat leaves it alone while held")

    def fight_api(self) -> None:
        """Something else fights homeostat: an old scaling script sets api to 2 tasks every few
        seconds. After three corrections homeostat stops correcting api (Fighting) instead of
        fighting for ever; the person finds the script, stops it and puts api back at 4 by hand,
        and after a quiet fight window homeostat reconciles api again."""
        say(f"SCRIPT  an old scaling script starts setting {CLUSTER}-api to 2 tasks every 4 s")
        deadline = time.monotonic() + FIGHT_SECONDS
        while time.monotonic() < deadline:
            self.ecs.update_service(cluster=CLUSTER, service=f"{CLUSTER}-api", desiredCount=2)
            if self.stop.wait(FIGHT_REVERT_EVERY_SECONDS):
                return
        self.ecs.update_service(cluster=CLUSTER, service=f"{CLUSTER}-api", desiredCount=4)
        say(f"PERSON  found and stopped the script, and set {CLUSTER}-api back to 4 tasks")

    def roll_back(self) -> None:
        self.ecs.update_service(cluster=CLUSTER, service=f"{CLUSTER}-web", taskDefinition=f"{CLUSTER}-web:16")
        say(f"PERSON  deployed task definition {CLUSTER}-web:16 by hand (the manifest pins :17)")

    def add_window(self) -> None:
        """A one-off window that silences the api alarms and has the cluster's pending system
        update applied inside it (AWS announces one; homeostat applies it at the window's start)."""
        start = utc_now().replace(microsecond=0) + timedelta(seconds=5)
        end = start + timedelta(seconds=15)
        if self.maintenance is not None:
            [cluster] = self.rds.describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"]
            self.maintenance.add(
                cluster["DBClusterArn"],
                "system-update",
                "Aurora PostgreSQL system update",
                ForcedApplyDate=utc_now() + timedelta(days=30),
            )
            say(f"AWS     announced a pending system-update for the Aurora cluster {CLUSTER}")
        (self.desired / "demo-window.yaml").write_text(
            "apiVersion: homeostat/v1\nkind: MaintenanceWindow\nmetadata:\n  name: demo-window\nspec:\n"
            f'  start: "{rfc3339(start)}"\n  end: "{rfc3339(end)}"\n'
            f"  silenceAlarms:\n    - alarmNamePrefix: {CLUSTER}-api\n"
            f"  applyPendingMaintenance:\n    - dbClusterIdentifier: {CLUSTER}\n"
        )
        say(
            f"PERSON  committed a one-off maintenance window for the api alarms and the cluster's "
            f"pending maintenance, {time_of_day(start)}-{time_of_day(end)} UTC (demo-window.yaml)"
        )

    def silence_alarm(self) -> None:
        alarm = f"{CLUSTER}-{self.random.choice(ALARMS)}"
        self.cloudwatch.disable_alarm_actions(AlarmNames=[alarm])
        say(f"PERSON  disabled the actions of alarm {alarm} and forgot to turn them back on")


def with_hold(services: str, until: datetime, reason: str) -> str:
    """services.yaml with web's `suspend` block set to a bounded hold (replacing the commented
    example, or the demo's previous hold). Pure."""
    block = f'  suspend:\n    until: "{rfc3339(until)}"\n    reason: "{reason}"\n'
    changed, count = _HOLD_BLOCK.subn(lambda _match: block, services, count=1)
    if count != 1:
        raise ValueError("services.yaml has no suspend block for web")
    return changed
