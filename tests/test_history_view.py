"""`history` for people and `plan --kind/--name` (issue 12 items 5 and 6), in process.

A TARGET column; columns fitted to the terminal (whole values with --wide or --json); --follow
streams new rows until Ctrl-C (130); --kind in any letter case, an unknown kind an error naming
the kinds; a negative --since a clear line. Values print one way in every view.
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from homeostat.operator import commands
from homeostat.operator.cli import EXIT_INTERRUPTED
from homeostat.operator.history import HistoryQuery, HistoryStore
from homeostat.operator.output import history_text
from homeostat.operator.records import ActionRecord
from homeostat.operator.values import change_text, value_text
from homeostat.reconcilers.actions import Outcome
from homeostat.reconcilers.registry import KINDS

from .conftest import REGION, run_main

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/omnirapeutic-production-api:41"


def record(name: str, target: str, *, minutes: int = 0, **extra: Any) -> ActionRecord:
    values: dict[str, Any] = {
        "time": NOW + timedelta(minutes=minutes),
        "kind": "AlarmActions",
        "name": name,
        "action": "enable_alarm_actions",
        "target": target,
        "outcome": Outcome.APPLIED,
        "before": {"actionsEnabled": False},
        "after": {"actionsEnabled": True},
        "reason": "drift",
        "error": None,
        "revision": "sha256:" + "ab" * 32,
        "dry_run": False,
    }
    values.update(extra)
    return ActionRecord(**values)


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = HistoryStore(url)
    store.add(
        [
            record("production-alarms", "prod-api-5xx-rate"),
            record("production-alarms", "prod-api-latency-p99", minutes=1),
            record(
                "api",
                "prod/api",
                minutes=2,
                kind="ECSService",
                action="update_service",
                before={"taskDefinition": ARN},
                after={"taskDefinition": "omnirapeutic-production-api:42"},
            ),
        ]
    )
    store.close()
    return url


def test_two_rows_of_one_resource_are_told_apart_by_their_target(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_main(capsys, "history", "--history", database, "--since", "1000d")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert "TARGET" in header
    assert any("prod-api-5xx-rate" in row for row in rows)
    assert any("prod-api-latency-p99" in row for row in rows)
    assert any("actionsEnabled: false -> true" in row for row in rows)  # JSON-style, as --json


def test_a_task_definition_is_family_revision_except_with_wide_or_json(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    short = run_main(capsys, "history", "--history", database, "--kind", "ecsservice")
    assert "taskDefinition: omnirapeutic-production-api:41 -> omnirapeutic-production-api:42" in short.stdout
    assert ARN not in short.stdout
    wide = run_main(capsys, "history", "--history", database, "--kind", "ECSSERVICE", "--wide")
    assert ARN in wide.stdout
    as_json = run_main(capsys, "history", "--history", database, "--kind", "ECSService", "--json")
    assert ARN in as_json.stdout


def test_rows_are_fitted_to_the_terminal_width(database: str) -> None:
    store = HistoryStore(database)
    records = store.query(HistoryQuery(limit=100))
    store.close()
    lines = history_text(records, width=100).splitlines()
    assert all(len(line) <= 100 for line in lines)
    assert any("TARGET" in line for line in lines)


def test_an_unknown_kind_is_an_error_naming_the_kinds(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_main(capsys, "history", "--history", database, "--kind", "Bogus")
    assert result.returncode == 1
    assert "unknown kind 'Bogus'" in result.stderr
    assert ", ".join([*(str(d.kind) for d in KINDS), "DesiredState"]) in result.stderr
    lower = run_main(capsys, "history", "--history", database, "--kind", "maintenancewindow")
    assert (lower.returncode, lower.stderr) == (0, "")


@pytest.mark.parametrize("argv", [("--since", "-1h"), ("--since=-1h",), ("--since", "-5")])
def test_a_negative_since_gets_a_clear_line(
    database: str, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    result = run_main(capsys, "history", "--history", database, *argv)
    assert result.returncode == 1
    assert "expected one argument" not in result.stderr
    assert "--since: a duration is positive" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_follow_prints_new_rows_as_they_are_written_and_ctrl_c_exits_130(
    database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    polls = []

    def poll(_seconds: float) -> None:
        """Each poll of --follow: a row is written on the first, Ctrl-C comes on the second."""
        polls.append(_seconds)
        if len(polls) == 1:
            store = HistoryStore(database)
            store.add([record("production-alarms", "prod-web-5xx-rate", minutes=3)])
            store.close()
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(commands.time, "sleep", poll)
    result = run_main(capsys, "history", "--history", database, "--follow")
    assert result.returncode == EXIT_INTERRUPTED
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert sum("TARGET" in line for line in lines) == 1  # one header, then rows as they come
    assert "prod-web-5xx-rate" in lines[-1]
    assert sum("prod-api-5xx-rate" in line for line in lines) == 1  # old rows are not repeated


def test_one_rendering_of_values() -> None:
    assert value_text(True) == "true"
    assert value_text(None) == "null"
    assert value_text(ARN) == "omnirapeutic-production-api:41"
    assert value_text(ARN, wide=True) == ARN
    assert change_text({"snapshot": "s-1"}, {"snapshot": None}) == "snapshot: s-1 deleted"


SERVICE = (
    "apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {{name: {n}}}\n"
    "spec: {{cluster: prod, service: {n}, desiredCount: {c}}}\n"
)


def test_plan_kind_and_name_show_only_the_matching_resources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "services.yaml").write_text(
        SERVICE.format(n="api", c=4) + "---\n" + SERVICE.format(n="web", c=3)
    )
    with mock_aws():
        ecs = boto3.client("ecs", region_name=REGION)
        ecs.create_cluster(clusterName="prod")
        for name in ("api", "web"):
            ecs.register_task_definition(
                family=name, containerDefinitions=[{"name": name, "image": "x", "memory": 64}]
            )
            ecs.create_service(cluster="prod", serviceName=name, taskDefinition=f"{name}:1", desiredCount=3)
        common = ("--desired-state", str(desired), "--region", REGION)
        only_api = run_main(capsys, "plan", *common, "--kind", "ecsservice", "--name", "api", "--json")
        only_web = run_main(capsys, "plan", *common, "--name", "web")
        nothing = run_main(capsys, "plan", *common, "--name", "nope")
    assert only_api.returncode == 2  # api drifted: 3 -> 4
    assert [r["name"] for r in json.loads(only_api.stdout)["resources"]] == ["api"]
    assert only_web.returncode == 0, only_web.stdout  # web is in sync; api's drift is not shown
    assert "1 resources: 1 in sync" in only_web.stdout
    assert nothing.returncode == 1
    assert "no resource matches --name nope" in nothing.stderr


def test_the_demo_hint_names_the_command_as_it_was_started(monkeypatch: pytest.MonkeyPatch) -> None:
    from homeostat.operator import demo

    monkeypatch.setattr(demo.shutil, "which", lambda _name: None)  # not on PATH
    assert demo.command_hint(".venv/bin/homeostat") == ".venv/bin/homeostat"
    monkeypatch.setattr(demo.shutil, "which", lambda _name: ".venv/bin/homeostat")
    assert demo.command_hint(".venv/bin/homeostat") == "homeostat"
    command_hint = demo.command_hint
    assert command_hint("/x/homeostat/__main__.py").endswith(" -m homeostat")


def test_history_is_coloured_on_a_terminal_only_and_never_under_no_color(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import re

    from rich.console import Console

    from homeostat.operator.output import history_table

    store = HistoryStore(database)
    records = store.query(HistoryQuery(limit=10))
    store.close()

    def printed(*, terminal: bool) -> str:
        out = io.StringIO()
        console = Console(
            file=out, width=200, force_terminal=terminal, color_system="standard" if terminal else None
        )
        console.print(history_table(records, wide=False))
        return out.getvalue()

    colour = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|9[0-7])m")
    assert colour.search(printed(terminal=True))
    assert "\x1b[" not in printed(terminal=False)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour.search(printed(terminal=True))
