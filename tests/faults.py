"""A fault-injecting WSGI middleware in front of moto's threaded server (127.0.0.1 only).

Why at the server: the process under test is the real CLI, so faults have to
come over the wire, as AWS would send them, for botocore's retries, the
reconcilers' fail-closed listings and the journal to be tested as they run.

Per (service, operation) a `Rule` throttles (the service's own error code and
status, in the protocol the request used), answers 5xx, resets the connection
before moto sees the request, loses the answer after moto executed it, holds a
request (before or after moto executed it) until a test releases it or the
hold times out, for the first K matching calls, every Nth, or always. Listings
moto does not page (it ignores MaxRecords/maxResults) are paged here: moto is
asked for everything, the requested page is cut out and carries this
middleware's own NextToken/Marker, and a rule can fail page N alone.

Every signed request is counted and recorded with its parameters (query and
JSON protocols; CBOR bodies are not decoded) so that tests can check what AWS
saw, e.g. which snapshot identifiers were deleted.
"""

import io
import json
import socket
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from homeostat.operator.local_aws import LocalAws, request_operation
from tests.conftest import MotoServer, record_operation

Operation = tuple[str, str]  # (service as signed, e.g. "monitoring"; operation, e.g. "DescribeAlarms")
Answer = tuple[str, list[tuple[str, str]], bytes]  # status line, headers, body


class Fault(StrEnum):
    THROTTLE = "throttle"
    SERVER_ERROR = "server_error"
    RESET = "reset"  # the connection is closed before moto sees the request
    LOSE_ANSWER = "lose_answer"  # moto executes the request, then the connection is closed
    HOLD = "hold"  # held before moto sees it (a SIGKILL can be timed inside the call)
    HOLD_AFTER = "hold_after"  # moto executed it; the answer is held


class Protocol(StrEnum):
    QUERY = "query"
    JSON = "json"
    CBOR = "cbor"


@dataclass(frozen=True, slots=True)
class Rule:
    """When `fault` applies to the calls of one operation: the first `first` matching calls, every
    `every`th, or (neither given) always. With `page`, only requests for that page (1 = the first) of
    a listing this middleware pages match. A hold lasts `hold` seconds unless released earlier."""

    fault: Fault
    first: int | None = None
    every: int | None = None
    page: int | None = None
    hold: float = 30.0

    def applies(self, nth: int) -> bool:
        if self.first is not None:
            return nth <= self.first
        if self.every is not None:
            return nth % self.every == 0
        return True


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as the server received it."""

    service: str
    operation: str
    params: dict[str, Any]
    page: int | None
    fault: Fault | None


@dataclass(frozen=True, slots=True)
class Listing:
    """A listing moto answers whole: where its items, page size and continuation token live."""

    items: tuple[str, ...]
    size: str
    token: str


LISTINGS: dict[Operation, Listing] = {
    ("rds", "DescribeDBClusterSnapshots"): Listing(("DBClusterSnapshots",), "MaxRecords", "Marker"),
    ("monitoring", "DescribeAlarms"): Listing(("MetricAlarms", "CompositeAlarms"), "MaxRecords", "NextToken"),
    ("ecs", "ListServices"): Listing(("serviceArns",), "maxResults", "nextToken"),
    ("ecs", "ListTaskDefinitions"): Listing(("taskDefinitionArns",), "maxResults", "nextToken"),
}
# The service's own throttling and server-fault codes (botocore retries both).
THROTTLE_CODES = {"rds": "Throttling", "monitoring": "Throttling"}
SERVER_CODES = {"rds": "InternalFailure", "monitoring": "InternalServiceError", "ecs": "ServerException"}
TOKEN_PREFIX = "faults-page-"


@dataclass
class _Request:
    service: str
    operation: str
    protocol: Protocol
    params: dict[str, Any]
    environ: dict[str, Any]
    body: bytes

    @classmethod
    def of(cls, environ: dict[str, Any], body: bytes) -> "_Request":
        service, operation = request_operation(environ, body)
        content_type = environ.get("CONTENT_TYPE", "")
        params: dict[str, Any] = {}
        if "cbor" in content_type or "/operation/" in environ.get("PATH_INFO", ""):
            protocol = Protocol.CBOR
        elif environ.get("HTTP_X_AMZ_TARGET"):
            protocol = Protocol.JSON
            with suppress(ValueError):  # a body cut short by a killed client is recorded without params
                params = json.loads(body or b"{}")
        else:
            protocol = Protocol.QUERY
            params = dict(parse_qsl(body.decode("utf-8", "replace")))
        return cls(service, operation, protocol, params, environ, body)

    def without(self, *keys: str) -> dict[str, Any]:
        """The environ of this request with `keys` removed from its parameters."""
        params = {k: v for k, v in self.params.items() if k not in keys}
        body = (json.dumps(params) if self.protocol is Protocol.JSON else urlencode(params)).encode()
        environ = dict(self.environ, CONTENT_LENGTH=str(len(body)))
        environ["wsgi.input"] = io.BytesIO(body)
        return environ


def _page_of(listing: Listing, params: dict[str, Any]) -> tuple[int, int] | None:
    """(page number, offset) of a request for a page of `listing`; None when it asks for no page size."""
    if listing.size not in params:
        return None
    token = str(params.get(listing.token) or "")
    if not token.startswith(TOKEN_PREFIX):
        return 1, 0
    page, offset = token[len(TOKEN_PREFIX) :].split("-")
    return int(page), int(offset)


def _cbor_text_map(values: dict[str, str]) -> bytes:
    """A CBOR map of short text strings (major types 5 and 3), enough for an error body."""

    def head(major: int, length: int) -> bytes:
        return bytes([major << 5 | length]) if length < 24 else bytes([major << 5 | 24, length])

    out = head(5, len(values))
    for key, value in values.items():
        for text in (key, value):
            raw = text.encode()
            out += head(3, len(raw)) + raw
    return out


def error_answer(request: _Request, status: int, code: str, message: str) -> Answer:
    """An AWS error in the protocol the request used (the query-compatible header for CloudWatch JSON)."""
    request_id = str(uuid.uuid4())
    line = f"{status} {'Bad Request' if status < 500 else 'Internal Server Error'}"
    headers = [("x-amzn-RequestId", request_id)]
    fault_type = "Sender" if status < 500 else "Receiver"
    if request.protocol is Protocol.QUERY:
        body = (
            f"<ErrorResponse><Error><Type>{fault_type}</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        return line, [*headers, ("Content-Type", "text/xml")], body
    headers.append(("x-amzn-query-error", f"{code};{fault_type}"))
    if request.protocol is Protocol.CBOR:
        body = _cbor_text_map({"__type": code, "message": message})
        cbor_headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        return line, [*headers, *cbor_headers], body
    version = "1.0" if "1.0" in request.environ.get("CONTENT_TYPE", "") else "1.1"
    body = json.dumps({"__type": code, "message": message}).encode()
    return line, [*headers, ("Content-Type", f"application/x-amz-json-{version}")], body


def _cut_page(
    listing: Listing, protocol: Protocol, answer: Answer, position: tuple[int, int], size: int
) -> Answer:
    """The page of a whole listing that starts at `offset`, with a token for the next page if any."""
    status, headers, body = answer
    if not status.startswith("200"):
        return answer
    page, offset = position
    token = f"{TOKEN_PREFIX}{page + 1}-{offset + size}"
    if protocol is Protocol.JSON:
        data = json.loads(body)
        items = [(key, item) for key in listing.items for item in data.get(key, [])]
        for key in listing.items:
            if key in data:
                data[key] = [item for k, item in items[offset : offset + size] if k == key]
        data.pop(listing.token, None)
        if offset + size < len(items):
            data[listing.token] = token
        body = json.dumps(data).encode()
    else:
        root = ET.fromstring(body)  # noqa: S314  # moto's own answer on 127.0.0.1, not untrusted input
        namespace = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        result = root[0]
        container = result.find(namespace + listing.items[0])
        members = list(container) if container is not None else []
        for gone in members[:offset] + members[offset + size :]:
            container.remove(gone)  # type: ignore[union-attr]  # members is empty when container is None
        for marker in result.findall(namespace + listing.token):
            result.remove(marker)
        if offset + size < len(members):
            ET.SubElement(result, namespace + listing.token).text = token
        body = ET.tostring(root)
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    return status, [*headers, ("Content-Length", str(len(body)))], body


@dataclass
class _Held:
    seen: Seen
    released: threading.Event = field(default_factory=threading.Event)


class FaultInjector:
    """The middleware. Rules may be changed at any time by the test (under the lock)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.only_agent: str | None = None  # when set, only requests whose User-Agent holds it
        self.page_size: int | None = None  # serve at most this many items per page (AWS may send fewer)
        self._lock = threading.Condition()
        self._rules: dict[Operation, Rule] = {}
        self._matched: Counter[Operation] = Counter()
        self._seen: list[Seen] = []
        self._held: list[_Held] = []
        self._in_flight = 0

    # --- what tests call ---------------------------------------------------------------------------
    def set(self, service: str, operation: str, rule: Rule | None) -> None:
        """Install (or, with None, remove) the rule for one operation; its match count starts at 0."""
        with self._lock:
            for counted in [k for k in self._matched if k[0] == service and operation in {"*", k[1]}]:
                del self._matched[counted]
            if rule is None:
                self._rules.pop((service, operation), None)
            else:
                self._rules[(service, operation)] = rule

    def set_service(self, service: str, rule: Rule) -> None:
        """A rule for every operation of a service (`*`), counted per operation ("first K of each")."""
        self.set(service, "*", rule)

    def clear(self) -> None:
        """No rules, nothing held, nothing counted: the state at the start of a test."""
        self.release()
        with self._lock:
            self._rules.clear()
            self._matched.clear()
            self._seen.clear()
            self._held.clear()
            self.only_agent = None
            self.page_size = None

    def seen(self, operation: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self._seen if operation is None or s.operation == operation]

    def counts(self) -> Counter[str]:
        """Requests received per operation, counted at the server (retries included)."""
        return Counter(s.operation for s in self.seen())

    def wait_held(self, operation: str, timeout: float) -> Seen:
        """Block until a request of `operation` is being held; fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for held in self._held:
                    if held.seen.operation == operation and not held.released.is_set():
                        return held.seen
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {operation} request held within {timeout:.0f}s")
                self._lock.wait(left)

    def wait_idle(self, timeout: float) -> None:
        """Block until no faulted-or-forwarded request is in flight (a released hold has finished)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self._in_flight} requests still in flight after {timeout:.0f}s")
                self._lock.wait(left)

    def release(self) -> None:
        """Let every held request go on (its client may be dead by then; AWS would still act on it)."""
        with self._lock:
            for held in self._held:
                held.released.set()
            self._held.clear()

    # --- the WSGI application ----------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        agent = environ.get("HTTP_USER_AGENT", "")
        if "HTTP_AUTHORIZATION" not in environ or (self.only_agent and self.only_agent not in agent):
            result: Iterable[bytes] = self.app(environ, start_response)
            return result
        with self._lock:
            self._in_flight += 1
        try:
            return self._serve(_Request.of(environ, body), start_response)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._lock.notify_all()

    def _serve(self, request: _Request, start_response: Any) -> list[bytes]:
        environ = request.environ
        listing = LISTINGS.get((request.service, request.operation))
        pageable = listing is not None and request.protocol is not Protocol.CBOR
        position = _page_of(listing, request.params) if listing and pageable else None
        rule, seen = self._match(request, position[0] if position else None)
        fault = rule.fault if rule else None
        if fault is Fault.THROTTLE:
            code = THROTTLE_CODES.get(request.service, "ThrottlingException")
            return self._answer(start_response, error_answer(request, 400, code, "Rate exceeded"))
        if fault is Fault.SERVER_ERROR:
            code = SERVER_CODES.get(request.service, "InternalFailure")
            return self._answer(start_response, error_answer(request, 500, code, "injected server fault"))
        if fault is Fault.RESET:
            self._drop(environ)
        if fault is Fault.HOLD and rule is not None:
            self._hold(seen, rule.hold)
        if listing is not None and position is not None:
            whole = self._call(request.without(listing.size, listing.token))
            answer = _cut_page(listing, request.protocol, whole, position, self._size(request, listing))
        else:
            answer = self._call(environ)
        if fault is Fault.LOSE_ANSWER:
            self._drop(environ)
        if fault is Fault.HOLD_AFTER and rule is not None:
            self._hold(seen, rule.hold)
        return self._answer(start_response, answer)

    def _size(self, request: _Request, listing: Listing) -> int:
        """The page size served: the requested one, capped by `page_size`."""
        size = int(request.params[listing.size])
        return size if self.page_size is None else min(size, self.page_size)

    def _match(self, request: _Request, page: int | None) -> tuple[Rule | None, Seen]:
        """The rule that applies to this request (counted), and the request as recorded."""
        with self._lock:
            applied: Rule | None = None
            for key in ((request.service, request.operation), (request.service, "*")):
                rule = self._rules.get(key)
                if rule is None or (rule.page is not None and rule.page != page):
                    continue
                counted = (request.service, request.operation)  # a service-wide rule counts per operation
                self._matched[counted] += 1
                if rule.applies(self._matched[counted]):
                    applied = rule
                break
            seen = Seen(request.service, request.operation, request.params, page, applied and applied.fault)
            self._seen.append(seen)
            return applied, seen

    def _hold(self, seen: Seen, seconds: float) -> None:
        """Hold this request (visible to `wait_held` from now) until released or `seconds` pass."""
        held = _Held(seen)
        with self._lock:
            self._held.append(held)
            self._lock.notify_all()
        held.released.wait(seconds)

    def _call(self, environ: dict[str, Any]) -> Answer:
        captured: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured[:] = [status, headers]

        chunks = self.app(environ, start_response)
        body = b"".join(chunks)
        getattr(chunks, "close", lambda: None)()
        return captured[0], list(captured[1]), body

    @staticmethod
    def _answer(start_response: Any, answer: Answer) -> list[bytes]:
        status, headers, body = answer
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]

    @staticmethod
    def _drop(environ: dict[str, Any]) -> None:
        """Close the connection without an answer: werkzeug treats a ConnectionError raised by the app
        as a dropped connection (no 500 page), and botocore sees the socket closed mid-request."""
        connection: socket.socket | None = environ.get("werkzeug.socket")
        if connection is not None:
            with suppress(OSError):  # the client may have gone already
                connection.shutdown(socket.SHUT_RDWR)
        raise ConnectionResetError("connection reset by the fault injector")


@dataclass
class FaultyAws:
    """moto's server behind a FaultInjector, with the conftest MotoServer helpers (client, env, reset)."""

    server: LocalAws
    faults: FaultInjector
    moto: MotoServer

    def reset(self) -> "FaultyAws":
        self.faults.clear()
        self.moto.reset()
        return self

    @property
    def url(self) -> str:
        return self.moto.url


def _record_homeostat(service: str, operation: str, user_agent: str) -> None:
    """As conftest's session server does: operations homeostat called are checked against the IAM policy.

    A request that names no operation (its body cut short by a SIGKILL mid-send) is no operation."""
    if "homeostat/" in user_agent and " " not in operation:
        record_operation(service, operation)


@contextmanager
def faulty_aws() -> Iterator[FaultyAws]:
    injectors: list[FaultInjector] = []

    def wrap(app: Any) -> Any:
        injectors.append(FaultInjector(app))
        return injectors[-1]

    server = LocalAws(on_request=_record_homeostat, middleware=wrap).start()
    try:
        yield FaultyAws(server, injectors[0], MotoServer(server.url, server))
    finally:
        injectors[0].release()
        server.stop()


# --- a small stack for the end-to-end tests ---------------------------------------------------------
STACK_SERVICES = {"api": 1, "web": 1}  # seeded counts; the manifests want 3
STACK_ALARMS = [f"prod-alarm-{i}" for i in range(4)]  # seeded disabled; AlarmActions wants them enabled


def seed_stack(aws: FaultyAws, desired: Path, now: datetime) -> datetime:
    """ECS services with drifted counts, a cluster with one expired owned snapshot and a slot to take,
    and disabled alarms that an AlarmActions wants enabled: work for every kind in one pass. Returns
    the slot (a few minutes before `now`, inside the default 1h deadline)."""
    from tests.alarm_helpers import alarm_actions_yaml, put_alarms
    from tests.daemon_helpers import seed_services, service_manifest
    from tests.snapshot_helpers import CLUSTER, PREFIX, create_cluster, manifest_yaml, seed_snapshot

    seed_services(aws.moto, STACK_SERVICES)
    rds = aws.moto.client("rds")
    create_cluster(rds)
    seed_snapshot(rds, f"{PREFIX}expired", now - timedelta(days=10))
    seed_snapshot(rds, f"{PREFIX}recent", now - timedelta(days=1))
    put_alarms(aws.moto.client("cloudwatch"), STACK_ALARMS, enabled=False)
    desired.mkdir(parents=True, exist_ok=True)
    (desired / "services.yaml").write_text("---\n".join(service_manifest(n, 3) for n in STACK_SERVICES))
    slot = (now - timedelta(minutes=3)).replace(second=0, microsecond=0)
    daily = f"{slot.minute} {slot.hour} * * *"
    (desired / "snapshots.yaml").write_text(manifest_yaml("aurora", CLUSTER, daily))
    (desired / "alarms.yaml").write_text(alarm_actions_yaml("prod-alarms", "alarmNamePrefix: prod-alarm-"))
    return slot


def stack_converged(aws: FaultyAws, slot: datetime) -> dict[str, bool]:
    """Which parts of the stack are at their desired state, read from moto without faults."""
    from tests.alarm_helpers import actions_enabled
    from tests.daemon_helpers import desired_count
    from tests.snapshot_helpers import CLUSTER, PREFIX

    ecs = aws.moto.client("ecs")
    rds = aws.moto.client("rds")
    answer = rds.describe_db_cluster_snapshots(DBClusterIdentifier=CLUSTER, SnapshotType="manual")
    snapshots = {s["DBClusterSnapshotIdentifier"] for s in answer["DBClusterSnapshots"]}
    return {
        "services": all(desired_count(ecs, name) == 3 for name in STACK_SERVICES),
        "snapshots": snapshots == {f"{PREFIX}recent", f"{PREFIX}{slot:%Y%m%d-%H%M}"},
        "alarms": set(actions_enabled(aws.moto.client("cloudwatch"), "prod-alarm-").values()) == {True},
    }
