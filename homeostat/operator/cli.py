"""`homeostat` command line: validate, schema, plan, run, history, demo.

Every failure the user can cause ends in one line on stderr and a non-zero
exit, never a traceback (see `main`).
"""

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from botocore.exceptions import BotoCoreError, NoCredentialsError, NoRegionError
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import SQLAlchemyError

from homeostat import __version__
from homeostat.desired_state.loading import load_directory, load_paths
from homeostat.desired_state.schema import manifest_schema
from homeostat.desired_state.state import DesiredState, InvalidDesiredState
from homeostat.metrics import Metrics
from homeostat.operator.aws_session import BotoClients
from homeostat.operator.clock import utc_now
from homeostat.operator.execution import Executor, mark_interrupted
from homeostat.operator.history import HistoryError, HistoryQuery, HistoryStore, first_line
from homeostat.operator.lease import Lease, LeaseHeld
from homeostat.operator.logs import configure_logging, get_logger
from homeostat.operator.options import USAGE_EXIT, Settings, UsageError, parse_settings
from homeostat.operator.output import history_text, plan_json, plan_text, report_text
from homeostat.operator.passes import observe_and_diff, run_pass
from homeostat.reconcilers.registry import default_reconcilers, gauges, kind_table, schema_models

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_DRIFT = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A failure with a one-line message and an exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def load_or_fail(settings: Settings, directory_hint: str | None = None) -> DesiredState:
    directory = settings.desired_state
    try:
        return load_directory(directory, kinds=kind_table())
    except InvalidDesiredState as exc:
        for error in exc.errors:
            prefix = directory_hint if directory_hint is not None else str(directory)
            # Errors name files relative to the directory; directory-level errors name the directory.
            directory_level = error.file == str(directory) or Path(error.file).is_absolute()
            where = error.file if directory_level else f"{prefix.rstrip('/')}/{error.file}"
            line = f"{where}:{error.line}" if error.line is not None else where
            what = f"{error.field}: {error.message}" if error.field else error.message
            print(f"{line}: {what}", file=sys.stderr)
        raise CommandError("", EXIT_ERROR) from exc


def cmd_validate(settings: Settings) -> int:
    """Files and directories as given (a pre-commit hook passes changed files), checked as one state."""
    paths = settings.paths or (settings.desired_state,)
    try:
        desired = load_paths(paths, kinds=kind_table())
    except InvalidDesiredState as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)  # the errors name the paths as given
        raise CommandError("", EXIT_ERROR) from exc
    if not desired.resources:
        named = " ".join(str(p) for p in paths)
        print(f"homeostat: warning: no manifests in {named}: nothing would be managed", file=sys.stderr)
    print(f"valid: {len(desired.resources)} resources, revision {desired.revision}")
    return EXIT_OK


def cmd_schema(_settings: Settings) -> int:
    print(json.dumps(manifest_schema(schema_models()), indent=2, sort_keys=True))
    return EXIT_OK


def cmd_plan(settings: Settings) -> int:
    desired = load_or_fail(settings)
    aws = BotoClients(settings.region)
    planned, skipped = observe_and_diff(desired, default_reconcilers(), aws, utc_now())
    plans = [plan for _, _, plan in planned]
    document = plan_json(desired.revision, plans, skipped)
    print(json.dumps(document, indent=2, sort_keys=True) if settings.json else plan_text(document))
    if any(p.error for p in plans):
        return EXIT_ERROR
    return EXIT_OK if document["inSync"] else EXIT_DRIFT


def open_history(settings: Settings) -> HistoryStore:
    try:
        return HistoryStore(settings.history)
    except HistoryError as exc:
        raise CommandError(str(exc)) from exc


def cmd_run_once(settings: Settings) -> int:
    desired = load_or_fail(settings)
    history = open_history(settings)
    lease = Lease(history.engine)
    try:
        lease.acquire()  # a pass next to a running daemon would act twice on one database
    except LeaseHeld as exc:
        history.close()
        raise CommandError(str(exc)) from exc
    try:
        mark_interrupted(history, get_logger())  # the lease is ours: no pending row is in flight
        return _run_once(settings, desired, history)
    finally:
        lease.release()
        history.close()


def _run_once(settings: Settings, desired: DesiredState, history: HistoryStore) -> int:
    metrics = Metrics(CollectorRegistry(), gauges())
    aws = BotoClients(
        settings.region,
        on_call=lambda s, o, r: metrics.aws_api_calls_total.labels(service=s, operation=o, result=r).inc(),
    )
    log = get_logger(revision=desired.revision)
    executor = Executor(history, metrics, log, utc_now)
    started = time.monotonic()
    report = run_pass(
        desired,
        default_reconcilers(),
        aws,
        executor,
        clock=utc_now,
        dry_run=settings.dry_run,
        metrics=metrics,
    )
    seconds = time.monotonic() - started
    print(
        f"revision {desired.revision}: {len(report.statuses)} resources, {len(report.records)} actions "
        f"in {seconds:.2f}s" + (" (dry run)" if settings.dry_run else "")
    )
    if report.statuses:
        print(report_text(report.statuses))
    if report.errors or any(s.state == "Conflict" for s in report.statuses):
        return EXIT_ERROR
    return EXIT_OK


def cmd_run(settings: Settings) -> int:
    if settings.once:
        return cmd_run_once(settings)
    from homeostat.operator.daemon import DaemonError, run_daemon

    try:
        return run_daemon(settings)
    except DaemonError as exc:
        raise CommandError(str(exc)) from exc


def cmd_history(settings: Settings) -> int:
    history = open_history(settings)
    since = utc_now() - settings.since if settings.since is not None else None
    records = history.query(
        HistoryQuery(
            since=since,
            kind=settings.kind,
            name=settings.name,
            revision=settings.revision,
            limit=settings.limit,
        )
    )
    history.close()
    if settings.json:
        for record in records:
            print(json.dumps(record.to_json(), sort_keys=True))
    else:
        print(history_text(records))
    return EXIT_OK


def cmd_demo(settings: Settings) -> int:
    from homeostat.operator.daemon import DaemonError
    from homeostat.operator.demo import run_demo

    try:
        return run_demo(settings)
    except DaemonError as exc:
        raise CommandError(str(exc)) from exc


COMMANDS = {
    "validate": cmd_validate,
    "schema": cmd_schema,
    "plan": cmd_plan,
    "run": cmd_run,
    "history": cmd_history,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = parse_settings(list(sys.argv[1:] if argv is None else argv))
        if settings is None:
            print(f"homeostat {__version__}")
            return EXIT_OK
        configure_logging(settings.log_format)
        return COMMANDS[settings.command](settings)
    except UsageError as exc:
        print(f"homeostat: error: {exc}", file=sys.stderr)
        return USAGE_EXIT
    except CommandError as exc:
        if str(exc):
            print(f"homeostat: error: {exc}", file=sys.stderr)
        return exc.code
    except NoRegionError:
        print(
            "homeostat: error: no AWS region: pass --region or set AWS_DEFAULT_REGION",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except NoCredentialsError:
        print(
            "homeostat: error: no AWS credentials found in the boto3 credential chain",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except SQLAlchemyError as exc:
        print(f"homeostat: error: history database: {first_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except BotoCoreError as exc:
        print(f"homeostat: error: AWS: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED  # never 0: `plan` would read as "in sync", `run --once` as success
    except BrokenPipeError:
        return EXIT_OK
