"""A fight during a daemon run (issue 14 item 4): a background client keeps setting api's
desiredCount back; after three corrections homeostat stops correcting api (Fighting in /status
and /metrics, one `fight_detected` row) while web is still reconciled."""

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import MotoServer, run_cli
from tests.daemon_helpers import DaemonProcess, desired_count, seed_services, service_manifest
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

# Generous: only reached when the behaviour under test is broken.
TIMEOUT = 60.0


class Reverter:
    """The other writer: whenever api's desiredCount is not 1, it sets it back to 1."""

    def __init__(self, ecs: Any) -> None:
        self.ecs = ecs
        self.reverts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            if desired_count(self.ecs, "api") != 1:
                self.ecs.update_service(cluster="prod", service="api", desiredCount=1)
                self.reverts += 1
            self._stop.wait(0.05)

    def __enter__(self) -> "Reverter":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.kill()


def fighting(daemon: DaemonProcess) -> dict[str, float]:
    return {
        s.labels["name"]: s.value
        for family in text_string_to_metric_families(daemon.get("/metrics").text)
        for s in family.samples
        if s.name == "homeostat_resource_fighting"
    }


def state(daemon: DaemonProcess, name: str) -> dict[str, Any]:
    return next(r for r in daemon.get("/status").json()["resources"] if r["name"] == name)


def rows(history: str) -> list[dict[str, Any]]:
    out = run_cli("history", "--json", "--limit", "1000", "--history", history)
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_homeostat_stops_after_three_reverted_corrections_and_other_services_go_on(
    moto_server: MotoServer, tmp_path: Path, daemons: list[DaemonProcess]
) -> None:
    ecs = seed_services(moto_server, {"api": 1, "web": 2})
    desired = tmp_path / "desired"
    desired.mkdir()
    (desired / "services.yaml").write_text(service_manifest("api", 3) + "---\n" + service_manifest("web", 2))
    history = f"sqlite:///{tmp_path / 'history.db'}"
    daemon = DaemonProcess(
        moto_server, desired, history, "--resync", "1", "--fight-threshold", "3", log_dir=tmp_path
    )
    daemons.append(daemon)
    with Reverter(ecs) as reverter:
        daemon.wait_ready()
        wait_for(lambda: state(daemon, "api")["state"] == "Fighting", TIMEOUT, what="api Fighting")
        api = state(daemon, "api")
        assert "desiredCount of prod/api was corrected 3 times" in api["message"]
        assert fighting(daemon) == {"api": 1, "web": 0}
        # web is still reconciled while api is left alone.
        ecs.update_service(cluster="prod", service="web", desiredCount=5)
        wait_for(lambda: desired_count(ecs, "web") == 2, TIMEOUT, what="web fixed while api fights")
        passes = len(daemon.events("pass_finished"))
        wait_for(lambda: len(daemon.events("pass_finished")) >= passes + 3, TIMEOUT, what="three more passes")
        assert reverter.reverts >= 3
    status = run_cli("status", "--listen", daemon.url.removeprefix("http://"), env=moto_server.env())
    assert "Held (suspended, fighting)" in status.stdout
    assert daemon.terminate() == 0
    found = rows(history)
    corrections = [r for r in found if r["name"] == "api" and r["action"] == "update_service"]
    assert [r["outcome"] for r in corrections] == ["applied"] * 3  # no 4th UpdateService
    [fight] = [r for r in found if r["action"] == "fight_detected"]
    assert (fight["name"], fight["target"], fight["outcome"]) == ("api", "prod/api", "conflict")
    assert fight["before"] == {"desiredCount": [1, 1, 1, 1]}
    assert fight["after"]["desiredCount"] == 3
    assert [r["after"] for r in found if r["name"] == "web" and r["action"] == "update_service"] == [
        {"desiredCount": 2}
    ]
