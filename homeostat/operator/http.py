"""HTTP endpoints on --listen: /metrics, /healthz, /readyz, /status.

A stdlib threaded server: small, no framework, and it keeps answering while
the loop thread is busy, which is what lets /healthz report a wedged loop.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from homeostat.operator.status import LoopStatus


class _Handler(BaseHTTPRequestHandler):
    server: "StatusServer"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        status = self.server.loop_status
        if path == "/metrics":
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
            self._send(404, b"not found: try /metrics, /healthz, /readyz or /status\n", "text/plain")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: scrapes every few seconds would drown the action log."""


class StatusServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Silenced: a scraper hanging up mid-response is not worth a traceback on stderr,
        which would break the one-JSON-object-per-line log."""

    def __init__(
        self, address: tuple[str, int], registry: CollectorRegistry, loop_status: LoopStatus
    ) -> None:
        self.registry = registry
        self.loop_status = loop_status
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
