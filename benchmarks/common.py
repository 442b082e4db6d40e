"""Shared benchmark plumbing: a local AWS that counts homeostat's calls, and a measured `run --once`."""

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from homeostat.operator.local_aws import LocalAws

REGION = "us-east-1"


def compile_bytecode() -> None:
    """Write homeostat's .pyc files, as `pip install` does for an installed package. A checkout
    run with PYTHONDONTWRITEBYTECODE=1 (set on the shared machine) would otherwise compile its
    sources in every child process, and the benchmarks would time the compiler: about 0.1 s of
    each process, which the installed libraries beside it (boto3, ...) never pay."""
    import compileall

    compileall.compile_dir(Path(__file__).resolve().parent.parent / "homeostat", quiet=1)


def page_alarms_like_aws() -> None:
    """Make this process's moto page DescribeAlarms as AWS does (MaxRecords, at most 100, and
    NextToken). moto answers every alarm in one page whatever MaxRecords says, so a client of
    10,000 alarms parses one 10,000-alarm answer (about 25 MB at once), which AWS never sends:
    a memory benchmark would measure moto. A stand-in for AWS's paging, for benchmarks only."""
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    answer_all = CloudWatchResponse.describe_alarms

    def paged(self: Any) -> ActionResult:
        every: Any = answer_all(self).result
        alarms = sorted([*every["MetricAlarms"], *every["CompositeAlarms"]], key=lambda a: a.name)
        start = int(self._get_param("NextToken") or 0)
        size = min(int(self._get_param("MaxRecords") or 50), 100)
        page = alarms[start : start + size]
        result: dict[str, Any] = {
            "MetricAlarms": [a for a in page if a.rule is None],
            "CompositeAlarms": [a for a in page if a.rule is not None],
        }
        if start + size < len(alarms):
            result["NextToken"] = str(start + size)
        return ActionResult(result)

    CloudWatchResponse.describe_alarms = paged  # type: ignore[method-assign]


class CountingAws:
    """moto's server on 127.0.0.1 counting the requests homeostat makes (by its user agent),
    and those of the floor scripts (`floor/`); `wrap` puts a middleware in front of moto."""

    def __init__(self, wrap: Callable[[Any], Any] | None = None) -> None:
        compile_bytecode()
        self.calls: Counter[str] = Counter()
        self.server = LocalAws(on_request=self._hook, middleware=wrap).start()
        self.url = self.server.url

    def _hook(self, service: str, operation: str, user_agent: str) -> None:
        if "homeostat/" in user_agent or "floor/" in user_agent:
            self.calls[operation] += 1

    def env(self) -> dict[str, str]:
        """The environment of a child process talking to this server only."""
        return dict(
            os.environ,
            AWS_ENDPOINT_URL=self.url,
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION=REGION,
        )

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )

    def stop(self) -> None:
        self.server.stop()


@dataclass
class PassFigures:
    pass_seconds: float
    process_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    calls: Counter[str]
    output: str


def migrated_history(path: Path) -> Path:
    """A history database at `path` already at the newest migration, as every run but the very
    first of a deployment finds it (a process then skips Alembic: see history.HEAD_REVISION)."""
    from homeostat.operator.history import HistoryStore

    HistoryStore(f"sqlite:///{path}").close()
    return path


def run_once(aws: CountingAws, desired: Path, *extra: str, history: Path | None = None) -> PassFigures:
    """`homeostat run --once` as a child process: its own CPU time and peak RSS, not moto's.
    Without `history`, on a new database (the process creates and migrates it)."""
    aws.calls.clear()
    if history is None:
        history = Path(tempfile.mkdtemp(prefix="homeostat-bench-")) / "history.db"
    env = aws.env()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.child",
            "run",
            "--once",
            "--desired-state",
            str(desired),
            "--history",
            f"sqlite:///{history}",
            "--log-format",
            "json",
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    match = re.search(r"actions in ([0-9.]+)s", result.stdout)
    rss = re.search(r"peak-rss-kb ([0-9]+)", result.stderr)
    if match is None or rss is None:
        raise SystemExit(
            f"run --once failed ({result.returncode}):\n{result.stdout}\n{result.stderr[-3000:]}"
        )
    return PassFigures(
        pass_seconds=float(match.group(1)),
        process_seconds=elapsed,
        cpu_seconds=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        peak_rss_mb=int(rss.group(1)) / 1024,
        calls=Counter(aws.calls),
        output=result.stdout,
    )


def report_calls(calls: Counter[str], floor: dict[str, int]) -> None:
    for operation in sorted(set(calls) | set(floor)):
        target = floor.get(operation)
        verdict = (
            "" if target is None else ("  = floor" if calls[operation] == target else f"  (floor {target})")
        )
        print(f"    {operation:32s} {calls[operation]:6d}{verdict}")
