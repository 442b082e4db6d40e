"""Alarm actions and maintenance windows end to end: the real CLI and daemon against moto's server.

`run --once` runs with its clock frozen before, during and after a window an
hour ahead (run_cli's `now`), so nothing races the window's edges. The daemon
runs on the real clock: its windows start far enough ahead for it to be ready
first on a busy machine, and when it acted is read from its own history rows
(when it called AWS), not from when the test happened to notice. Deadlines
asserted here are correctness bounds ("re-enabled after the window ended");
the measured delays are printed by `benchmarks/alarms.py`.
"""

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.alarm_helpers import actions_enabled, alarm_actions_yaml, one_off_window_yaml, put_alarms
from tests.conftest import MotoServer, run_cli
from tests.daemon_helpers import DaemonProcess, wait_for

pytestmark = pytest.mark.e2e

ALARMS = [f"prod-api-{i}" for i in range(5)] + ["prod-db-cpu", "prod-web-5xx"]
OTHER = "staging-api-0"


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.kill()


def now() -> datetime:
    return datetime.now(UTC)


def sleep_until(instant: datetime) -> None:
    time.sleep(max(0.0, (instant - now()).total_seconds()))


def setup(
    moto: MotoServer, tmp_path: Path, lead: float, length: float
) -> tuple[Any, datetime, datetime, Path]:
    """Seed alarms and write AlarmActions prod- (enabled) plus a window `lead` s ahead, `length` s long."""
    cloudwatch = moto.client("cloudwatch")
    put_alarms(cloudwatch, ALARMS)
    put_alarms(cloudwatch, [OTHER], enabled=False)
    start = (now() + timedelta(seconds=lead)).replace(microsecond=0)
    end = start + timedelta(seconds=length)
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "alarms.yaml").write_text(alarm_actions_yaml("production-alarms", "alarmNamePrefix: prod-"))
    (desired / "window.yaml").write_text(
        one_off_window_yaml("deploy-freeze", start, end, "alarmNamePrefix: prod-")
    )
    return cloudwatch, start, end, desired


def states(cloudwatch: Any) -> set[bool]:
    return set(actions_enabled(cloudwatch, "prod-").values())


def history(moto: MotoServer, db: str) -> list[dict[str, Any]]:
    result = run_cli("history", "--json", "--history", db, "--limit", "1000", env=moto.env())
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_run_once_before_during_and_after_a_window(moto_server: MotoServer, tmp_path: Path) -> None:
    """`run --once` leaves alarms on before a window, silences them during it and re-enables them after."""
    cloudwatch, start, end, desired = setup(moto_server, tmp_path, lead=3600, length=600)
    db = f"sqlite:///{tmp_path / 'history.db'}"
    args = ("run", "--once", "--desired-state", str(desired), "--history", db)

    before = run_cli(*args, env=moto_server.env(), now=start - timedelta(seconds=6))
    assert before.returncode == 0, before.stderr
    assert states(cloudwatch) == {True}

    during = run_cli(*args, env=moto_server.env(), now=start + timedelta(seconds=0.3))
    assert during.returncode == 0, during.stderr
    assert states(cloudwatch) == {False}

    after = run_cli(*args, env=moto_server.env(), now=end + timedelta(seconds=0.3))
    assert after.returncode == 0, after.stderr
    assert states(cloudwatch) == {True}
    assert actions_enabled(cloudwatch, "staging-") == {OTHER: False}

    rows = history(moto_server, db)
    reasons = {(r["kind"], r["name"], r["action"], r["reason"], r["outcome"]) for r in rows}
    assert reasons == {
        (
            "MaintenanceWindow",
            "deploy-freeze",
            "disable_alarm_actions",
            "maintenance window deploy-freeze started",
            "applied",
        ),
        (
            "AlarmActions",
            "production-alarms",
            "enable_alarm_actions",
            "maintenance window deploy-freeze ended",
            "applied",
        ),
    }
    assert len(rows) == 2 * len(ALARMS)


def test_plan_lists_the_window_edges_and_the_alarms_it_would_silence(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    """`plan --json` shows the window's next start and end and the alarms it would silence."""
    _, start, end, desired = setup(moto_server, tmp_path, lead=3600, length=600)
    result = run_cli("plan", "--json", "--desired-state", str(desired), env=moto_server.env())
    assert result.returncode == 0, result.stderr
    [window] = [r for r in json.loads(result.stdout)["resources"] if r["kind"] == "MaintenanceWindow"]
    stamp = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731 - a local formatter
    assert window["notes"] == [
        f"next start {stamp(start)}, end {stamp(end)}",
        f"would silence {len(ALARMS)} alarm(s): " + ", ".join(sorted(ALARMS)),
    ]


def start_daemon(
    daemons: list[DaemonProcess], moto: MotoServer, tmp_path: Path, desired: Path
) -> DaemonProcess:
    # A resync far longer than the test: every pass after the first comes from a window edge.
    daemon = DaemonProcess(
        moto, desired, f"sqlite:///{tmp_path / 'history.db'}", "--resync", "600", log_dir=tmp_path
    )
    daemons.append(daemon)
    return daemon


def acted_at(rows: list[dict[str, Any]], action: str) -> list[datetime]:
    """When the daemon recorded each applied `action` (its own clock, right after the AWS call)."""
    return [
        datetime.fromisoformat(r["time"].replace("Z", "+00:00"))
        for r in rows
        if r["action"] == action and r["outcome"] == "applied"
    ]


def test_daemon_silences_at_the_start_and_re_enables_at_the_end_of_a_window(
    moto_server: MotoServer, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """With resync far away, timed passes at the window's edges disable and then re-enable the alarms."""
    # 20 s ahead: the daemon is ready (startup pass done, edges scheduled) before the window starts.
    cloudwatch, start, end, desired = setup(moto_server, tmp_path, lead=20, length=10)
    daemon = start_daemon(daemons, moto_server, tmp_path, desired)
    daemon.wait_ready()
    assert now() < start
    assert states(cloudwatch) == {True}

    wait_for(lambda: states(cloudwatch) == {False}, timeout=60, what="alarms silenced")
    wait_for(lambda: states(cloudwatch) == {True}, timeout=60, what="alarms re-enabled")
    assert daemon.get("/metrics").status_code == 200
    metrics = daemon.get("/metrics").text
    assert 'homeostat_maintenance_window_active{name="deploy-freeze"} 0.0' in metrics
    assert 'homeostat_alarms_managed{state="enabled"} 7.0' in metrics
    assert daemon.terminate() == 0

    rows = history(moto_server, f"sqlite:///{tmp_path / 'history.db'}")
    silenced = acted_at(rows, "disable_alarm_actions")
    re_enabled = acted_at(rows, "enable_alarm_actions")
    assert len(silenced) == len(re_enabled) == len(ALARMS)
    assert all(start <= t < end for t in silenced)
    # The edge pass is requested within 1 s of the end; allow for a slow, shared machine.
    assert all(end <= t and t - end < timedelta(seconds=8) for t in re_enabled)


def test_daemon_killed_during_a_window_re_enables_on_its_first_pass_after_restart(
    moto_server: MotoServer, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    """SIGKILL during the window, restart after it: the first pass re-enables the alarms."""
    cloudwatch, _, _, desired = setup(moto_server, tmp_path, lead=3600, length=600)
    first = start_daemon(daemons, moto_server, tmp_path, desired)
    first.wait_ready()
    # Ready first, then a window that has begun: the reload pass silences, whatever startup took.
    start = now().replace(microsecond=0) - timedelta(seconds=1)
    end = now() + timedelta(seconds=15)
    (desired / "window.yaml").write_text(
        one_off_window_yaml("deploy-freeze", start, end, "alarmNamePrefix: prod-")
    )
    wait_for(lambda: states(cloudwatch) == {False}, timeout=60, what="alarms silenced")
    first.kill()
    assert now() < end, "killed before the window ended (else the first daemon re-enabled)"

    sleep_until(end + timedelta(seconds=0.5))
    assert states(cloudwatch) == {False}
    second = start_daemon(daemons, moto_server, tmp_path, desired)
    second.wait_ready()
    assert states(cloudwatch) == {True}
    assert second.terminate() == 0
    rows = history(moto_server, f"sqlite:///{tmp_path / 'history.db'}")
    ended = [r for r in rows if r["reason"] == "maintenance window deploy-freeze ended"]
    assert {r["outcome"] for r in ended} == {"applied"}
    assert len(ended) == len(ALARMS)
