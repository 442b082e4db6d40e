"""The daemon rejects what cannot be read, and keeps enforcing the last valid revision (issue 11, 2-3).

Before the loader read bytes, a NUL byte made every pass fail (`pass_failed`,
`/healthz` 503, drift no longer fixed) and a symlink loop was skipped. Now
both are one rejected revision with located errors, one history row, and the
previous revision still fixes drift.
"""

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


def test_unreadable_input_is_rejected_and_the_old_state_still_fixes_drift(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    """A NUL byte and a symlink loop: rejected with both errors; healthy; drift still undone."""
    seed_ecs(moto_server)
    directory = tmp_path / "desired-state"
    write_atomically(directory / "api.yaml", service_manifest("api", 2))
    db = f"sqlite:///{tmp_path / 'history.db'}"
    with running_daemon(moto_server, directory, db, tmp_path, resync=2) as daemon:
        wait_for("api at 2", lambda: desired_count(moto_server, "api") == 2)
        good = daemon.status()["revision"]
        write_atomically(directory / "api.yaml", service_manifest("api", 5) + "\0\n")
        (directory / "loop.yaml").symlink_to("loop.yaml")

        status = wait_for("the rejection", lambda: (s := daemon.status())["rejectedRevision"] and s)
        assert status["revision"] == good
        assert status["valid"] is False
        errors = status["rejectedErrors"]
        assert any(e.startswith("api.yaml:") and "cannot read: NUL byte" in e for e in errors), errors
        assert "loop.yaml: cannot read: symlink loop" in errors
        assert daemon.metric("homeostat_desired_state_valid") == 0.0
        assert daemon.get("/healthz").status_code == 200

        set_desired_count(moto_server, "api", 7)
        wait_for("the old revision to undo the drift", lambda: desired_count(moto_server, "api") == 2)
        assert not [e for e in daemon.log_events() if e.get("event") == "pass_failed"]
        rejections = [r for r in history(db) if r.action == "reject_revision"]
        assert len(rejections) == 1
        assert rejections[0].revision == status["rejectedRevision"]
