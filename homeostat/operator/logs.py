"""structlog configuration: JSON lines by default, console format on a terminal."""

import logging
import sys
from typing import Any

import structlog


class StderrLogger:
    """Writes each rendered line to whatever `sys.stderr` is *now* (not at configure time),
    so a logger survives stderr being swapped (test capture, daemonising)."""

    def msg(self, message: str) -> None:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def _stderr_logger(*_args: Any) -> StderrLogger:
    return StderrLogger()


def configure_logging(log_format: str | None, level: int = logging.INFO) -> None:
    """`json`, `console`, or None to choose console on a terminal and JSON otherwise."""
    chosen = log_format or ("console" if sys.stderr.isatty() else "json")
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if chosen == "console"
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def get_logger(**bind: Any) -> Any:
    return structlog.get_logger("homeostat").bind(**bind)
