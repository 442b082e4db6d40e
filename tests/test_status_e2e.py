"""`homeostat status` as a subprocess against a real daemon (issue 12 item 3): the table, --json,
and exit 1 once the daemon is gone."""

import json
from pathlib import Path

import pytest

from tests.conftest import MotoServer, run_cli
from tests.daemon_helpers import DaemonProcess, seed_services, service_manifest
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


def test_status_shows_what_the_running_daemon_sees(moto_server: MotoServer, tmp_path: Path) -> None:
    ecs = seed_services(moto_server, {"api": 2})
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "api.yaml").write_text(service_manifest("api", 4))
    daemon = DaemonProcess(
        moto_server, desired, f"sqlite:///{tmp_path / 'h.db'}", "--resync", "2", log_dir=tmp_path
    )
    listen = daemon.url.removeprefix("http://")
    try:
        daemon.wait_ready(timeout=60)
        wait_for(
            lambda: (
                ecs.describe_services(cluster="prod", services=["api"])["services"][0]["desiredCount"] == 4
            ),
            60,
            what="api scaled to 4",
        )
        table = run_cli("status", "--listen", listen, env=moto_server.env())
        assert table.returncode == 0, table.stderr
        assert "Resources" in table.stdout
        assert "api" in table.stdout
        assert "Services" in table.stdout  # the health check, from the daemon's own observation

        def observed_desired() -> object:
            document = json.loads(
                run_cli("status", "--json", "--listen", listen, env=moto_server.env()).stdout
            )
            return [(s["name"], s["desired"]) for s in document["health"]["services"]]

        # The facts are what a pass observed: the pass after the fix sees 4.
        wait_for(lambda: observed_desired() == [("api", 4)], 60, what="status --json: api desired 4")
    finally:
        daemon.terminate()
    gone = run_cli("status", "--listen", listen, env=moto_server.env())
    assert gone.returncode == 1
    assert gone.stdout == ""
    assert f"no homeostat daemon answers on http://{listen}/status" in gone.stderr
