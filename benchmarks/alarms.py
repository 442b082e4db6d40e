"""Alarm benchmark: 10,000 alarms under one prefix, 2,000 of them to flip.

Three `run --once` passes against moto's server, then the daemon at a window's edges:

1. drift: AlarmActions `bench-prod-` enabled; 2,000 alarms disabled by hand;
   a weekly window (not active) selects the 2,000 `bench-prod-db-` alarms;
2. window: a one-off window active now silences the 2,000 `bench-prod-db-` alarms;
3. in sync: the same state again, nothing to do;
4. daemon (resync 600 s, so only timed passes act): a one-off window a few
   seconds ahead, 5 s long: the measured delay from its start until all 2,000
   are disabled, and from its end until all are enabled again.

Prints the pass wall time, the process's wall and CPU time and peak RSS
(homeostat alone, as a child process; moto runs in this one), and AWS calls per
operation against the floor of contract section 6 (100 alarms per DescribeAlarms
page per selector, 100 names per Enable/DisableAlarmActions). moto answers
DescribeAlarms in one page whatever MaxRecords says, so the listing count here
is one call per minimal prefix; against AWS it is the `AWS floor` printed beside
it. The alarms are seeded straight into moto's in-process backend.

    .venv/bin/python -m benchmarks.alarms
"""

import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from benchmarks.common import REGION, CountingAws, report_calls, run_once

ALARMS = 10_000
FLIP = 2_000
PREFIX = "bench-prod-"
DB_PREFIX = "bench-prod-db-"
ACCOUNT = "123456789012"  # moto's default account


def backend() -> Any:
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends[ACCOUNT][REGION]


def seed() -> None:
    cloudwatch = backend()
    for i in range(ALARMS):
        name = f"{DB_PREFIX}{i:05d}" if i < FLIP else f"{PREFIX}api-{i:05d}"
        cloudwatch.put_metric_alarm(
            name=name,
            namespace="AWS/ECS",
            metric_name="CPUUtilization",
            comparison_operator="GreaterThanThreshold",
            evaluation_periods=1,
            period=60,
            threshold=80.0,
            statistic="Average",
            description="",
            dimensions=[],
            alarm_actions=[],
        )


def set_enabled(prefix: str, enabled: bool) -> None:
    for alarm in backend().alarms.values():
        if alarm.name.startswith(prefix):
            alarm.actions_enabled = enabled


def enabled_count(prefix: str) -> int:
    return sum(1 for a in list(backend().alarms.values()) if a.name.startswith(prefix) and a.actions_enabled)


def stamp(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def write(desired: Path, window: str) -> None:
    (desired / "alarms.yaml").write_text(
        "apiVersion: homeostat/v1\nkind: AlarmActions\nmetadata: {name: production}\n"
        f"spec: {{alarmNamePrefix: {PREFIX}, actionsEnabled: true}}\n"
    )
    (desired / "window.yaml").write_text(
        "apiVersion: homeostat/v1\nkind: MaintenanceWindow\nmetadata: {name: db-maintenance}\n"
        f"spec:\n{window}  silenceAlarms:\n    - alarmNamePrefix: {DB_PREFIX}\n"
    )


def one_off(start: datetime, end: datetime) -> str:
    return f'  start: "{stamp(start)}"\n  end: "{stamp(end)}"\n'


def passes(aws: CountingAws, desired: Path) -> None:
    pages = ALARMS // 100
    batches = FLIP // 100
    scenarios = [
        (
            f"drift: {FLIP} disabled by hand, no window active",
            lambda: (
                set_enabled(DB_PREFIX, False),
                write(desired, '  schedule: "0 2 * * SUN"\n  duration: 4h\n'),
            ),
            {"DescribeAlarms": 1, "EnableAlarmActions": batches},
        ),
        (
            f"window active: {FLIP} to silence",
            lambda: write(
                desired,
                one_off(datetime.now(UTC) - timedelta(minutes=1), datetime.now(UTC) + timedelta(hours=1)),
            ),
            {"DescribeAlarms": 1, "DisableAlarmActions": batches},
        ),
        ("in sync: nothing to do", lambda: None, {"DescribeAlarms": 1}),
    ]
    for label, prepare, floor in scenarios:
        prepare()
        figures = run_once(aws, desired)
        print(f"  {label}:")
        print(
            f"    pass {figures.pass_seconds:.2f}s; process {figures.process_seconds:.2f}s wall, "
            f"{figures.cpu_seconds:.2f}s CPU, peak RSS {figures.peak_rss_mb:.0f} MB"
        )
        report_calls(figures.calls, floor)
        print(f"    (DescribeAlarms against AWS at 100 per page: {pages}; moto answers in one page)")


def wait(condition: Any, timeout: float) -> datetime | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return datetime.now(UTC)
        time.sleep(0.02)
    return None


def daemon_edges(aws: CountingAws, desired: Path, lead: float = 25.0, length: float = 5.0) -> None:
    set_enabled(PREFIX, True)
    start = (datetime.now(UTC) + timedelta(seconds=lead)).replace(microsecond=0)
    end = start + timedelta(seconds=length)
    write(desired, one_off(start, end))
    workdir = Path(tempfile.mkdtemp(prefix="homeostat-bench-daemon-"))
    port = 19464 + os.getpid() % 1000
    env = dict(
        os.environ,
        AWS_ENDPOINT_URL=aws.url,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
    )
    log = (workdir / "daemon.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "homeostat", "run",
            "--desired-state", str(desired),
            "--history", f"sqlite:///{workdir / 'history.db'}",
            "--listen", f"127.0.0.1:{port}",
            "--resync", "600",
            "--log-format", "json",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    try:
        ready = wait(lambda: _ready(port), timeout=lead + 30)
        print(f"  daemon (resync 600 s), window {stamp(start)} .. {stamp(end)}:")
        if ready is None or ready >= start:
            print(f"    daemon was not ready before the window started (ready {ready}); no edge figures")
            return
        silenced = wait(lambda: enabled_count(DB_PREFIX) == 0, timeout=lead + length + 30)
        enabled = wait(lambda: enabled_count(DB_PREFIX) == FLIP, timeout=length + 60)
        for what, edge, seen in (
            ("start -> all disabled", start, silenced),
            ("end -> all enabled", end, enabled),
        ):
            figure = "not seen" if seen is None else f"{(seen - edge).total_seconds():.2f}s"
            print(f"    {what:24s} {figure}")
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def _ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def main() -> None:
    aws = CountingAws()
    try:
        desired = Path(tempfile.mkdtemp(prefix="homeostat-bench-alarms-"))
        seeded = time.monotonic()
        seed()
        print(
            f"Alarms: {ALARMS} under {PREFIX!r}, {FLIP} to flip (seeded in {time.monotonic() - seeded:.1f}s)"
        )
        passes(aws, desired)
        daemon_edges(aws, desired)
    finally:
        aws.stop()


if __name__ == "__main__":
    main()
