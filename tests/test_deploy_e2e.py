"""End to end: a deployment by commit and a rollback by `git revert` (issue 13), with the real CLI.

A real git checkout holds an ECSTaskDefinition whose content is the runbook's JSON file and
an ECSService with `taskDefinitionFrom`; each step is a commit followed by `run --once` (a
new process each time: the digest tags, not process memory, say what is registered) against
moto's server on 127.0.0.1.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MotoServer, run_cli
from tests.test_gitops_git import commit_all, git, new_repo

pytestmark = pytest.mark.e2e

CLUSTER = "shop-production"
SERVICE = "shop-production-api"
FAMILY = "shop-production-api"


def write(directory: Path, image: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    definition = {
        "family": FAMILY,
        "containerDefinitions": [{"name": "api", "image": image, "memory": 128, "essential": True}],
    }
    (directory / "api-task-definition.json").write_text(json.dumps(definition, indent=2) + "\n")
    (directory / "api.yaml").write_text(
        "apiVersion: homeostat/v1\nkind: ECSTaskDefinition\nmetadata: {name: api}\nspec:\n"
        f"  family: {FAMILY}\n  definitionFile: api-task-definition.json\n---\n"
        "apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {name: api}\nspec:\n"
        f"  cluster: {CLUSTER}\n  service: {SERVICE}\n  desiredCount: 1\n  taskDefinitionFrom: api\n"
    )


def running(moto: MotoServer) -> str:
    [item] = moto.client("ecs").describe_services(cluster=CLUSTER, services=[SERVICE])["services"]
    return str(item["taskDefinition"]).rsplit("/", 1)[-1]


def active(moto: MotoServer) -> list[str]:
    arns = moto.client("ecs").list_task_definitions(familyPrefix=FAMILY, status="ACTIVE")[
        "taskDefinitionArns"
    ]
    return [arn.rsplit("/", 1)[-1] for arn in arns]


def test_a_commit_deploys_and_a_revert_rolls_back_without_registering(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    ecs = moto_server.client("ecs")
    ecs.create_cluster(clusterName=CLUSTER)
    ecs.register_task_definition(
        family=FAMILY, containerDefinitions=[{"name": "api", "image": "by-hand", "memory": 128}]
    )
    ecs.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition=f"{FAMILY}:1", desiredCount=1)
    repo = new_repo(tmp_path / "repo")
    directory = repo / "desired-state"
    env = moto_server.env(
        HOMEOSTAT_DESIRED_STATE=str(directory),
        HOMEOSTAT_HISTORY=f"sqlite:///{tmp_path / 'history.db'}",
        HOMEOSTAT_LOG_FORMAT="json",
    )

    def cli(*args: str) -> Any:
        result = run_cli(*args, env=env, cwd=tmp_path, timeout=60)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def history() -> list[dict[str, Any]]:
        listed = cli("history", "--json")
        return [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]

    write(directory, "shop/api:v1")
    first = commit_all(repo, "api v1")[:12]
    plan = cli("plan")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "register_task_definition" in plan.stdout
    assert active(moto_server) == [f"{FAMILY}:1"]  # plan sends nothing

    assert cli("run", "--once").returncode == 0
    assert (running(moto_server), active(moto_server)) == (f"{FAMILY}:2", [f"{FAMILY}:1", f"{FAMILY}:2"])

    write(directory, "shop/api:v2")
    second = commit_all(repo, "api v2")[:12]
    assert cli("run", "--once").returncode == 0
    assert running(moto_server) == f"{FAMILY}:3"

    git(repo, "revert", "--no-edit", "HEAD")
    reverted = git(repo, "rev-parse", "HEAD")[:12]
    assert cli("run", "--once").returncode == 0
    assert running(moto_server) == f"{FAMILY}:2"
    assert active(moto_server) == [f"{FAMILY}:1", f"{FAMILY}:2", f"{FAMILY}:3"]  # nothing registered

    in_sync = cli("plan")
    assert in_sync.returncode == 0, in_sync.stdout + in_sync.stderr

    rows = [(r["kind"], r["action"], r["outcome"], r["revision"]) for r in history()]
    assert sorted(rows) == sorted(
        [
            ("ECSTaskDefinition", "register_task_definition", "applied", first),
            ("ECSService", "update_service", "applied", first),
            ("ECSTaskDefinition", "register_task_definition", "applied", second),
            ("ECSService", "update_service", "applied", second),
            ("ECSService", "update_service", "applied", reverted),
        ]
    )
