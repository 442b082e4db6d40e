"""Hot reload with last-known-good, end to end: the real daemon against moto's threaded server.

Specification (contract sections 4 and 5, issue 6): a valid edit of the
desired-state directory is applied within 2 s without waiting for the resync;
an invalid edit is rejected whole while the previous revision stays in force
(and keeps fixing drift); the last valid revision survives a restart while
the directory is invalid; fixing the file resumes normally; a removed
manifest stops being managed, with a history row, and nothing in AWS is deleted.
"""

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import MotoServer
from tests.gitops_helpers import (
    desired_count,
    history,
    running_daemon,
    seed_ecs,
    service_manifest,
    set_desired_count,
    wait_for,
    write_atomically,
)

pytestmark = pytest.mark.e2e

BROKEN = service_manifest("api", 3).replace("desiredCount: 3", "desiredCount: -1\n  replicas: 3")


def _setup(tmp_path: Path) -> tuple[Path, str]:
    directory = tmp_path / "desired-state"
    write_atomically(directory / "api.yaml", service_manifest("api", 2))
    write_atomically(directory / "web.yaml", service_manifest("web", 1))
    return directory, f"sqlite:///{tmp_path / 'history.db'}"


def test_valid_edit_is_applied_within_two_seconds(moto_server: MotoServer, tmp_path: Path) -> None:
    """An edited manifest is applied by a pass the watcher requests, well before the 300 s resync."""
    seed_ecs(moto_server)
    directory, db = _setup(tmp_path)
    with running_daemon(moto_server, directory, db, tmp_path, resync=300) as daemon:
        wait_for("the startup pass to set api to 2", lambda: desired_count(moto_server, "api") == 2)
        write_atomically(directory / "api.yaml", service_manifest("api", 5))
        edited, written = time.monotonic(), datetime.now(UTC)
        # Measured by the daemon's own record of the update below, not by when this test notices it.
        wait_for("the edit to reach AWS", lambda: desired_count(moto_server, "api") == 5, timeout=60)
        print(f"edit applied {time.monotonic() - edited:.2f}s after the write")
        passes = [e for e in daemon.log_events() if e.get("event") == "pass_started"]
        assert any("desired state changed" in e["reasons"] for e in passes)
        revision = daemon.status()["revision"]
        assert revision is not None
        assert revision.startswith("sha256:")
        rows = history(db, kind="ECSService", name="api")
        assert [(r.action, r.after, r.revision) for r in rows][-1] == (
            "update_service",
            {"desiredCount": 5},
            revision,
        )
        # The contract asks for 2 s (measured here: about 0.2 s); 4 s absorbs a loaded CI machine.
        assert rows[-1].time - written < timedelta(seconds=4)


def test_invalid_edit_is_rejected_and_the_old_state_still_fixes_drift(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    """A broken revision is rejected, with file:line errors, and the previous one keeps fixing drift."""
    seed_ecs(moto_server)
    directory, db = _setup(tmp_path)
    with running_daemon(moto_server, directory, db, tmp_path, resync=2) as daemon:
        wait_for("api at 2", lambda: desired_count(moto_server, "api") == 2)
        good = daemon.status()["revision"]
        write_atomically(directory / "api.yaml", BROKEN)

        status = wait_for("the rejection", lambda: (s := daemon.status())["rejectedRevision"] and s)
        assert status["revision"] == good
        assert status["valid"] is False
        errors = status["rejectedErrors"]
        assert any(e.startswith("api.yaml:9: spec.desiredCount") for e in errors)
        assert any(e.startswith("api.yaml:10: spec.replicas: unknown field") for e in errors)
        assert daemon.metric("homeostat_desired_state_valid") == 0.0
        assert daemon.get("/readyz").status_code == 200
        assert status["rejectedRevision"] in daemon.get("/readyz").text
        rejected_logs = [e for e in daemon.log_events() if e.get("event") == "desired_state_rejected"]
        assert rejected_logs[0]["in_force"] == good

        set_desired_count(moto_server, "api", 7)
        wait_for("the old revision to undo the drift", lambda: desired_count(moto_server, "api") == 2)
        rows = history(db)
        rejections = [r for r in rows if r.action == "reject_revision"]
        assert len(rejections) == 1, "one row per rejected revision, however many passes see it"
        assert rejections[0].revision == status["rejectedRevision"]
        assert "api.yaml:9" in (rejections[0].error or "")
        fixes = [r for r in rows if r.action == "update_service" and r.before == {"desiredCount": 7}]
        assert [r.revision for r in fixes] == [good]


def test_restart_while_invalid_keeps_enforcing_the_last_good_revision(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    """The last valid revision is kept in the history database; fixing the file then resumes normally."""
    seed_ecs(moto_server)
    directory, db = _setup(tmp_path)
    with running_daemon(moto_server, directory, db, tmp_path) as daemon:
        wait_for("api at 2", lambda: desired_count(moto_server, "api") == 2)
        good = daemon.status()["revision"]

    write_atomically(directory / "api.yaml", BROKEN)
    set_desired_count(moto_server, "api", 9)
    set_desired_count(moto_server, "web", 4)
    with running_daemon(moto_server, directory, db, tmp_path) as daemon:
        wait_for("the persisted revision to undo the drift", lambda: desired_count(moto_server, "api") == 2)
        wait_for("web back at 1", lambda: desired_count(moto_server, "web") == 1)
        status = daemon.status()
        assert status["revision"] == good
        assert status["rejectedRevision"] is not None
        assert {(r["kind"], r["name"]) for r in status["resources"]} == {
            ("ECSService", "api"),
            ("ECSService", "web"),
        }
        assert daemon.metric(f'homeostat_desired_state_revision_info{{revision="{good}"}}') == 1.0
        restored = [e for e in daemon.log_events() if e.get("event") == "last_known_good_restored"]
        assert [e["revision"] for e in restored] == [good]

        write_atomically(directory / "api.yaml", service_manifest("api", 6))
        wait_for("the fixed file to be applied", lambda: desired_count(moto_server, "api") == 6)
        status = wait_for("status to clear the rejection", lambda: (s := daemon.status())["valid"] and s)
        assert status["rejectedRevision"] is None
        assert status["revision"] != good
        assert daemon.metric("homeostat_desired_state_valid") == 1.0


def test_removed_manifest_stops_management_and_deletes_nothing(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    """Deleting a manifest records an `unmanage` row; the service stays in AWS and its drift is left alone."""
    seed_ecs(moto_server)
    directory, db = _setup(tmp_path)
    with running_daemon(moto_server, directory, db, tmp_path, resync=2) as daemon:
        wait_for("web managed", lambda: daemon.resource("ECSService", "web"))
        (directory / "web.yaml").unlink()
        wait_for("web to leave /status", lambda: daemon.resource("ECSService", "web") is None)
        revision = daemon.status()["revision"]
        rows = history(db, kind="ECSService", name="web")
        assert [(r.action, r.outcome, r.revision) for r in rows if r.action == "unmanage"] == [
            ("unmanage", "applied", revision)
        ]

        set_desired_count(moto_server, "web", 5)
        set_desired_count(moto_server, "api", 8)
        wait_for("api (still managed) to be fixed", lambda: desired_count(moto_server, "api") == 2)
        assert desired_count(moto_server, "web") == 5
        services = moto_server.client("ecs").list_services(cluster="shop-production")["serviceArns"]
        assert len(services) == 2
