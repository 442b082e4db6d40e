"""`homeostat demo`: the daemon against an embedded local AWS, with drift made by hand.

Starts moto's server on 127.0.0.1, seeds it with the example stack (an ECS
cluster with api, web and worker, an Aurora cluster with ten days of manual
snapshots plus an emergency one, production alarms), copies
examples/desired-state to a temporary directory, runs the real daemon on
it, and every few seconds changes something the way a person would, so
the user watches homeostat notice and fix it. Everything stays on 127.0.0.1.
The stack it seeds and the person making drift are `demo_stack.py`'s; this
module narrates and runs the daemon.

It is `run` on the same runtime: the signal handling, the loop and the
wiring are the daemon's; the demo only passes the local endpoint and its
credentials into the wiring explicitly, and edits no environment variable.
"""

import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import structlog

from homeostat.operator.aws_session import Endpoint
from homeostat.operator.clock import time_of_day, utc_now
from homeostat.operator.daemon import Daemon, run_daemon
from homeostat.operator.demo_stack import (
    ALARMS,
    CLUSTER,
    DEMO_FIGHT_WINDOW,
    DEMO_KEY,
    DRIFT_EVERY_SECONDS,
    EXAMPLES,
    REGION,
    Chaos,
    say,
    seed,
)
from homeostat.operator.local_aws import LocalAws
from homeostat.operator.local_maintenance import PendingMaintenance
from homeostat.operator.options import Settings
from homeostat.operator.values import change_text, value_text
from homeostat.operator.wiring import StartupError, build_runtime

DEMO_RESYNC_SECONDS = 5


def _free_listen(preferred: str) -> str:
    """`preferred` when it can be bound, else a free port of 127.0.0.1; port 0 ("any") is
    chosen here, so the URLs the demo prints are the ones it serves."""
    host, _, port = preferred.rpartition(":")
    if port != "0":
        with socket.socket() as sock:
            try:
                sock.bind((host or "127.0.0.1", int(port)))
                return preferred
            except OSError:
                pass
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def _plain(event: MutableMapping[str, Any]) -> str | None:
    """A plain-words line for the log events a person watching the demo cares about."""
    name = event.get("event")
    if name == "action" and event["action"] == "resume":
        return f"homeostat RESUMED {event['kind']}/{event['name']}: {event['reason']}"
    if name == "action" and event["action"] == "fight_detected":
        seen = "; ".join(
            f"{field} was set back to {', '.join(value_text(v) for v in values)}"
            for field, values in event["before"].items()
        )
        return (
            f"homeostat STOPS FIGHTING over {event['kind']}/{event['name']} {event['target']}: "
            f"{event['reason']} ({seen}); it corrects again after a quiet fight window or a manifest change"
        )
    if name == "action" and event["action"] == "fight_resolved":
        return f"homeostat RESUMED {event['kind']}/{event['name']}: {event['reason']}"
    if name == "action" and event["action"] == "apply_pending_maintenance" and event["outcome"] == "applied":
        after = event["after"]
        return (
            f"homeostat APPLIED {event['kind']}/{event['name']}: {after['action']} on Aurora cluster "
            f"{event['target']}, OptInType {after['optInType']} ({event['reason']})"
        )
    if name == "action":
        changes = change_text(event["before"], event["after"])
        verb = {"applied": "APPLIED", "failed": "FAILED", "dry_run": "WOULD APPLY", "conflict": "CONFLICT"}[
            event["outcome"]
        ]
        error = f" error: {event['error']}" if event.get("error") else ""
        return (
            f"homeostat {verb} {event['kind']}/{event['name']}: {event['action']} {event['target']}: "
            f"{changes} ({event['reason']}){error}"
        )
    if name == "desired_state_rejected":
        return (
            f"homeostat REJECTED revision {event['rejected']}: {'; '.join(event['errors'])}; "
            f"{event['in_force']} stays in force"
        )
    if name == "desired_state_loaded":
        return f"homeostat loaded desired state revision {event['revision']} ({event['resources']} resources)"
    if name == "resource_backoff":
        return (
            f"homeostat error on {event['kind']}/{event['name']}, retrying at {event['retry_at']}: "
            f"{event['error']}"
        )
    return None


def _narrate_logs() -> None:
    def render(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> str:
        line = _plain(event)
        if line is None:
            raise structlog.DropEvent
        return f"[{time_of_day(utc_now())}] {line}"

    structlog.configure(
        processors=[render],
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )


def command_hint(argv0: str | None = None) -> str:
    """How to run this same homeostat from another shell: `homeostat` when that is the one on
    PATH, else the path it was started by (`.venv/bin/homeostat` after `make demo`)."""
    started = argv0 if argv0 is not None else sys.argv[0]
    if Path(started).name != "homeostat":
        return f"{sys.executable} -m homeostat"
    on_path = shutil.which("homeostat")
    if on_path is not None and Path(on_path).resolve() == Path(started).resolve():
        return "homeostat"
    return started


def _introduce(settings: Settings, desired: Path) -> None:
    base = f"http://{settings.listen}"
    say(f"homeostat is running: resync every {settings.resync}s")
    say(f"  the page {base}/      metrics {base}/metrics      status {base}/status")
    say(f"  edit the desired state in {desired} (homeostat applies edits within 2 s)")
    command = command_hint()
    say(f"  what it sees: {command} status --listen {settings.listen}")
    say(f"  history: {command} history --history {settings.history}")
    say(f"a person will make drift every {DRIFT_EVERY_SECONDS} s; press Ctrl-C to stop")


def run_demo(settings: Settings) -> int:
    try:
        import moto  # noqa: F401
    except ImportError:
        raise StartupError("the demo needs moto: pip install 'homeostat[demo]'") from None
    if not EXAMPLES.is_dir():
        raise StartupError(
            f"the demo needs the example manifests at {EXAMPLES}: run it from a source checkout"
        )
    workdir = Path(tempfile.mkdtemp(prefix="homeostat-demo-"))
    desired = workdir / "desired-state"
    shutil.copytree(EXAMPLES, desired)
    made: list[PendingMaintenance] = []

    def answer_maintenance(app: Any) -> PendingMaintenance:
        made.append(PendingMaintenance(app))  # moto lacks the pending-maintenance operations
        return made[0]

    aws = LocalAws(middleware=answer_maintenance).start()
    stop = threading.Event()
    try:
        say(f"starting an embedded local AWS (moto) on {aws.url}")
        seed(aws.url, utc_now())
        say(
            f"seeded it: cluster {CLUSTER} (api at 2 tasks on :41, web, autoscaled worker), Aurora cluster "
            f"with 10 days of manual snapshots and an emergency one, {len(ALARMS)} alarms"
        )
        demo_settings = Settings(
            command="run",
            desired_state=desired,
            history=f"sqlite:///{workdir / 'history.db'}",
            listen=_free_listen(settings.listen),
            resync=min(settings.resync, DEMO_RESYNC_SECONDS),
            dry_run=settings.dry_run,
            region=REGION,
            log_format=None,
            fight_window=DEMO_FIGHT_WINDOW,
        )
        _narrate_logs()

        def started(_daemon: Daemon) -> None:
            _introduce(demo_settings, desired)
            threading.Thread(
                target=Chaos(aws.url, stop, desired, made[0]).run, name="chaos", daemon=True
            ).start()

        endpoint = Endpoint(aws.url, DEMO_KEY, DEMO_KEY)
        code = run_daemon(
            lambda: build_runtime(demo_settings, endpoint=endpoint),
            on_started=started,
            stop_after=settings.duration.total_seconds() if settings.duration is not None else None,
        )
        say(f"demo stopped cleanly; the history database stays in {workdir}")
        return code
    finally:
        stop.set()
        aws.stop()
        time.sleep(0.1)
