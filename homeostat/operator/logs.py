"""structlog configuration: JSON lines by default, console format on a terminal.

structlog is imported here on first use, not with the module, and without rich when the
format is JSON: structlog's `__init__` imports its console renderer and traceback helpers,
which import rich (with pygments and attrs, ~40 ms of every start) whenever it is installed.
Only the console renderer's exception formatting needs it: JSON tracebacks render their
frames' locals with plain `repr` (`use_rich=False`, whatever was imported first, so a JSON
line does not depend on import order). `run --once` in a pipeline or a container logs JSON
and pays for none of it; on a terminal the console renderer gets rich's tracebacks as before.
"""

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any


class StderrLogger:
    """Writes each rendered line to whatever `sys.stderr` is *now* (not at configure time),
    so a logger survives stderr being swapped (test capture, daemonising)."""

    def msg(self, message: str) -> None:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def _stderr_logger(*_args: Any) -> StderrLogger:
    return StderrLogger()


def _default_format() -> str:
    return "console" if sys.stderr.isatty() else "json"


@contextlib.contextmanager
def _importing_structlog(log_format: str) -> Iterator[None]:
    """Around `import structlog`: for JSON, structlog's optional `import rich` fails (a None in
    `sys.modules` is Python's documented way to make an import fail), so structlog takes its
    no-rich path. Nothing changes when structlog or rich is loaded already, or for console."""
    hide = log_format != "console" and "structlog" not in sys.modules and "rich" not in sys.modules
    if hide:
        sys.modules["rich"] = None  # type: ignore[assignment]  # the import system's "not importable"
    try:
        yield
    finally:
        if hide and sys.modules.get("rich", False) is None:
            del sys.modules["rich"]  # rich stays importable for whoever needs it later


def configure_logging(log_format: str | None, level: int = logging.INFO) -> None:
    """`json`, `console`, or None to choose console on a terminal and JSON otherwise."""
    chosen = log_format or _default_format()
    with _importing_structlog(chosen):
        import structlog
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
            # structlog's dict_tracebacks, with locals in plain repr (see the module docstring).
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(use_rich=False)
            ),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def get_logger(**bind: Any) -> Any:
    with _importing_structlog(_default_format()):  # configured already, normally: then a no-op
        import structlog
    return structlog.get_logger("homeostat").bind(**bind)
