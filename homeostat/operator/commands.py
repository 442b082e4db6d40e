"""The commands behind `homeostat`: validate, schema, plan, run, history, status, demo.

Imported by `cli.main` only once the options parsed, inside its Ctrl-C
guard. The heavy libraries (boto3, SQLAlchemy, APScheduler,
prometheus_client) are imported inside the commands that need them, so
`validate` and `schema` load none of them. Every command that touches AWS
gets its parts from the one wiring (`wiring.build_runtime`); every failure
the user can cause ends in a CommandError: one line, a non-zero exit.
"""

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from homeostat.desired_state.loading import load_directory, load_paths
from homeostat.desired_state.state import DesiredState, InvalidDesiredState
from homeostat.operator.cli import EXIT_DRIFT, EXIT_ERROR, EXIT_OK, CommandError, emit
from homeostat.operator.clock import seconds_text, utc_now
from homeostat.operator.options import Settings
from homeostat.reconcilers.registry import kind_table

if TYPE_CHECKING:
    from homeostat.operator.history import HistoryStore


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
    emit(f"valid: {len(desired.resources)} resources, revision {desired.revision}")
    return EXIT_OK


def cmd_schema(_settings: Settings) -> int:
    from homeostat.desired_state.schema import manifest_schema
    from homeostat.reconcilers.registry import schema_models

    emit(json.dumps(manifest_schema(schema_models()), indent=2, sort_keys=True))
    return EXIT_OK


def cmd_plan(settings: Settings) -> int:
    """Read-only: the runtime has no history store and no lease, so nothing is created."""
    from homeostat.operator.output import plan_json, plan_text
    from homeostat.operator.passes import observe_and_diff
    from homeostat.operator.wiring import build_runtime

    desired = load_or_fail(settings)
    runtime = build_runtime(settings, read_only=True)
    planned, skipped = observe_and_diff(desired, runtime.reconcilers, runtime.aws, runtime.clock())
    plans = [plan for _, _, plan in planned]
    document = plan_json(desired.revision, plans, skipped)
    # The exit code is decided before anything is printed: a reader that leaves early
    # (`plan | head -1`) must not change what it means.
    code = EXIT_DRIFT if not document["inSync"] else EXIT_OK
    if any(p.error for p in plans):
        code = EXIT_ERROR
    emit(json.dumps(document, indent=2, sort_keys=True) if settings.json else plan_text(document))
    return code


def cmd_run_once(settings: Settings) -> int:
    """One pass of the daemon's loop on the daemon's wiring. An invalid directory acts on
    nothing and writes nothing: a one-shot run has no earlier revision the user asked for."""
    from homeostat.operator.daemon import run_once
    from homeostat.operator.output import report_text
    from homeostat.operator.passes import State
    from homeostat.operator.wiring import build_runtime

    load_or_fail(settings)
    started = time.monotonic()
    result = run_once(build_runtime(settings))
    if result.signal is not None:  # never 0: the pass did not reach every resource
        raise CommandError(f"interrupted by {result.signal.name}", 128 + result.signal.value)
    report = result.report
    if report is None:
        raise CommandError("the pass failed part-way; see the log (pass_failed)")
    emit(
        f"revision {report.revision}: {len(report.statuses)} resources, {len(report.records)} actions "
        f"in {seconds_text(time.monotonic() - started, 2)}" + (" (dry run)" if settings.dry_run else "")
    )
    if report.statuses:
        emit(report_text(report.statuses))
    if report.errors or any(s.state == State.CONFLICT for s in report.statuses):
        return EXIT_ERROR
    return EXIT_OK


def cmd_run(settings: Settings) -> int:
    if settings.once:
        return cmd_run_once(settings)
    from homeostat.operator.daemon import run_daemon
    from homeostat.operator.wiring import build_runtime

    return run_daemon(lambda: build_runtime(settings))


def open_existing_history(url: str) -> "HistoryStore":
    """The history store of a database that exists: a read-only command never creates one."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from homeostat.operator.history import HistoryError, HistoryStore

    try:
        parsed = make_url(url)
    except ArgumentError:
        parsed = None  # HistoryStore reports the bad URL in its own words
    if parsed is not None and parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not Path(database).exists():
            raise CommandError(f"history database {database} does not exist")
    try:
        return HistoryStore(url)
    except HistoryError as exc:
        raise CommandError(str(exc)) from exc


def cmd_history(settings: Settings) -> int:
    from homeostat.operator.history import HistoryQuery
    from homeostat.operator.output import history_text

    history = open_existing_history(settings.history)
    try:
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
    finally:
        history.close()
    if settings.json:
        if records:
            emit("\n".join(json.dumps(record.to_json(), sort_keys=True) for record in records))
    else:
        emit(history_text(records))
    return EXIT_OK


def cmd_status(settings: Settings) -> int:
    from homeostat.operator.status_view import cmd_status as show_status

    return show_status(settings)


def cmd_demo(settings: Settings) -> int:
    from homeostat.operator.demo import run_demo

    return run_demo(settings)


COMMANDS = {
    "validate": cmd_validate,
    "schema": cmd_schema,
    "plan": cmd_plan,
    "run": cmd_run,
    "history": cmd_history,
    "status": cmd_status,
    "demo": cmd_demo,
}


def run_command(settings: Settings) -> int:
    """Run one command; the failures a user can cause become one line on stderr."""
    try:
        return COMMANDS[settings.command](settings)
    except Exception as exc:
        message = user_error(exc)
        if message is None:
            raise
        raise CommandError(message) from exc


def user_error(exc: Exception) -> str | None:
    """The one line for a failure the user caused, or None for a bug.

    Only libraries a command imported can have raised: checking `sys.modules`
    keeps `validate` and `schema` free of boto3 and SQLAlchemy.
    """
    startup = sys.modules.get("homeostat.operator.wiring")
    if startup is not None and isinstance(exc, startup.StartupError):
        return str(exc)
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is not None:
        if isinstance(exc, botocore.NoRegionError):
            return "no AWS region: pass --region or set AWS_DEFAULT_REGION"
        if isinstance(exc, botocore.NoCredentialsError):
            return "no AWS credentials found in the boto3 credential chain"
        if isinstance(exc, botocore.BotoCoreError):
            return f"AWS: {exc}"
    sqlalchemy = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy is not None and isinstance(exc, sqlalchemy.SQLAlchemyError):
        from homeostat.operator.history import first_line

        return f"history database: {first_line(exc)}"
    return None
