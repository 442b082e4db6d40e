"""Specification of the command line: options from the environment, and bad input.

Every option reads `HOMEOSTAT_<OPTION>`; the command line beats the
environment, which beats the default. Any bad input ends in one line on
stderr and a non-zero exit, never a traceback; `run --once` acts on nothing
when any manifest is invalid.
"""

import json
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from homeostat.desired_state.selector import EVERYTHING, Selector
from homeostat.operator.cli import main
from homeostat.operator.option_table import PER_COMMAND, SHARED
from homeostat.operator.options import UsageError, parse_settings

from .conftest import EXAMPLES, REGION, run_main

SERVICE = """\
apiVersion: homeostat/v1
kind: ECSService
metadata:
  name: {name}
spec:
  cluster: prod
  service: {name}
  desiredCount: {count}
"""


# --- options and the environment ---------------------------------------------------------------

ENV_CASES: list[tuple[str, str, str, str, Any]] = [
    ("plan", "HOMEOSTAT_DESIRED_STATE", "/srv/state", "desired_state", Path("/srv/state")),
    ("history", "HOMEOSTAT_HISTORY", "sqlite:////var/h.db", "history", "sqlite:////var/h.db"),
    ("run", "HOMEOSTAT_LISTEN", "0.0.0.0:9000", "listen", "0.0.0.0:9000"),
    ("run", "HOMEOSTAT_RESYNC", "30", "resync", 30),
    ("run", "HOMEOSTAT_DRY_RUN", "true", "dry_run", True),
    ("run", "HOMEOSTAT_DRY_RUN", "0", "dry_run", False),
    ("plan", "HOMEOSTAT_REGION", "eu-west-1", "region", "eu-west-1"),
    ("plan", "HOMEOSTAT_LOG_FORMAT", "json", "log_format", "json"),
    ("run", "HOMEOSTAT_ONCE", "1", "once", True),
    ("run", "HOMEOSTAT_CONCURRENCY", "2", "concurrency", 2),
    (
        "run",
        "HOMEOSTAT_API_RATE",
        "rds=1000",
        "api_rate",
        {"rds": 1000, "ecs": 20, "cloudwatch": 3, "application-autoscaling": 10},
    ),
    ("plan", "HOMEOSTAT_JSON", "yes", "json", True),
    ("history", "HOMEOSTAT_SINCE", "24h", "since", timedelta(hours=24)),
    ("history", "HOMEOSTAT_KIND", "ECSService", "kind", "ECSService"),
    ("history", "HOMEOSTAT_NAME", "api", "name", "api"),
    ("history", "HOMEOSTAT_REVISION", "abc", "revision", "abc"),
    ("history", "HOMEOSTAT_LIMIT", "5", "limit", 5),
    ("history", "HOMEOSTAT_JSON", "on", "json", True),
    ("history", "HOMEOSTAT_FOLLOW", "1", "follow", True),
    ("history", "HOMEOSTAT_KIND", "snapshotretention", "kind", "SnapshotRetention"),
    ("status", "HOMEOSTAT_WATCH", "2", "watch", 2),
    ("run", "HOMEOSTAT_FIGHT_THRESHOLD", "5", "fight_threshold", 5),
    ("run", "HOMEOSTAT_FIGHT_WINDOW", "30m", "fight_window", timedelta(minutes=30)),
    ("status", "HOMEOSTAT_WIDE", "true", "wide", True),
    (
        "run",
        "HOMEOSTAT_SELECTOR",
        " team = a ,env=prod",
        "selector",
        Selector((("env", "prod"), ("team", "a"))),
    ),
    ("plan", "HOMEOSTAT_SELECTOR", "team=a", "selector", Selector((("team", "a"),))),
    ("history", "HOMEOSTAT_SELECTOR", "", "selector", EVERYTHING),
]


@pytest.mark.parametrize(("command", "variable", "raw", "attribute", "value"), ENV_CASES)
def test_options_are_read_from_the_environment(
    command: str, variable: str, raw: str, attribute: str, value: Any
) -> None:
    """Each option takes its value from HOMEOSTAT_<OPTION> when not on the command line."""
    settings = parse_settings([command], {variable: raw})
    assert settings is not None
    assert getattr(settings, attribute) == value


def test_every_option_has_an_environment_variable() -> None:
    """Every option of every command is named HOMEOSTAT_<OPTION> in the environment and in --help."""
    for option in (*SHARED, *(o for options in PER_COMMAND.values() for o in options)):
        assert option.env == "HOMEOSTAT_" + option.flags[0].removeprefix("--").replace("-", "_").upper()
    every_env = {o.env for o in SHARED} | {o.env for opts in PER_COMMAND.values() for o in opts}
    assert {case[1] for case in ENV_CASES} == every_env - {"HOMEOSTAT_DURATION"}


def test_defaults_follow_the_contract() -> None:
    """Without flags or environment, the defaults are those of contract section 3."""
    settings = parse_settings(["run"], {})
    assert settings is not None
    assert settings.desired_state == Path("desired-state")
    assert settings.history == "sqlite:///homeostat.db"
    assert settings.listen == "127.0.0.1:9464"
    assert settings.resync == 60
    assert settings.dry_run is False
    assert settings.once is False
    assert settings.fight_threshold == 3
    assert settings.fight_window == timedelta(hours=1)


def test_command_line_beats_environment_beats_default() -> None:
    """A flag overrides the environment variable, which overrides the default."""
    env = {"HOMEOSTAT_RESYNC": "30", "HOMEOSTAT_HISTORY": "sqlite:///env.db"}
    settings = parse_settings(["run", "--resync", "5"], env)
    assert settings is not None
    assert settings.resync == 5
    assert settings.history == "sqlite:///env.db"
    assert settings.listen == "127.0.0.1:9464"


def test_shared_options_work_before_and_after_the_command() -> None:
    """Shared options may precede the command or follow it."""
    before = parse_settings(["--history", "sqlite:///a.db", "history"], {})
    after = parse_settings(["history", "--history", "sqlite:///a.db"], {})
    assert before is not None
    assert after is not None
    assert before.history == after.history == "sqlite:///a.db"


def test_validate_path_argument_overrides_desired_state() -> None:
    """`validate PATH` checks PATH rather than --desired-state."""
    settings = parse_settings(["validate", "elsewhere"], {"HOMEOSTAT_DESIRED_STATE": "/srv/state"})
    assert settings is not None
    assert settings.paths == (Path("elsewhere"),)


@pytest.mark.parametrize(
    ("argv", "env", "needle"),
    [
        (["run", "--bogus"], {}, "--bogus"),
        (["run", "--resync", "soon"], {}, "--resync"),
        (["run", "--resync", "0"], {}, "--resync"),
        (["run"], {"HOMEOSTAT_RESYNC": "abc"}, "HOMEOSTAT_RESYNC"),
        (["run"], {"HOMEOSTAT_DRY_RUN": "maybe"}, "HOMEOSTAT_DRY_RUN"),
        (["run"], {"HOMEOSTAT_LISTEN": "nowhere"}, "HOMEOSTAT_LISTEN"),
        (["plan"], {"HOMEOSTAT_LOG_FORMAT": "xml"}, "HOMEOSTAT_LOG_FORMAT"),
        (["history", "--since", "yesterday"], {}, "--since"),
        (["history", "--limit", "-3"], {}, "--limit"),
        (["run", "--fight-threshold", "1"], {}, "--fight-threshold: must be from 2"),
        (["run"], {"HOMEOSTAT_FIGHT_WINDOW": "an hour"}, "HOMEOSTAT_FIGHT_WINDOW"),
        (["run", "--fight-window", "-1h"], {}, "--fight-window"),
        (["frobnicate"], {}, "frobnicate"),
        ([], {}, "missing command"),
    ],
)
def test_bad_options_are_usage_errors(argv: list[str], env: dict[str, str], needle: str) -> None:
    """Bad flags and bad environment values raise a UsageError naming the culprit."""
    with pytest.raises(UsageError) as info:
        parse_settings(argv, env)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


# --- bad input through the real CLI -------------------------------------------------------------


def assert_one_line_error(result: Any, *needles: str) -> None:
    assert result.returncode != 0
    assert result.returncode != 2, "a usage error must never look like drift"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize(
    ("args", "env", "needles"),
    [
        (("plan", "--no-such-option"), {}, ("--no-such-option",)),
        (("run", "--once"), {"HOMEOSTAT_RESYNC": "abc"}, ("HOMEOSTAT_RESYNC", "abc")),
        (("history", "--history", "not a url"), {}, ("not a url",)),
        (("history", "--history", "nosuchdb://h/d"), {}, ("nosuchdb://h/d",)),
        (("history", "--history", "sqlite:////nonexistent-dir/h.db"), {}, ("nonexistent-dir",)),
        (("validate", "no-such-dir"), {}, ("no-such-dir", "no such directory")),
        (("plan", "--desired-state", "no-such-dir"), {}, ("no-such-dir", "no such directory")),
        (("run", "--once", "--desired-state", "no-such-dir"), {}, ("no-such-dir",)),
    ],
)
def test_bad_input_is_one_line_on_stderr(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    env: dict[str, str],
    needles: tuple[str, ...],
) -> None:
    """Bad options, environment values, history URLs and directories print one line, exit non-zero."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    result = run_main(capsys, *args)
    assert_one_line_error(result, *needles)


def test_bad_history_url_in_the_environment_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad HOMEOSTAT_HISTORY is reported like a bad --history."""
    monkeypatch.setenv("HOMEOSTAT_HISTORY", "::bad::")
    monkeypatch.chdir(tmp_path)
    result = run_main(capsys, "history")
    assert_one_line_error(result, "::bad::")


def test_validate_prints_file_line_per_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`validate` prints `file:line: field: message` per error and exits 1."""
    (tmp_path / "svc.yaml").write_text(SERVICE.format(name="api", count=2) + "  replicas: 3\n")
    (tmp_path / "w.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: homeostat/v1
            kind: MaintenanceWindow
            metadata: {name: w}
            spec: {schedule: "0 2 * * 8", duration: 4h}
            """
        )
    )
    result = run_main(capsys, "validate", str(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"{tmp_path}/svc.yaml:9: spec.replicas: unknown field"
    assert lines[1].startswith(f"{tmp_path}/w.yaml:4: spec.schedule: invalid cron '0 2 * * 8'")
    assert len(lines) == 2


def test_validate_examples_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """The examples validate cleanly."""
    assert main(["validate", str(EXAMPLES)]) == 0
    assert "valid: 8 resources" in capsys.readouterr().out


def test_schema_prints_a_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """`schema` prints the JSON Schema of a manifest and exits 0."""
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "ECSService" in json.dumps(schema)


def test_version_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """`--version` prints the version."""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("homeostat ")


# --- run --once with an invalid manifest -----------------------------------------------------------


def test_run_once_acts_on_nothing_when_any_manifest_is_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One invalid manifest stops `run --once` before any AWS call: drifted valid services stay drifted,
    no history is written, and the error is reported with file:line."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "good.yaml").write_text(SERVICE.format(name="api", count=5))
    (state / "bad.yaml").write_text(SERVICE.format(name="web", count=2).replace("desiredCount", "desired"))
    history = tmp_path / "history.db"
    with mock_aws():
        ecs = boto3.client("ecs", region_name=REGION)
        ecs.create_cluster(clusterName="prod")
        ecs.register_task_definition(
            family="api", containerDefinitions=[{"name": "a", "image": "nginx", "memory": 64}]
        )
        ecs.create_service(cluster="prod", serviceName="api", taskDefinition="api:1", desiredCount=1)
        code = main(["run", "--once", "--desired-state", str(state), "--history", f"sqlite:///{history}"])
        count = ecs.describe_services(cluster="prod", services=["api"])["services"][0]["desiredCount"]
    assert code == 1
    assert count == 1
    assert not history.exists()
    err = capsys.readouterr().err
    assert f"{state}/bad.yaml:8: spec.desired: unknown field" in err
    assert "Traceback" not in err


def test_plan_also_refuses_an_invalid_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`plan` on an invalid directory exits 1 (not 2: invalid is not drift) without contacting AWS."""
    (tmp_path / "bad.yaml").write_text("apiVersion: homeostat/v1\nkind: Nope\n")
    assert main(["plan", "--desired-state", str(tmp_path), "--region", "us-east-1"]) == 1
    assert "bad.yaml:2: kind: unknown kind 'Nope'" in capsys.readouterr().err


def test_error_paths_are_joined_to_the_directory_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Errors print the path as the user named the directory, even when a file name starts like it."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "svc.yaml").write_text("apiVersion: homeostat/v1\nkind: Nope\n")
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "s"]) == 1
    assert main(["validate", "./s/"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == ["s/svc.yaml:2", "s/svc.yaml:2"]
