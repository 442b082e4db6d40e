"""HTTP endpoints on --listen: `/` (the page), /metrics, /healthz, /readyz, /status.

A stdlib threaded server: small, no framework, and it keeps answering while
the loop thread is busy, which is what lets /healthz report a wedged loop.
Every endpoint answers HEAD as it answers GET, without the body (load
balancers and uptime checks probe with HEAD).
"""

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from homeostat.operator.page import PAGE_HISTORY_ROWS, render_page
from homeostat.operator.status import LoopStatus

# The page's <meta refresh>: often enough to watch a pass land, rarely enough to cost nothing.
PAGE_REFRESH_SECONDS = 5
# The newest history rows for the page, newest first, as `history --json` prints them.
HistoryRows = Callable[[int], Sequence[Mapping[str, Any]]]


def _no_history(_limit: int) -> Sequence[Mapping[str, Any]]:
    return ()


class _Handler(BaseHTTPRequestHandler):
    server: "StatusServer"

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        status = self.server.loop_status
        if path == "/":
            page = render_page(
                status.to_json(),
                self.server.history_rows(PAGE_HISTORY_ROWS),
                refresh_seconds=PAGE_REFRESH_SECONDS,
            )
            self._send(200, page.encode(), "text/html; charset=utf-8")
        elif path == "/metrics":
            self._send(200, generate_latest(self.server.registry), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            ok, message = status.healthy()
            self._send(200 if ok else 503, (message + "\n").encode(), "text/plain; charset=utf-8")
        elif path == "/readyz":
            ok, message = status.ready()
            self._send(200 if ok else 503, (message + "\n").encode(), "text/plain; charset=utf-8")
        elif path == "/status":
            body = json.dumps(status.to_json(), indent=2, sort_keys=True).encode()
            self._send(200, body, "application/json")
        else:
            self._send(404, b"not found: try /, /metrics, /healthz, /readyz or /status\n", "text/plain")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: scrapes every few seconds would drown the action log."""


class StatusServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Silenced: a scraper hanging up mid-response is not worth a traceback on stderr,
        which would break the one-JSON-object-per-line log."""

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        loop_status: LoopStatus,
        history_rows: HistoryRows = _no_history,
    ) -> None:
        self.registry = registry
        self.loop_status = loop_status
        self.history_rows = history_rows
        super().__init__(address, _Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
