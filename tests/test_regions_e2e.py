"""End to end (contract section 2): `run --once`, the real CLI as a subprocess against moto's
server, reconciles resources of two regions in one process: the default region (the
environment's AWS_DEFAULT_REGION, us-east-1) for the manifests that name none, eu-west-1 for
those that name it. `plan` then finds both regions in sync.
"""

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from .alarm_helpers import put_alarms
from .conftest import REGION, MotoServer, run_cli

pytestmark = pytest.mark.e2e

OTHER = "eu-west-1"


def client(moto: MotoServer, service: str, region: str) -> Any:
    return boto3.client(service, endpoint_url=moto.url, region_name=region)


def seed(moto: MotoServer) -> None:
    """In both regions: service prod/api at 1 task and alarm prod-cpu, its actions enabled in
    eu-west-1 only."""
    for region in (REGION, OTHER):
        ecs = client(moto, "ecs", region)
        ecs.create_cluster(clusterName="prod")
        ecs.register_task_definition(
            family="api", containerDefinitions=[{"name": "api", "image": "nginx", "memory": 128}]
        )
        ecs.create_service(cluster="prod", serviceName="api", taskDefinition="api:1", desiredCount=1)
        put_alarms(client(moto, "cloudwatch", region), ["prod-cpu"], enabled=region == OTHER)


def manifests(directory: Path) -> Path:
    """The default region: 2 tasks, alarm actions on. eu-west-1: 5 tasks, alarm actions off."""
    directory.mkdir()
    documents = []
    for name, region, count, enabled in (("default", None, 2, "true"), ("eu", OTHER, 5, "false")):
        where = f"  region: {region}\n" if region else ""
        documents.append(
            f"apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {{name: api-{name}}}\nspec:\n{where}"
            f"  cluster: prod\n  service: api\n  desiredCount: {count}\n"
        )
        documents.append(
            f"apiVersion: homeostat/v1\nkind: AlarmActions\nmetadata: {{name: alarms-{name}}}\nspec:\n{where}"
            f"  alarmNamePrefix: prod-\n  actionsEnabled: {enabled}\n"
        )
    (directory / "state.yaml").write_text("---\n".join(documents))
    return directory


def live(moto: MotoServer, region: str) -> tuple[int, bool]:
    (item,) = client(moto, "ecs", region).describe_services(cluster="prod", services=["api"])["services"]
    (alarm,) = client(moto, "cloudwatch", region).describe_alarms(AlarmNames=["prod-cpu"])["MetricAlarms"]
    return int(item["desiredCount"]), bool(alarm["ActionsEnabled"])


def test_run_once_reconciles_two_regions_in_one_process(moto_server: MotoServer, tmp_path: Path) -> None:
    seed(moto_server)
    env = moto_server.env(
        HOMEOSTAT_DESIRED_STATE=str(manifests(tmp_path / "desired-state")),
        HOMEOSTAT_HISTORY=f"sqlite:///{tmp_path / 'history.db'}",
        HOMEOSTAT_LOG_FORMAT="json",
    )
    fixed = run_cli("run", "--once", env=env, cwd=tmp_path, timeout=60)
    assert fixed.returncode == 0, fixed.stderr
    assert "Traceback" not in fixed.stderr
    # Two regions: the report has a REGION column, each row its resource's region.
    header, *table = [line.split() for line in fixed.stdout.splitlines()[1:]]
    assert header[:3] == ["KIND", "NAME", "REGION"]
    assert {row[1]: row[2] for row in table} == {
        "alarms-default": REGION,
        "api-default": REGION,
        "alarms-eu": OTHER,
        "api-eu": OTHER,
    }
    assert live(moto_server, REGION) == (2, True)
    assert live(moto_server, OTHER) == (5, False)

    history = run_cli("history", "--json", env=env, cwd=tmp_path, timeout=60)
    rows = [json.loads(line) for line in history.stdout.splitlines() if line.strip()]
    assert sorted((r["name"], r["action"], r["outcome"]) for r in rows) == [
        ("alarms-default", "enable_alarm_actions", "applied"),
        ("alarms-eu", "disable_alarm_actions", "applied"),
        ("api-default", "update_service", "applied"),
        ("api-eu", "update_service", "applied"),
    ]

    again = run_cli("plan", "--json", env=env, cwd=tmp_path, timeout=60)
    assert again.returncode == 0, again.stdout + again.stderr
    planned = json.loads(again.stdout)["resources"]
    assert {r["name"]: r["region"] for r in planned} == {
        "alarms-default": REGION,
        "api-default": REGION,
        "alarms-eu": OTHER,
        "api-eu": OTHER,
    }
