"""Shared fixtures: fake AWS credentials, moto (in-process and threaded server), call counting.

Every test runs with fake credentials and region, and never with a real
AWS endpoint: `AWS_ENDPOINT_URL` is removed unless a test points it at
moto's server on 127.0.0.1.
"""

import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "desired-state"
REGION = "us-east-1"
# The fields contract section 5 requires of every `history --json` object.
HISTORY_JSON_FIELDS = frozenset(
    {"time", "kind", "name", "action", "outcome", "before", "after", "reason", "error", "revision", "dry_run"}
)


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


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real `homeostat` CLI as a subprocess (python -m homeostat)."""
    return subprocess.run(
        [sys.executable, "-m", "homeostat", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when homeostat called an AWS operation missing from deploy/iam-policy.json."""
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
