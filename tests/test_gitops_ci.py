"""PR tooling for the desired-state repository: the CI recipe and the `plan --json` format.

Specification (issue 6): `deploy/ci/desired-state-pr.yml` runs `homeostat
validate` and `homeostat plan --json` on pull requests with options the CLI
accepts; `plan --json` prints the documented formatVersion 1 document
(docs/plan-json.md), with exit 0 in sync, 2 drift, 1 error.
"""

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from homeostat.operator.options import parse_settings
from tests.conftest import REPO, MotoServer, run_cli
from tests.gitops_helpers import seed_ecs, service_manifest, write_atomically

WORKFLOW = REPO / "deploy" / "ci" / "desired-state-pr.yml"
PLAN_DOC = REPO / "docs" / "plan-json.md"


def workflow_commands() -> list[list[str]]:
    """Every `homeostat ...` command line of the workflow's run steps, shell variables filled in."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    commands = []
    for step in workflow["jobs"]["plan"]["steps"]:
        for raw in step.get("run", "").splitlines():
            line = raw.strip()
            if line.startswith("homeostat ") and line != "homeostat --version":
                words = shlex.split(line.replace("$DESIRED_STATE", "./desired-state"))
                commands.append(words[1 : words.index(">")] if ">" in words else words[1:])
    return commands


def documented_example() -> dict[str, Any]:
    match = re.search(r"## Document\n\n```json\n(.*?)\n```", PLAN_DOC.read_text(), re.DOTALL)
    assert match is not None, "docs/plan-json.md lost its example document"
    example: dict[str, Any] = json.loads(match.group(1))
    return example


def shape(value: Any) -> Any:
    """The key structure of a JSON value (keys of objects, the shape of list items)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None


def test_the_workflow_validates_then_plans_as_json() -> None:
    """The recipe runs `validate` and `plan --json` on pull requests, and keeps the plan."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as True
    commands = workflow_commands()
    assert commands[0][0] == "validate"
    assert ["plan", "--desired-state", "./desired-state", "--json"] in commands
    uses = [step.get("uses", "") for step in workflow["jobs"]["plan"]["steps"]]
    assert any(u.startswith("actions/upload-artifact@") for u in uses)


@pytest.mark.parametrize("argv", workflow_commands(), ids=" ".join)
def test_every_workflow_command_is_accepted_by_the_cli(argv: list[str]) -> None:
    """Each homeostat command line of the recipe parses with today's options."""
    settings = parse_settings(argv, environ={})
    assert settings is not None
    assert settings.command == argv[0]


@pytest.mark.e2e
def test_plan_json_is_the_documented_document(moto_server: MotoServer, tmp_path: Path) -> None:
    """A drifted, a missing and a suspended service give the documented shape, counts and exit 2/1."""
    seed_ecs(moto_server)
    directory = tmp_path / "desired-state"
    write_atomically(directory / "api.yaml", service_manifest("api", 4))
    write_atomically(directory / "web.yaml", service_manifest("web", 1) + "  suspend: true\n")
    drift = run_cli("plan", "--desired-state", str(directory), "--json", env=moto_server.env())
    assert drift.returncode == 2, drift.stderr
    document = json.loads(drift.stdout)
    assert document["formatVersion"] == 1
    assert document["summary"] == {
        "resources": 2,
        "inSync": 0,
        "toChange": 1,
        "conflicts": 0,
        "errors": 0,
        "skipped": 1,
    }
    [api, web] = document["resources"]
    assert api["actions"] == [
        {
            "action": "update_service",
            "target": "shop-production/shop-production-api",
            "before": {"desiredCount": 1},
            "after": {"desiredCount": 4},
            "reason": "drift: desiredCount differs from the manifest",
            "conflict": None,
        }
    ]
    assert (web["state"], web["inSync"]) == ("Suspended", None)

    write_atomically(directory / "gone.yaml", service_manifest("gone", 1))
    error = run_cli("plan", "--desired-state", str(directory), "--json", env=moto_server.env())
    assert error.returncode == 1, error.stderr
    document = json.loads(error.stdout)
    example = documented_example()
    assert shape(document) == shape(example), "docs/plan-json.md no longer matches the output"
    assert [r["name"] for r in document["resources"]] == ["api", "gone", "web"]


@pytest.mark.e2e
def test_plan_of_an_in_sync_directory_exits_zero(moto_server: MotoServer, tmp_path: Path) -> None:
    """Nothing to change: exit 0 and `inSync: true`."""
    seed_ecs(moto_server)
    directory = tmp_path / "desired-state"
    write_atomically(directory / "api.yaml", service_manifest("api", 1))
    result = run_cli("plan", "--desired-state", str(directory), "--json", env=moto_server.env())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["inSync"] is True
