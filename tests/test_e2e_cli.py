"""End to end: the real `homeostat` CLI as a subprocess against moto's server on 127.0.0.1.

Options reach the CLI through HOMEOSTAT_* environment variables and AWS
through AWS_ENDPOINT_URL (moto_server.env()). Task definitions the manifests
pin are registered first: moto's UpdateService fails on an unknown one but
still applies the count.
"""

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import HISTORY_JSON_FIELDS, MotoServer, run_cli

pytestmark = pytest.mark.e2e

CLUSTER = "omnirapeutic-production"
API = f"{CLUSTER}-api"
WEB = f"{CLUSTER}-web"
WORKER = f"{CLUSTER}-worker"
CONTRACT_FIELDS = HISTORY_JSON_FIELDS


def seed(moto: MotoServer) -> None:
    """api: 2 tasks of api:1 (declared 4 of api:2); web: 1 of web:1 (declared 3); worker autoscaled 2-8."""
    ecs = moto.client("ecs")
    ecs.create_cluster(clusterName=CLUSTER)
    for family, revisions in (("api", 2), ("web", 1), ("worker", 1)):
        for _ in range(revisions):
            ecs.register_task_definition(
                family=family, containerDefinitions=[{"name": family, "image": "nginx", "memory": 128}]
            )
    ecs.create_service(cluster=CLUSTER, serviceName=API, taskDefinition="api:1", desiredCount=2)
    ecs.create_service(cluster=CLUSTER, serviceName=WEB, taskDefinition="web:1", desiredCount=1)
    ecs.create_service(cluster=CLUSTER, serviceName=WORKER, taskDefinition="worker:1", desiredCount=3)
    moto.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=f"service/{CLUSTER}/{WORKER}",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=2,
        MaxCapacity=8,
    )


def write_state(directory: Path, *, api_extra: str = "", worker: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    worker_spec = worker or "  autoscaling: {minCapacity: 2, maxCapacity: 8}"
    text = (
        f"apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {{name: api}}\nspec:\n"
        f"  cluster: {CLUSTER}\n  service: {API}\n  desiredCount: 4\n  taskDefinition: api:2\n"
        f"{api_extra}"
        f"---\napiVersion: homeostat/v1\nkind: ECSService\nmetadata: {{name: web}}\nspec:\n"
        f"  cluster: {CLUSTER}\n  service: {WEB}\n  desiredCount: 3\n"
        f"---\napiVersion: homeostat/v1\nkind: ECSService\nmetadata: {{name: worker}}\nspec:\n"
        f"  cluster: {CLUSTER}\n  service: {WORKER}\n{worker_spec}\n"
    )
    (directory / "services.yaml").write_text(text)
    return directory


def live(moto: MotoServer) -> dict[str, tuple[int, str]]:
    """{service: (desiredCount, family:revision)} as moto reports them."""
    services = moto.client("ecs").describe_services(cluster=CLUSTER, services=[API, WEB, WORKER])
    return {
        s["serviceName"]: (s["desiredCount"], s["taskDefinition"].rsplit("/", 1)[-1])
        for s in services["services"]
    }


def bounds(moto: MotoServer) -> tuple[int, int]:
    target = moto.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[f"service/{CLUSTER}/{WORKER}"]
    )["ScalableTargets"][0]
    return target["MinCapacity"], target["MaxCapacity"]


class Cli:
    """The CLI bound to one moto server, desired-state directory and history database."""

    def __init__(self, moto: MotoServer, state: Path, history: Path) -> None:
        self.env = moto.env(
            HOMEOSTAT_DESIRED_STATE=str(state),
            HOMEOSTAT_HISTORY=f"sqlite:///{history}",
            HOMEOSTAT_LOG_FORMAT="json",
        )
        self.cwd = state.parent

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = run_cli(*args, env=self.env, cwd=self.cwd, timeout=60)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def history(self) -> list[dict[str, Any]]:
        result = self("history", "--json")
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture
def cli(moto_server: MotoServer, tmp_path: Path) -> Cli:
    seed(moto_server)
    return Cli(moto_server, write_state(tmp_path / "desired-state"), tmp_path / "history.db")


def test_plan_run_once_plan_history(cli: Cli, moto_server: MotoServer) -> None:
    """`plan` exits 2 on drift, `run --once` fixes counts and task definition, `plan` then exits 0,
    and `history --json` shows one applied row per fix with every contract field."""
    drifted = cli("plan")
    assert drifted.returncode == 2, drifted.stderr
    assert "update_service" in drifted.stdout
    assert "api:2" in drifted.stdout

    document = json.loads(cli("plan", "--json").stdout)
    assert document["inSync"] is False
    assert document["summary"]["toChange"] == 2
    assert {r["name"]: r["inSync"] for r in document["resources"]} == {
        "api": False,
        "web": False,
        "worker": True,
    }

    fixed = cli("run", "--once")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert live(moto_server) == {API: (4, "api:2"), WEB: (3, "web:1"), WORKER: (3, "worker:1")}

    in_sync = cli("plan")
    assert in_sync.returncode == 0, in_sync.stdout + in_sync.stderr
    assert "no changes" in in_sync.stdout

    rows = cli.history()
    assert [(r["name"], r["action"], r["outcome"], r["dry_run"]) for r in rows] == [
        ("api", "update_service", "applied", False),
        ("web", "update_service", "applied", False),
    ]
    for row in rows:
        assert set(row) >= CONTRACT_FIELDS
        assert row["kind"] == "ECSService"
        assert row["error"] is None
        assert row["time"].endswith("Z")
        assert row["revision"] == document["revision"]
    assert rows[0]["before"] == {"desiredCount": 2, "taskDefinition": rows[0]["before"]["taskDefinition"]}
    assert rows[0]["before"]["taskDefinition"].endswith("api:1")
    assert rows[0]["after"] == {"desiredCount": 4, "taskDefinition": "api:2"}
    assert rows[1]["before"] == {"desiredCount": 1}
    assert rows[1]["after"] == {"desiredCount": 3}

    again = cli("run", "--once")
    assert again.returncode == 0
    assert len(cli.history()) == 2, "an in-sync pass records no actions"

    filtered = cli("history", "--json", "--name", "web")
    assert [json.loads(line)["name"] for line in filtered.stdout.splitlines()] == ["web"]


def test_action_log_lines_carry_the_contract_fields(cli: Cli) -> None:
    """Every action log line (JSON on stderr) carries kind, name, action, before, after, outcome, revision."""
    result = cli("run", "--once")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    actions = [line for line in lines if line.get("event") == "action"]
    assert sorted(a["name"] for a in actions) == ["api", "web"]
    for line in actions:
        assert {"kind", "name", "action", "before", "after", "outcome", "revision"} <= set(line)
        assert line["outcome"] == "applied"


def test_dry_run_changes_nothing_and_records_dry_run_rows(cli: Cli, moto_server: MotoServer) -> None:
    """`run --once --dry-run` leaves AWS untouched and records each planned action as dry_run."""
    before = live(moto_server)
    result = cli("run", "--once", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dry run" in result.stdout
    assert live(moto_server) == before
    rows = cli.history()
    assert [(r["name"], r["outcome"], r["dry_run"]) for r in rows] == [
        ("api", "dry_run", True),
        ("web", "dry_run", True),
    ]
    assert cli("plan").returncode == 2


def test_dry_run_from_the_environment(cli: Cli, moto_server: MotoServer) -> None:
    """HOMEOSTAT_DRY_RUN=true has the same effect as --dry-run."""
    before = live(moto_server)
    cli.env["HOMEOSTAT_DRY_RUN"] = "true"
    assert cli("run", "--once").returncode == 0
    assert live(moto_server) == before
    assert {r["outcome"] for r in cli.history()} == {"dry_run"}


def test_per_resource_dry_run_and_suspend(cli: Cli, moto_server: MotoServer, tmp_path: Path) -> None:
    """`dryRun: true` records without applying for that resource only; `suspend: true` skips it."""
    write_state(tmp_path / "desired-state", api_extra="  dryRun: true\n")
    result = cli("run", "--once")
    assert result.returncode == 0, result.stdout + result.stderr
    assert live(moto_server)[API] == (2, "api:1")
    assert live(moto_server)[WEB] == (3, "web:1")
    assert [(r["name"], r["outcome"]) for r in cli.history()] == [("api", "dry_run"), ("web", "applied")]

    write_state(tmp_path / "desired-state", api_extra="  suspend: true\n")
    suspended = cli("run", "--once")
    assert suspended.returncode == 0, suspended.stdout + suspended.stderr
    assert "Suspended" in suspended.stdout
    assert live(moto_server)[API] == (2, "api:1")
    assert len(cli.history()) == 2


def test_autoscaled_service_with_desired_count_is_a_conflict_left_alone(
    cli: Cli, moto_server: MotoServer, tmp_path: Path
) -> None:
    """desiredCount declared for an autoscaled service is reported as Conflict, recorded, not applied."""
    write_state(tmp_path / "desired-state", worker="  desiredCount: 6")
    plan = json.loads(cli("plan", "--json").stdout)
    worker = next(r for r in plan["resources"] if r["name"] == "worker")
    assert worker["actions"][0]["conflict"]
    assert plan["summary"]["conflicts"] == 1

    result = cli("run", "--once")
    assert result.returncode == 1
    assert "Conflict" in result.stdout
    assert live(moto_server)[WORKER] == (3, "worker:1")
    assert live(moto_server)[API] == (4, "api:2"), "the conflict blocks only its own resource"
    rows = [r for r in cli.history() if r["name"] == "worker"]
    assert [(r["action"], r["outcome"], r["dry_run"]) for r in rows] == [
        ("update_service", "conflict", False)
    ]
    assert "Auto Scaling" in rows[0]["conflict"], "the conflict is its own field (issue 10 item 4)"
    assert rows[0]["after"] == {"desiredCount": 6}


def test_autoscaling_bounds_are_reconciled(cli: Cli, moto_server: MotoServer, tmp_path: Path) -> None:
    """Declared autoscaling bounds are set on the scalable target; the count stays the autoscaler's."""
    write_state(tmp_path / "desired-state", worker="  autoscaling: {minCapacity: 3, maxCapacity: 10}")
    assert cli("run", "--once").returncode == 0
    assert bounds(moto_server) == (3, 10)
    assert live(moto_server)[WORKER] == (3, "worker:1")
    assert cli("plan").returncode == 0


def test_missing_service_is_an_error_for_that_resource(
    cli: Cli, moto_server: MotoServer, tmp_path: Path
) -> None:
    """A declared service that does not exist makes `run --once` exit 1 while the others are fixed."""
    state = tmp_path / "desired-state"
    (state / "ghost.yaml").write_text(
        f"apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {{name: ghost}}\n"
        f"spec: {{cluster: {CLUSTER}, service: ghost, desiredCount: 1}}\n"
    )
    result = cli("run", "--once")
    assert result.returncode == 1
    assert "ghost" in result.stdout
    assert live(moto_server)[API] == (4, "api:2")
    assert cli("plan").returncode == 1
