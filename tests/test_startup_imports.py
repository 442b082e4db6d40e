"""What `run --once` pays before its calls (issue 15, start-up).

A `run --once` is dominated by its calls, not by its start-up (contract section 6): the
daemon's scheduler (APScheduler) and the console renderer's rich (with pygments and attrs)
are loaded only by the processes that use them, and the objects of the start-up are frozen
out of the garbage collector's walks (`cli.end_of_startup`). Each test reads a fresh
interpreter's state at its exit, so a module-level import that brings a library back, or a
start-up that no longer freezes, fails here.
"""

import gc
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from homeostat.operator.cli import end_of_startup, main
from homeostat.operator.history import HistoryStore

from .conftest import EXAMPLES, MotoServer
from .snapshot_helpers import CLUSTER, PREFIX, create_cluster, manifest_yaml, seed_snapshot

# Loaded only by the daemon (the scheduler), the console log format (rich's tracebacks), or the
# migration of a database that is not at the newest schema (Alembic, with Mako and pygments).
NOT_FOR_ONCE = ("apscheduler", "tzlocal", "rich", "pygments", "attr", "alembic", "mako")
# A fresh interpreter running the CLI; at exit it writes the top-level packages it loaded.
_PROBE = (
    "import atexit, gc, json, runpy, sys\n"
    "def report(path=sys.argv[1]):\n"
    "    with open(path, 'w') as out:\n"
    "        modules = sorted({m.split('.')[0] for m in sys.modules})\n"
    "        json.dump({'modules': modules, 'frozen': gc.get_freeze_count(), 'gc': gc.isenabled()}, out)\n"
    "atexit.register(report)\n"
    "sys.argv = ['homeostat', *sys.argv[2:]]\n"
    "runpy.run_module('homeostat', run_name='__main__')\n"
)


def _run_probed(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str, dict[str, Any]]:
    loaded = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(loaded), *args],
        capture_output=True,  # stderr is a pipe: the default log format is JSON
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert loaded.exists(), output
    found: dict[str, Any] = json.loads(loaded.read_text())
    return result.returncode, output, found


@pytest.mark.e2e
@pytest.mark.parametrize("log_format", ["json", None], ids=["json", "default-off-a-terminal"])
def test_run_once_loads_neither_the_scheduler_nor_rich(
    moto_server: MotoServer, tmp_path: Path, log_format: str | None
) -> None:
    """A `run --once` that acts (deletes an expired snapshot, takes a slot) and then one in sync:
    both load the history and AWS libraries they use, and none of the daemon's scheduler or rich."""
    rds = moto_server.client("rds")
    create_cluster(rds)
    now = datetime.now(UTC)
    seed_snapshot(rds, f"{PREFIX}old", now - timedelta(days=10))
    seed_snapshot(rds, f"{PREFIX}recent", now - timedelta(days=1))
    slot = now - timedelta(minutes=10)
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "snapshots.yaml").write_text(
        manifest_yaml(
            "aurora", CLUSTER, f"{slot.minute} {slot.hour} * * *", timeZone="UTC", startingDeadline="1h"
        )
    )
    url = f"sqlite:///{tmp_path / 'history.db'}"
    HistoryStore(url).close()  # a database at the newest schema, as every start but the first finds it
    env = moto_server.env(HOMEOSTAT_DESIRED_STATE=str(desired), HOMEOSTAT_HISTORY=url)
    if log_format is not None:
        env["HOMEOSTAT_LOG_FORMAT"] = log_format
    for expected_actions in ("2 actions", "0 actions"):
        code, output, found = _run_probed(tmp_path, env, "run", "--once")
        assert code == 0, output
        loaded = set(found["modules"])
        assert expected_actions in output
        assert '"event": "pass_finished"' in output  # it logged, as JSON
        assert {"boto3", "sqlalchemy", "structlog", "prometheus_client"} <= loaded
        assert not loaded.intersection(NOT_FOR_ONCE), sorted(loaded.intersection(NOT_FOR_ONCE))
        # The start-up's objects were frozen (tens of thousands) and the collector runs again.
        assert found["frozen"] > 50_000
        assert found["gc"] is True


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "frozen"),
    [(("schema",), True), (("validate", str(EXAMPLES)), True), (("--version",), False)],
    ids=["schema", "validate", "version"],
)
def test_every_command_collects_garbage_again_after_its_start_up(
    tmp_path: Path, args: tuple[str, ...], frozen: bool
) -> None:
    """A command that runs freezes its start-up and collects again; one that ends before (here
    `--version`) turns the collector back on as it returns."""
    code, output, found = _run_probed(tmp_path, dict(os.environ), *args)
    assert code == 0, output
    assert (found["frozen"] > 0) is frozen
    assert found["gc"] is True


def test_main_with_an_explicit_argv_leaves_the_collector_alone(capsys: pytest.CaptureFixture[str]) -> None:
    """Tests (and any caller in a long-lived process) pass argv: nothing is frozen there."""
    before = gc.get_freeze_count()
    assert main(["validate", str(EXAMPLES)]) == 0
    assert "valid:" in capsys.readouterr().out
    assert gc.get_freeze_count() == before
    assert gc.isenabled()


def test_end_of_startup_is_a_no_op_while_the_collector_runs() -> None:
    before = gc.get_freeze_count()
    end_of_startup()
    assert gc.get_freeze_count() == before
    assert gc.isenabled()


def _loaded_after(code: str) -> set[str]:
    program = f"import sys\n{code}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_json_logging_loads_no_rich_and_console_logging_keeps_its_tracebacks() -> None:
    """structlog's JSON configuration leaves rich alone; the console renderer still formats
    exceptions with rich, as before."""
    json_logging = _loaded_after(
        "from homeostat.operator.logs import configure_logging, get_logger\n"
        "configure_logging('json')\n"
        "get_logger().info('event')"
    )
    assert "structlog" in json_logging
    assert not json_logging.intersection({"rich", "pygments", "attr"})
    console = _loaded_after(
        "from homeostat.operator.logs import configure_logging\n"
        "configure_logging('console')\n"
        "import structlog\n"
        "assert structlog.dev.default_exception_formatter is structlog.dev.rich_traceback"
    )
    assert "rich" in console


def test_rich_stays_importable_after_json_logging_was_configured() -> None:
    """Hiding rich from structlog's import is undone at once: `history` and `status` tables
    (and anything else) still import it in the same process."""
    loaded = _loaded_after(
        "from homeostat.operator.logs import configure_logging\n"
        "configure_logging('json')\n"
        "import rich.table\n"
        "import structlog\n"
        "assert structlog.dev.rich is None  # structlog took its no-rich path"
    )
    assert "rich" in loaded


def test_json_tracebacks_render_locals_with_plain_repr_whatever_was_imported_first() -> None:
    """The JSON line of a logged exception does not depend on whether rich happened to be loaded."""
    lines = []
    for first in ("", "import rich.pretty\n"):
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                first + "from homeostat.operator.logs import configure_logging, get_logger\n"
                "configure_logging('json')\n"
                "numbers = list(range(30))\n"
                "try:\n"
                "    raise ValueError(numbers)\n"
                "except ValueError:\n"
                "    get_logger().exception('failed')\n",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        (frame,) = json.loads(result.stderr)["exception"][0]["frames"]
        lines.append(frame["locals"]["numbers"])
    assert lines[0] == lines[1] == repr(repr(list(range(30)))[:80]) + f"+{len(repr(list(range(30)))) - 80}"


def test_the_wake_module_loads_no_scheduler_until_a_daemon_builds_one() -> None:
    """The loop (and so `run --once`) imports the wake module for `wake_requests`; APScheduler
    comes with the daemon's `WakeScheduler`."""
    assert "apscheduler" not in _loaded_after("import homeostat.operator.loop")
    assert "apscheduler" in _loaded_after(
        "from homeostat.operator.requests import PassRequests\n"
        "from homeostat.operator.wakes import WakeScheduler\n"
        "WakeScheduler(PassRequests(), 60)"
    )


def test_croniter_is_loaded_by_the_first_cron_expression_not_by_the_kinds() -> None:
    """The kinds' models (and so every `validate`, `schema` and `run --once`) import the cron
    module; croniter itself comes with the first expression checked or stepped through."""
    kinds = _loaded_after("import homeostat.reconcilers.registry")
    assert "croniter" not in kinds
    checked = _loaded_after(
        "from homeostat.desired_state.cron import validate_cron\nassert validate_cron('0 3 * * 1-5')"
    )
    assert "croniter" in checked
