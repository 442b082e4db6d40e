"""CLI hygiene (issue 12 item 7): each command lists, reads and checks only the options it uses;
help shows defaults and an example; shell completion comes from the parser (shtab)."""

import pytest

# croniter's first import runs `file` (platform.architecture): let it happen at collection, not
# inside a check-tier test, when this file runs alone.
import homeostat.desired_state.cron  # noqa: F401
from homeostat.operator.option_table import COMMAND_HELP, SHARED, USES
from homeostat.operator.options import build_parser, parse_settings

from .conftest import run_main


def help_of(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    """`homeostat COMMAND --help`, on a wide terminal (argparse wraps to COLUMNS)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "400")
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args([command, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", list(COMMAND_HELP))
def test_each_command_lists_only_the_shared_options_it_uses_with_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_of(command, capsys)
    for option in SHARED:
        assert (option.flags[0] in text) == (option.dest in USES[command]), option.flags[0]
    assert f"example:\n  homeostat {command}" in text


def test_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of("run", capsys)
    assert "(default: sqlite:///homeostat.db)" in text
    assert "(default: 127.0.0.1:9464)" in text
    assert "(default: 60)" in text


def test_an_option_a_command_does_not_use_is_never_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_settings(["schema"], {"HOMEOSTAT_LISTEN": "not an address", "HOMEOSTAT_RESYNC": "x"})
    result = run_main(capsys, "--listen", "bogus", "schema")
    assert result.returncode == 0, result.stderr
    assert '"$defs"' in result.stdout
    with pytest.raises(Exception, match="HOMEOSTAT_LISTEN"):
        parse_settings(["status"], {"HOMEOSTAT_LISTEN": "not an address"})


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o"), ("zsh", "#compdef homeostat")])
def test_completion_scripts_know_the_commands_and_their_options(
    shell: str, marker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_main(capsys, "completion", shell)
    assert result.returncode == 0, result.stderr
    assert marker in result.stdout
    for command in COMMAND_HELP:
        assert command in result.stdout
    assert "--follow" in result.stdout


def test_plan_without_a_region_says_so_once_on_stderr(
    tmp_path: "pytest.TempPathFactory", capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    desired = Path(str(tmp_path)) / "desired"
    desired.mkdir()
    (desired / "api.yaml").write_text(
        "apiVersion: homeostat/v1\nkind: ECSService\nmetadata: {name: api}\n"
        "spec: {cluster: prod, service: api, desiredCount: 2}\n"
    )
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    result = run_main(capsys, "plan", "--desired-state", str(desired))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "homeostat: error: no AWS region: pass --region or set AWS_DEFAULT_REGION"
    ]


def test_plan_warns_about_an_empty_desired_state(
    tmp_path: "pytest.TempPathFactory", capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    desired = Path(str(tmp_path)) / "empty"
    desired.mkdir()
    result = run_main(capsys, "plan", "--desired-state", str(desired), "--region", "us-east-1")
    assert "warning: no manifests in" in result.stderr
    assert result.returncode == 0, result.stderr
