"""AWS clients, built once per process, counted by botocore event hooks.

Retries use botocore's `adaptive` mode (client-side rate limiting on
throttling). Every call is counted into `aws_api_calls_total` from the
session's `after-call` events, so reconcilers never see the counter.
"""

import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from homeostat import __version__

# Bounded retry time. Each kind runs on its own worker, so a slow service holds only its
# own kind; these bound how long it holds it. Three attempts in all: a throttled call backs off
# at most 1 s + 2 s (botocore: rand * 2**i s) before its error is that resource's error (the
# resource backs off and is retried); an unreachable endpoint costs at most 3 x 3 s to connect,
# a hung one 3 x 10 s to read.
RETRY_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 10
CallObserver = Callable[[str, str, str], None]


def classify(parsed: Any, status: int | None) -> str:
    """ok | throttled | error, from a parsed response."""
    error = parsed.get("Error") if isinstance(parsed, dict) else None
    if not error and (status is None or status < 400):
        return "ok"
    code = str((error or {}).get("Code", ""))
    if "Throttl" in code or code in {
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
    }:
        return "throttled"
    return "error"


class BotoClients:
    """One boto3 client per service for the life of the process."""

    def __init__(self, region: str | None = None, on_call: CallObserver | None = None) -> None:
        self.session = boto3.Session(region_name=region)
        self.config = Config(
            retries={"mode": "adaptive", "max_attempts": RETRY_ATTEMPTS},
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            user_agent_extra=f"homeostat/{__version__}",
        )
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._on_call = on_call

    @property
    def region(self) -> str | None:
        name = self.session.region_name
        return str(name) if name else None

    def client(self, service: str) -> Any:
        with self._lock:
            if service in self._clients:
                return self._clients[service]
            created = self.session.client(service, config=self.config)
            if self._on_call is not None:
                created.meta.events.register("after-call.*.*", self._after_call)
                created.meta.events.register("after-call-error.*.*", self._after_call_error)
            self._clients[service] = created
            return created

    def _after_call(self, http_response: Any = None, parsed: Any = None, model: Any = None, **_: Any) -> None:
        if self._on_call is None or model is None:
            return
        status = getattr(http_response, "status_code", None)
        self._on_call(model.service_model.service_name, model.name, classify(parsed, status))

    def _after_call_error(self, model: Any = None, **_: Any) -> None:
        if self._on_call is not None and model is not None:
            self._on_call(model.service_model.service_name, model.name, "error")
