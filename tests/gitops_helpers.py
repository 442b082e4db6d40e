"""Helpers of the GitOps end-to-end tests: seed moto's ECS, run the real daemon, poll.

The daemon runs as a subprocess (`python -m homeostat run`) against moto's
threaded server; tests poll observable effects (moto, /status, the history
database) with a deadline instead of sleeping.
"""

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests

from homeostat.operator.history import HistoryQuery, HistoryStore
from homeostat.operator.records import ActionRecord
from tests.conftest import MotoServer, free_port
from tests.waiting import stop_process
from tests.waiting import wait_for as poll

CLUSTER = "shop-production"
SERVICES = ("api", "web")
T = TypeVar("T")


def seed_ecs(moto: MotoServer, counts: dict[str, int] | None = None) -> None:
    """A cluster with services `shop-production-<name>` running task definition `<name>:1`."""
    ecs = moto.client("ecs")
    ecs.create_cluster(clusterName=CLUSTER)
    for name in SERVICES:
        family = f"shop-production-{name}"
        ecs.register_task_definition(
            family=family, containerDefinitions=[{"name": name, "image": "nginx", "memory": 128}]
        )
        ecs.create_service(
            cluster=CLUSTER,
            serviceName=family,
            taskDefinition=f"{family}:1",
            desiredCount=(counts or {}).get(name, 1),
        )


def desired_count(moto: MotoServer, name: str) -> int:
    service = moto.client("ecs").describe_services(cluster=CLUSTER, services=[f"shop-production-{name}"])
    return int(service["services"][0]["desiredCount"])


def set_desired_count(moto: MotoServer, name: str, count: int) -> None:
    """Drift made by hand, behind homeostat's back."""
    moto.client("ecs").update_service(cluster=CLUSTER, service=f"shop-production-{name}", desiredCount=count)


def service_manifest(name: str, count: int) -> str:
    return (
        "# yaml-language-server: $schema=../homeostat.schema.json\n"
        "apiVersion: homeostat/v1\n"
        "kind: ECSService\n"
        "metadata:\n"
        f"  name: {name}\n"
        "spec:\n"
        f"  cluster: {CLUSTER}\n"
        f"  service: shop-production-{name}\n"
        f"  desiredCount: {count}\n"
    )


def write_atomically(path: Path, text: str) -> None:
    """Write through a temporary file and rename, as editors and git do."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.1) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` s."""
    result: T = poll(probe, timeout, interval=interval, what=what)
    return result


def history(url: str, **filters: Any) -> list[ActionRecord]:
    store = HistoryStore(url)
    try:
        return store.query(HistoryQuery(limit=1000, **filters))
    finally:
        store.close()


@dataclass
class DaemonProcess:
    """A running `homeostat run` subprocess and how to reach it."""

    process: subprocess.Popen[str]
    url: str
    log_path: Path
    lines: list[dict[str, Any]] = field(default_factory=list)

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.url}{path}", timeout=5)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/status").json()
        return result

    def resource(self, kind: str, name: str) -> dict[str, Any] | None:
        for entry in self.status()["resources"]:
            if entry["kind"] == kind and entry["name"] == name:
                return dict(entry)
        return None

    def metric(self, name: str) -> float | None:
        for line in self.get("/metrics").text.splitlines():
            if line.startswith((name + " ", name + "{")):
                return float(line.rsplit(" ", 1)[1])
        return None

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_path.read_text().splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return events


@contextmanager
def running_daemon(
    moto: MotoServer, desired_state: Path, history_url: str, workdir: Path, resync: int = 300
) -> Iterator[DaemonProcess]:
    """Start the real daemon, wait until /readyz answers 200, SIGTERM it on the way out."""
    port = free_port()
    log_path = workdir / f"daemon-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "homeostat",
                "run",
                "--desired-state",
                str(desired_state),
                "--history",
                history_url,
                "--listen",
                f"127.0.0.1:{port}",
                "--resync",
                str(resync),
                "--log-format",
                "json",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=moto.env(),
            cwd=workdir,
        )
    daemon = DaemonProcess(process, f"http://127.0.0.1:{port}", log_path)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"daemon exited {process.returncode}:\n{log_path.read_text()}")
            return daemon.get("/readyz").status_code == 200

        wait_for("the daemon to be ready", ready, timeout=30)
        yield daemon
    finally:
        stop_process(process)
    assert process.returncode == 0, f"daemon exited {process.returncode}:\n{log_path.read_text()}"
