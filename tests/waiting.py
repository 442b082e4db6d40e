"""Polling with a deadline and stopping child processes: shared by the end-to-end helpers."""

import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import requests

PROBE_ERRORS = (requests.RequestException, OSError, ValueError, KeyError, IndexError)


def wait_for(
    condition: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll until `condition()` is truthy and return it; fail naming `what` after `timeout` s.

    A probe that raises (server not up yet, file half-written) counts as not yet.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except PROBE_ERRORS:
            last = None
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def stop_process(process: subprocess.Popen[Any], timeout: float = 20) -> int:
    """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return int(process.returncode)
