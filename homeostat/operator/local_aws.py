"""An embedded local AWS: moto's server on 127.0.0.1, quiet, with a request hook.

Used by `homeostat demo`, the benchmarks and the tests. The hook sees each
request's (service, operation, user agent) so callers can count AWS calls
made by another process, which botocore event hooks cannot see.
"""

import io
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

RequestHook = Callable[[str, str, str], None]
Middleware = Callable[[Any], Any]  # wraps moto's WSGI app (the tests' fault injector)
_SCOPE = re.compile(r"Credential=[^/]+/[0-9]{8}/[^/]+/([^/]+)/aws4_request")
_CBOR_PATH = re.compile(r"/service/[^/]+/operation/([A-Za-z]+)")


def request_operation(environ: dict[str, Any], body: bytes) -> tuple[str, str]:
    """(service, operation) of a signed AWS request, for JSON, query and CBOR protocols."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = match.group(1) if match else "unknown"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return service, target.rsplit(".", 1)[-1]
    cbor = _CBOR_PATH.search(environ.get("PATH_INFO", ""))
    if cbor:
        return service, cbor.group(1)
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return service, query["Action"][0]
    form = parse_qs(body.decode("utf-8", "replace")) if body else {}
    if "Action" in form:
        return service, form["Action"][0]
    return service, f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}"


class _Recorder:
    def __init__(self, app: Any, hook: RequestHook) -> None:
        self.app = app
        self.hook = hook

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if "HTTP_AUTHORIZATION" in environ:
            service, operation = request_operation(environ, body)
            self.hook(service, operation, environ.get("HTTP_USER_AGENT", ""))
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


class LocalAws:
    """moto's server in a thread on 127.0.0.1 (port 0 = a free port)."""

    def __init__(
        self, port: int = 0, on_request: RequestHook | None = None, middleware: Middleware | None = None
    ) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                """Silenced: one line per AWS call would bury everything else."""

        app: Any = DomainDispatcherApplication(create_backend_app)
        if middleware is not None:
            app = middleware(app)
        if on_request is not None:
            app = _Recorder(app, on_request)
        self._server = make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-aws", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> "LocalAws":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Latency:
    """WSGI middleware: every AWS request waits `seconds` before moto answers (a round trip)."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if self.seconds > 0 and "HTTP_AUTHORIZATION" in environ:
            time.sleep(self.seconds)
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


_THROTTLED_XML = (
    b'<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type>'
    b"<Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>throttled</RequestId>"
    b"</ErrorResponse>"
)


class Throttle:
    """WSGI middleware: AWS's server-side limits, a token bucket per service (its signing name:
    `rds`, `ecs`, `monitoring`, ...) of `rate` requests per second and a burst of one second.
    A request over the limit is counted in `throttled`; with `reject`, query-protocol services
    (RDS) answer it `Throttling` as AWS would, the others are counted only. (tests/faults.py
    throttles by count, for retries; this one by rate, for the shared budget.)"""

    def __init__(self, app: Any, rates: dict[str, float], *, reject: bool = True) -> None:
        self.app = app
        self.rates = rates
        self.reject = reject
        self.throttled: dict[str, int] = {}
        self._tokens = dict(rates)
        self._at = dict.fromkeys(rates, time.monotonic())
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Counts cleared and every bucket full: the limits as a quiet account sees them."""
        with self._lock:
            self.throttled.clear()
            self._tokens = dict(self.rates)
            self._at = dict.fromkeys(self.rates, time.monotonic())

    def _over(self, service: str) -> bool:
        rate = self.rates.get(service)
        if rate is None:
            return False
        with self._lock:
            now = time.monotonic()
            self._tokens[service] = min(rate, self._tokens[service] + (now - self._at[service]) * rate)
            self._at[service] = now
            if self._tokens[service] >= 1:
                self._tokens[service] -= 1
                return False
            self.throttled[service] = self.throttled.get(service, 0) + 1
            return True

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if (
            match
            and self._over(match.group(1))
            and self.reject
            and "urlencoded" in environ.get("CONTENT_TYPE", "")
        ):
            start_response("400 Bad Request", [("Content-Type", "text/xml")])
            return [_THROTTLED_XML]
        result: Iterable[bytes] = self.app(environ, start_response)
        return result
