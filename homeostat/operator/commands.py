"""The commands behind `homeostat`: validate, schema, plan, run, history, status, demo.

Imported by `cli.main` only once the options parsed, inside its Ctrl-C
guard. The heavy libraries (boto3, SQLAlchemy, APScheduler,
prometheus_client) are imported inside the commands that need them, so
`validate` and `schema` load none of them. Every command that touches AWS
gets its parts from the one wiring (`wiring.build_runtime`); every failure
the user can cause ends in a CommandError: one line, a non-zero exit.
"""

import dataclasses
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from homeostat.desired_state.loading import DirectoryLoader, load_directory, load_paths
from homeostat.desired_state.state import DesiredState, InvalidDesiredState
from homeostat.operator.cli import EXIT_DRIFT, EXIT_ERROR, EXIT_OK, CommandError, emit, end_of_startup
from homeostat.operator.clock import rfc3339, seconds_text, utc_now
from homeostat.operator.options import Settings
from homeostat.reconcilers.registry import kind_table

if TYPE_CHECKING:
    from homeostat.operator.history import HistoryStore
    from homeostat.operator.records import ActionRecord


def load_or_fail(
    settings: Settings, directory_hint: str | None = None, loader: DirectoryLoader | None = None
) -> DesiredState:
    """The directory as `plan` and `run --once` enforce it: loaded, validated, then the
    `--selector` shard of it; each error one located line on stderr. With `loader`, through
    it: the pass that follows finds the bytes parsed already."""
    from homeostat.desired_state.shards import select
    from homeostat.reconcilers.registry import shard_bonds

    directory = settings.desired_state
    try:
        whole = loader.load()[1] if loader is not None else load_directory(directory, kinds=kind_table())
        desired = select(whole, settings.selector, shard_bonds())
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
    if not desired.resources:  # plan, run --once: a typo in --desired-state must not look "in sync"
        matching = f" match --selector {settings.selector.text}" if whole.resources else ""
        print(
            f"homeostat: warning: no manifests in {directory}{matching}: nothing is managed", file=sys.stderr
        )
    return desired


def expired_holds(desired: DesiredState, now: datetime) -> list[str]:
    """A warning (not an error) per bounded hold whose `until` is not after `now`: a hold written
    for an incident that is over holds nothing; the resource is reconciled. Pure."""
    found = []
    for resource in desired.resources:
        hold = resource.manifest.spec.hold
        if hold is not None and hold.until <= now:
            found.append(
                f"{resource.source.file}:{resource.source.line}: spec.suspend.until: warning: "
                f"{rfc3339(hold.until, 'seconds')} is already past: {resource.kind} {resource.name} "
                "is not held, it is reconciled"
            )
    return found


def cmd_validate(settings: Settings) -> int:
    """Files and directories as given (a pre-commit hook passes changed files), checked as one state."""
    from homeostat.desired_state.shards import select
    from homeostat.reconcilers.registry import shard_bonds

    paths = settings.paths or (settings.desired_state,)
    try:
        desired = load_paths(paths, kinds=kind_table())
        shard = select(desired, settings.selector, shard_bonds())  # CI can check each shard's split
    except InvalidDesiredState as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)  # the errors name the paths as given
        raise CommandError("", EXIT_ERROR) from exc
    if not desired.resources:
        named = " ".join(str(p) for p in paths)
        print(f"homeostat: warning: no manifests in {named}: nothing would be managed", file=sys.stderr)
    for warning in expired_holds(desired, utc_now()):
        print(warning, file=sys.stderr)
    in_shard = (
        f", {len(shard.resources)} in shard {settings.selector.text}" if settings.selector.pairs else ""
    )
    emit(f"valid: {len(desired.resources)} resources{in_shard}, revision {desired.revision}")
    return EXIT_OK


def cmd_schema(_settings: Settings) -> int:
    from homeostat.desired_state.schema import manifest_schema
    from homeostat.reconcilers.registry import schema_models

    emit(json.dumps(manifest_schema(schema_models()), indent=2, sort_keys=True))
    return EXIT_OK


def cmd_plan(settings: Settings) -> int:
    """Read-only: the runtime has no history store and no lease, so nothing is created."""
    from homeostat.desired_state.state import effective_region
    from homeostat.operator.output import plan_json, plan_text
    from homeostat.operator.passes import observe_and_diff
    from homeostat.operator.wiring import build_runtime
    from homeostat.reconcilers.aws import default_region

    end_of_startup()
    desired = load_or_fail(settings)
    if not desired.resources:
        print(
            f"homeostat: warning: no manifests in {settings.desired_state}: nothing is managed",
            file=sys.stderr,
        )
    runtime = build_runtime(settings, read_only=True)
    # Every resource is observed and diffed (an alarm policy's plan depends on every window),
    # then --kind/--name choose which plans are shown and decide the exit code.
    planned, skipped = observe_and_diff(desired, runtime.reconcilers, runtime.aws, runtime.clock())
    plans = [plan for _, _, plan in planned if selected(settings, plan.kind, plan.name)]
    skipped = [status for status in skipped if selected(settings, status.kind, status.name)]
    if (settings.kind or settings.name) and not plans and not skipped:
        raise CommandError(f"no resource matches{_filter_text(settings)} in {settings.desired_state}")
    default = default_region(runtime.aws)
    regions = {(str(r.kind), r.name): effective_region(r, default) for _, r, _ in planned}
    document = plan_json(desired.revision, plans, skipped, regions)
    # The exit code is decided before anything is printed: a reader that leaves early
    # (`plan | head -1`) must not change what it means.
    code = EXIT_DRIFT if not document["inSync"] else EXIT_OK
    if any(p.error for p in plans):
        code = EXIT_ERROR
    emit(
        json.dumps(document, indent=2, sort_keys=True)
        if settings.json
        else plan_text(document, wide=settings.wide)
    )
    return code


def selected(settings: Settings, kind: str, name: str) -> bool:
    """Whether `plan --kind/--name` show this resource (the kind is canonical already)."""
    return (settings.kind is None or kind == settings.kind) and (
        settings.name is None or name == settings.name
    )


def _filter_text(settings: Settings) -> str:
    return (f" --kind {settings.kind}" if settings.kind else "") + (
        f" --name {settings.name}" if settings.name else ""
    )


def cmd_run_once(settings: Settings) -> int:
    """One pass of the daemon's loop on the daemon's wiring. An invalid directory acts on
    nothing and writes nothing: a one-shot run has no earlier revision the user asked for."""
    from homeostat.operator.daemon import run_once
    from homeostat.operator.output import report_text
    from homeostat.operator.statuses import State
    from homeostat.operator.wiring import build_runtime

    end_of_startup()
    loader = DirectoryLoader(settings.desired_state, kinds=kind_table())
    load_or_fail(settings, loader=loader)  # invalid: one line per error, and nothing written
    started = time.monotonic()
    result = run_once(build_runtime(settings), loader=loader)
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
    # A Fighting resource, like a Conflict, is not at its manifest and homeostat will not fix it.
    if report.errors or any(s.state in {State.CONFLICT, State.FIGHTING} for s in report.statuses):
        return EXIT_ERROR
    return EXIT_OK


def cmd_run(settings: Settings) -> int:
    if settings.once:
        return cmd_run_once(settings)
    from homeostat.operator.daemon import run_daemon
    from homeostat.operator.wiring import build_runtime

    end_of_startup()
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

    history = open_existing_history(settings.history)
    try:
        since = utc_now() - settings.since if settings.since is not None else None
        query = HistoryQuery(
            since=since,
            kind=settings.kind,
            name=settings.name,
            revision=settings.revision,
            limit=settings.limit,
            shard=settings.selector.text or None,
        )
        records = history.query(query)
        printed = _print_history(settings, records, first=True)
        while settings.follow:  # until Ctrl-C (cli.main: exit 130)
            time.sleep(FOLLOW_POLL_SECONDS)
            newest = records[-1].time if records else since
            fresh = history.query(dataclasses.replace(query, since=newest, limit=1_000_000))
            seen = {_row_key(r) for r in records}
            new = [r for r in fresh if _row_key(r) not in seen]
            if new:
                records = [*records, *new]
                printed = _print_history(settings, new, first=not printed) or printed
    finally:
        history.close()
    return EXIT_OK


# `history --follow` asks the database this often (a poll: SQLite has no notifications).
FOLLOW_POLL_SECONDS = 2.0


def _row_key(record: "ActionRecord") -> tuple[object, ...]:
    """A row as --follow tells rows apart: a journal row that completes (pending, then applied)
    shows again with its outcome."""
    return (record.time, record.kind, record.name, record.action, record.target, record.outcome)


def _print_history(settings: Settings, records: "list[ActionRecord]", *, first: bool) -> bool:
    """Print rows (the table header only before the first); whether anything was printed."""
    from homeostat.operator.console import terminal_console
    from homeostat.operator.output import history_table

    if settings.json:
        if records:
            emit("\n".join(json.dumps(record.to_json(), sort_keys=True) for record in records))
        return bool(records)
    if not records:
        if first and not settings.follow:
            emit("no history rows match")
        return False
    terminal_console().print(history_table(records, wide=settings.wide, header=first))
    return True


def cmd_status(settings: Settings) -> int:
    from homeostat.operator.status_view import cmd_status as show_status

    return show_status(settings)


def cmd_completion(settings: Settings) -> int:
    """The shell completion script shtab derives from the parser: it cannot fall behind the options."""
    import shtab

    from homeostat.operator.options import build_parser

    emit(shtab.complete(build_parser(), shell=str(settings.shell)).rstrip("\n"))
    return EXIT_OK


def cmd_demo(settings: Settings) -> int:
    from homeostat.operator.demo import run_demo

    end_of_startup()
    return run_demo(settings)


COMMANDS = {
    "validate": cmd_validate,
    "schema": cmd_schema,
    "plan": cmd_plan,
    "run": cmd_run,
    "history": cmd_history,
    "status": cmd_status,
    "completion": cmd_completion,
    "demo": cmd_demo,
}


# The commands that import their heavy modules (boto3, SQLAlchemy) themselves and end the
# start-up (`cli.end_of_startup`) once they have; the others end it before they start.
ENDS_OWN_STARTUP = frozenset({"run", "plan", "demo"})


def run_command(settings: Settings) -> int:
    """Run one command; the failures a user can cause become one line on stderr."""
    if settings.command not in ENDS_OWN_STARTUP:
        end_of_startup()
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
