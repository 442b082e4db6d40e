"""AWS clients, built once per process, counted and stoppable by botocore event hooks.

Retries use botocore's `adaptive` mode (client-side rate limiting on
throttling). Every call is counted into `aws_api_calls_total` from the
session's `after-call` events, so reconcilers never see the counter. Once the
process is stopping, a `before-call` hook refuses every further *read*
(`ShuttingDown`), so SIGTERM during a long observe stops between two AWS
calls instead of waiting for the whole observe; mutations are never refused
here: an action the executor has started is finished and recorded. The shared
API budget (`budget.py`) is taken before every request sent (`before-send`,
retries included) and told of every throttled attempt (`needs-retry`).
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from homeostat import __version__
from homeostat.operator.budget import ApiBudget

# Bounded retry time. Each kind runs on its own worker, so a slow service holds only its
# own kind; these bound how long it holds it. Three attempts in all: a throttled call backs off
# at most 1 s + 2 s (botocore: rand * 2**i s) before its error is that resource's error (the
# resource backs off and is retried); an unreachable endpoint costs at most 3 x 3 s to connect,
# a hung one 3 x 10 s to read.
RETRY_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 10
CallObserver = Callable[[str, str, str], None]
# Operations that only read: safe to abandon half-way through an observe.
READ_PREFIXES = ("Describe", "List", "Get")


def utc_timestamp(value: Any) -> datetime:
    """An AWS timestamp as an aware UTC datetime: the instant botocore's default parser gives.
    JSON protocols send epoch seconds, query/XML ones ISO 8601; anything else (RFC 822 in
    headers, a naive time) goes to botocore's parser, as before."""
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError):
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        from botocore.utils import parse_timestamp

        parsed = parse_timestamp(value)
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed


class ShuttingDown(Exception):
    """Raised by the `before-call` hook once the process is stopping.

    Deliberately not a BotoCoreError/ClientError: reconcilers turn those into
    per-resource errors, and a shutdown must not be recorded as a failure.
    """


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An explicit AWS endpoint and credentials (the demo's local AWS), instead of the boto3 chain."""

    url: str
    access_key: str
    secret_key: str


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
    """One boto3 client per service and region for the life of the process.

    `client(service)` gives the default region's (`--region`, else the boto3 chain);
    `in_region(name)` the client set of another region (contract section 2: one process
    reconciles several regions, one set of clients per region, built once). Every region's
    clients share the one session, the call counter, the stop hook and the one ApiBudget,
    whose buckets are per (service, region).
    """

    def __init__(
        self,
        region: str | None = None,
        on_call: CallObserver | None = None,
        *,
        stopping: Callable[[], bool] | None = None,
        endpoint: Endpoint | None = None,
        budget: ApiBudget | None = None,
    ) -> None:
        if endpoint is None:
            core = botocore.session.Session()
            credentials: dict[str, str] = {}
        else:
            # No profile from AWS_PROFILE either: an explicit endpoint is all this session knows.
            core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
            credentials = {
                "aws_access_key_id": endpoint.access_key,
                "aws_secret_access_key": endpoint.secret_key,
            }
        # Every client of the session parses timestamps with utc_timestamp (botocore's own
        # parser constructs a dateutil tzlocal per value: a third of the CPU of parsing a
        # 10,000-alarm listing). The documented hook the AWS CLI uses for its timestamp format.
        core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=utc_timestamp)
        self.session = boto3.Session(botocore_session=core, region_name=region, **credentials)
        self.config = Config(
            retries={"mode": "adaptive", "max_attempts": RETRY_ATTEMPTS},
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            user_agent_extra=f"homeostat/{__version__}",
        )
        self._endpoint_url = endpoint.url if endpoint is not None else None
        # Read once: boto3's `region_name` walks botocore's config chain on every read, and the
        # pass asks for it per resource and per client (about 0.1 s of a pass of 1,000 services).
        name = self.session.region_name
        self._region: str | None = str(name) if name else None
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._regions: dict[str, RegionClients] = {}
        self._lock = threading.Lock()
        self._on_call = on_call
        self._stopping = stopping
        self._budget = budget

    @property
    def region(self) -> str | None:
        return self._region

    def client(self, service: str) -> Any:
        return self.regional_client(service, self.region)

    def in_region(self, region: str) -> "RegionClients":
        """The clients of `region`, the same object every time (its clients are built once)."""
        with self._lock:
            if region not in self._regions:
                self._regions[region] = RegionClients(self, region)
            return self._regions[region]

    def regional_client(self, service: str, region: str | None) -> Any:
        """The one client of `service` in `region` (None: the session's default)."""
        with self._lock:
            key = (service, region)
            if key in self._clients:
                return self._clients[key]
            created = self.session.client(
                service, region_name=region, config=self.config, endpoint_url=self._endpoint_url
            )
            if self._stopping is not None:
                created.meta.events.register("before-call.*.*", self._before_call)
            if self._on_call is not None:
                created.meta.events.register("after-call.*.*", self._after_call)
                created.meta.events.register("after-call-error.*.*", self._after_call_error)
            if self._budget is not None:
                # The bucket of the region the client really speaks to (the session's default
                # when none was given), so a region's calls never spend another region's budget.
                spoken = str(created.meta.region_name) if created.meta.region_name else region
                created.meta.events.register("before-send.*.*", partial(self._before_send, service, spoken))
                created.meta.events.register("needs-retry.*.*", partial(self._needs_retry, service, spoken))
            self._clients[key] = created
            return created

    def _before_call(self, model: Any = None, **_: Any) -> None:
        if self._stopping is None or model is None or not self._stopping():
            return
        if str(model.name).startswith(READ_PREFIXES):
            raise ShuttingDown(f"shutting down before {model.service_model.service_name}:{model.name}")

    def _after_call(self, http_response: Any = None, parsed: Any = None, model: Any = None, **_: Any) -> None:
        if self._on_call is None or model is None:
            return
        status = getattr(http_response, "status_code", None)
        self._on_call(model.service_model.service_name, model.name, classify(parsed, status))

    def _after_call_error(self, model: Any = None, **_: Any) -> None:
        if self._on_call is not None and model is not None:
            self._on_call(model.service_model.service_name, model.name, "error")

    def _before_send(self, service: str, region: str | None, **_: Any) -> None:
        # Returns None: a value returned from before-send would replace the HTTP response.
        if self._budget is not None:
            self._budget.acquire(service, region)

    def _needs_retry(self, service: str, region: str | None, response: Any = None, **_: Any) -> None:
        # Returns None: a value returned from needs-retry would be taken as the retry delay.
        if self._budget is not None and isinstance(response, tuple) and len(response) == 2:
            http_response, parsed = response
            if classify(parsed, getattr(http_response, "status_code", None)) == "throttled":
                self._budget.throttled(service, region)


@dataclass(frozen=True, slots=True)
class RegionClients:
    """The AwsClients of one region, made by `BotoClients.in_region`: its clients are the
    process's (built once, counted, stoppable, paced by the one budget)."""

    parent: BotoClients
    region: str

    def client(self, service: str) -> Any:
        return self.parent.regional_client(service, self.region)

    def in_region(self, region: str) -> "RegionClients":
        return self.parent.in_region(region)
