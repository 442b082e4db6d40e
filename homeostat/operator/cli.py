"""`homeostat` command line: the entry point, exit codes and the outermost guards.

Kept light on purpose: it imports nothing heavy at module level, and
`main` imports the options and the commands inside its guards, so Ctrl-C
at any moment, imports included, exits 130 without a traceback, and a
closed output pipe never turns into exit 0. Every failure the user can cause
ends in one line on stderr and a non-zero exit, never a traceback.

Called as the program (`argv` None: the console script, `python -m homeostat`), `main` also
keeps Python's cyclic garbage collector out of the start-up: it is off while the command's
modules are imported, and `end_of_startup` then freezes every object made so far (the
modules, classes and pydantic models: about 130,000 objects, almost no garbage) and turns it
back on. Without that, each collection during the start-up and every full collection after
it (a pass that parses 1,000 snapshots makes several) walks them all again: about 0.2 s of a
`run --once`, and CPU in every pass of the daemon. A call with an explicit `argv` (tests, in
one long-lived process) leaves the collector alone.
"""

import gc
import os
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_DRIFT = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A failure with a one-line message and an exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def silence_stdout() -> None:
    """Point stdout at /dev/null after its reader went away (Python's documented recipe for
    SIGPIPE): the interpreter's final flush must not fail again, and nobody reads it anyway."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def emit(text: str) -> None:
    """Write one block to stdout now. A reader that closed the pipe early (`plan | head -1`)
    is not an error of the command: it keeps the exit code it computed, so drift is never
    reported as "in sync" under `pipefail`."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()


def end_of_startup() -> None:
    """The command's modules are imported: what exists now lives as long as the process, so the
    collector stops walking it (`gc.freeze`), and collects again. A no-op while the collector
    runs (`main(argv)`, tests: see the module docstring)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def main(argv: Sequence[str] | None = None) -> int:
    collecting = gc.isenabled()
    if argv is None and collecting:
        gc.disable()  # until end_of_startup (see the module docstring)
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED  # never 0: `plan` would read as "in sync", `run --once` as success
    except BrokenPipeError:
        silence_stdout()  # the reader went away outside `emit` (say, during --help): not success
        return EXIT_ERROR
    finally:
        if collecting:
            gc.enable()  # a command that ended before its start-up did


def _main(argv: list[str]) -> int:
    from homeostat.operator.option_table import LOGGING_COMMANDS
    from homeostat.operator.options import USAGE_EXIT, UsageError, parse_settings

    try:
        settings = parse_settings(argv)
    except UsageError as exc:
        print(f"homeostat: error: {exc}", file=sys.stderr)
        return USAGE_EXIT
    if settings is None:
        from homeostat import __version__

        print(f"homeostat {__version__}")
        return EXIT_OK
    try:
        from homeostat.operator.commands import run_command

        if settings.command in LOGGING_COMMANDS:  # the others log nothing: no structlog to load
            from homeostat.operator.logs import configure_logging

            configure_logging(settings.log_format)
        return run_command(settings)
    except CommandError as exc:
        if str(exc):
            print(f"homeostat: error: {exc}", file=sys.stderr)
        return exc.code
