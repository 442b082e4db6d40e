"""Shared fixtures: fake AWS credentials, moto (in-process and threaded server), call counting, tiers.

Every test runs with fake credentials and region, and never with a real
AWS endpoint: `AWS_ENDPOINT_URL` is removed unless a test points it at
moto's server on 127.0.0.1.

Two tiers (README, "Tests"): `make check` runs every test not marked `e2e`,
in-process and on both cores; `make test` adds the `e2e` ones. A test that
starts a server or a process other than git, sh or a `python -c` import check
must be marked `e2e`: the collection hook and the subprocess guard below fail
it otherwise, so the fast tier stays fast. Hypothesis runs the `check` profile (few examples) unless
HYPOTHESIS_PROFILE says `full` (what `make test` sets).
"""

import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import settings

settings.register_profile("check", max_examples=30, deadline=None)
settings.register_profile("full", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "check"))

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "desired-state"
REGION = "us-east-1"
# The fields contract section 5 requires of every `history --json` object.
HISTORY_JSON_FIELDS = frozenset(
    {"time", "kind", "name", "action", "outcome", "before", "after", "reason", "error", "revision", "dry_run"}
)


# Fixtures that start a server: only `e2e` tests may use them.
E2E_FIXTURES = frozenset({"moto_server", "_moto_server_session"})
# What a test outside `e2e` may start: git (homeostat reads the revision with it), sh scripts,
# `file` (croniter's import asks `platform.architecture()`, which runs `file` on the interpreter:
# the first cron expression a process checks imports croniter), and `python -c` for a fresh
# interpreter (import checks) as long as it does not run the CLI.
CHECK_TIER_PROGRAMS = frozenset({"git", "sh", "file"})


def _allowed_in_check_tier(argv: list[Any]) -> bool:
    if Path(str(argv[0])).name in CHECK_TIER_PROGRAMS:
        return True
    return (
        str(argv[0]) == sys.executable
        and len(argv) > 2
        and argv[1] == "-c"
        and "homeostat.operator.cli" not in str(argv[2])
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [
        item.nodeid
        for item in items
        if item.get_closest_marker("e2e") is None
        and E2E_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    ]
    if unmarked:
        raise pytest.UsageError("tests that use moto's server must be marked e2e: " + ", ".join(unmarked))


def _check_tier_popen(nodeid: str) -> type[subprocess.Popen[Any]]:
    real = subprocess.Popen

    class CheckTierPopen(real):  # type: ignore[valid-type,misc]  # a subclass of the Popen in use
        def __init__(self, args: Any, *rest: Any, **options: Any) -> None:
            argv = [args] if isinstance(args, str | os.PathLike) else list(args)
            if not _allowed_in_check_tier(argv):
                pytest.fail(
                    f"{nodeid} starts {argv[0]!r}: mark it e2e, or call "
                    "homeostat.operator.cli.main(argv) in-process",
                    pytrace=False,
                )
            super().__init__(args, *rest, **options)

    return CheckTierPopen


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Outside `e2e`, starting the CLI, Python, Prometheus or PostgreSQL fails the test at once,
    in its fixtures of any scope too."""
    if item.get_closest_marker("e2e") is not None:
        return (yield)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess, "Popen", _check_tier_popen(item.nodeid))
        return (yield)


@pytest.fixture(autouse=True)
def clean_logging() -> Iterator[None]:
    """Each test starts and ends with structlog's defaults (no logger bound to a closed stream)."""
    import structlog

    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("HOMEOSTAT_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MotoServer:
    """moto's threaded server on 127.0.0.1, reset before each test that uses it."""

    url: str
    server: Any

    def reset(self) -> None:
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=REGION)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a homeostat subprocess talking to this server only."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEOSTAT_")}
        env.update(
            AWS_ENDPOINT_URL=self.url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env


# Every AWS operation homeostat itself calls during the suite, as "service:Operation"
# (IAM prefix). Checked against deploy/iam-policy.json when the session ends.
OPERATIONS_CALLED: set[str] = set()
_IAM_PREFIX = {"monitoring": "cloudwatch"}


def record_operation(service: str, operation: str) -> None:
    OPERATIONS_CALLED.add(f"{_IAM_PREFIX.get(service, service)}:{operation}")


_PACKAGE = str(REPO / "homeostat")


def _called_from_homeostat() -> bool:
    """True when homeostat's own code (not a test seeding moto) made this call."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.startswith(_PACKAGE):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _record_homeostat_request(service: str, operation: str, user_agent: str) -> None:
    if "homeostat/" in user_agent:  # homeostat's clients say so (BotoClients user_agent_extra)
        record_operation(service, operation)


@pytest.fixture(scope="session")
def _moto_server_session() -> Iterator[MotoServer]:
    from homeostat.operator.local_aws import LocalAws

    server = LocalAws(on_request=_record_homeostat_request).start()
    try:
        yield MotoServer(server.url, server)
    finally:
        server.stop()


@pytest.fixture
def moto_server(_moto_server_session: MotoServer) -> MotoServer:
    _moto_server_session.reset()
    return _moto_server_session


# `python -c` program: the CLI with the operator's clock frozen at argv[1] (see run_cli's `now`).
_FROZEN_CLOCK_CLI = """\
import sys
from datetime import datetime

import homeostat.operator.clock as clock

instant = datetime.fromisoformat(sys.argv.pop(1))
clock.utc_now = lambda: instant  # before the CLI imports it: every from-import sees this one
from homeostat.operator.cli import main

raise SystemExit(main(sys.argv[1:]))
"""


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
    now: datetime | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real `homeostat` CLI as a subprocess (python -m homeostat).

    `now` freezes the operator's clock (`homeostat.operator.clock.utc_now`) at that
    instant, so a test can run a command before, during and after a window without
    sleeping until its edges and without racing them on a busy machine.
    """
    program = ["-m", "homeostat"] if now is None else ["-c", _FROZEN_CLOCK_CLI, now.isoformat()]
    return subprocess.run(
        [sys.executable, *program, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in-process, `main(argv)` with its output captured: run_cli for the check tier."""
    from homeostat.operator.cli import main

    capsys.readouterr()  # only what this command prints
    code = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


@dataclass
class CallLog:
    """AWS calls seen through botocore's before-parameter-build event: (service, operation, params)."""

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def hook(self, model: Any = None, params: Any = None, **_: Any) -> None:
        """before-parameter-build: `params` are the API parameters as the caller passed them,
        whatever the wire protocol (JSON, query or CBOR)."""
        self.calls.append((model.service_model.service_name, model.name, dict(params or {})))
        if _called_from_homeostat():
            record_operation(model.service_model.signing_name or model.service_model.service_name, model.name)

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-parameter-build.*.*", self.hook)
        return client

    def count(self) -> Counter[str]:
        return Counter(op for _, op, _ in self.calls)

    def of(self, operation: str) -> list[dict[str, Any]]:
        return [params for _, op, params in self.calls if op == operation]


class CountingClients:
    """An AwsClients for in-process tests (under mock_aws) that logs every call."""

    def __init__(self) -> None:
        import boto3

        self.log = CallLog()
        self._session = boto3.Session(region_name=REGION)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.log.attach(self._session.client(service))
        return self._clients[service]


@pytest.fixture
def counting_clients() -> CountingClients:
    return CountingClients()


def iam_policy_actions() -> set[str]:
    import json

    policy = json.loads((REPO / "deploy" / "iam-policy.json").read_text())
    actions: set[str] = set()
    for statement in policy["Statement"]:
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)
    return actions


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist: gather the operations each worker saw (see pytest_sessionfinish)."""
    OPERATIONS_CALLED.update(getattr(node, "workeroutput", {}).get("aws_operations", ()))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when homeostat called an AWS operation missing from deploy/iam-policy.json.

    Under pytest-xdist each worker hands its operations to the controller, which checks them all.
    """
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["aws_operations"] = sorted(OPERATIONS_CALLED)
        return
    if not OPERATIONS_CALLED:
        return
    missing = sorted(OPERATIONS_CALLED - iam_policy_actions())
    if missing:
        sys.stderr.write(
            "\nAWS operations called by homeostat but missing from deploy/iam-policy.json: "
            + ", ".join(missing)
            + "\n"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
