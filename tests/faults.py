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

The wire format (errors per protocol, paging) is in tests/fault_wire.py.
Every signed request is counted and recorded with its parameters (query and
JSON protocols; CBOR bodies are not decoded) so that tests can check what AWS
saw, e.g. which snapshot identifiers were deleted.
"""

import io
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from homeostat.operator.local_aws import LocalAws
from tests.conftest import MotoServer, record_operation
from tests.fault_wire import (
    LISTINGS,
    SERVER_CODES,
    THROTTLE_CODES,
    Answer,
    Listing,
    Operation,
    Protocol,
    WireRequest,
    cut_page,
    error_answer,
    page_of,
)


class Fault(StrEnum):
    THROTTLE = "throttle"
    SERVER_ERROR = "server_error"
    RESET = "reset"  # the connection is closed before moto sees the request
    LOSE_ANSWER = "lose_answer"  # moto executes the request, then the connection is closed
    HOLD = "hold"  # held before moto sees it (a SIGKILL can be timed inside the call)
    HOLD_AFTER = "hold_after"  # moto executed it; the answer is held


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
            return self._serve(WireRequest.of(environ, body), start_response)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._lock.notify_all()

    def _serve(self, request: WireRequest, start_response: Any) -> list[bytes]:
        environ = request.environ
        listing = LISTINGS.get((request.service, request.operation))
        pageable = listing is not None and request.protocol is not Protocol.CBOR
        position = page_of(listing, request.params) if listing and pageable else None
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
            answer = cut_page(listing, request.protocol, whole, position, self._size(request, listing))
        else:
            answer = self._call(environ)
        if fault is Fault.LOSE_ANSWER:
            self._drop(environ)
        if fault is Fault.HOLD_AFTER and rule is not None:
            self._hold(seen, rule.hold)
        return self._answer(start_response, answer)

    def _size(self, request: WireRequest, listing: Listing) -> int:
        """The page size served: the requested one, capped by `page_size`."""
        size = int(request.params[listing.size])
        return size if self.page_size is None else min(size, self.page_size)

    def _match(self, request: WireRequest, page: int | None) -> tuple[Rule | None, Seen]:
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
        with self._lock:  # released, or timed out: no longer held either way
            if held in self._held:
                self._held.remove(held)

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
    moto = MotoServer(server.url, server)
    moto.reset()  # moto's backends are global to the process: start from none of an earlier test's
    try:
        yield FaultyAws(server, injectors[0], moto)
    finally:
        injectors[0].release()
        server.stop()
