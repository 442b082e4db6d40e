"""Running the real daemon as a subprocess in tests, and seeding moto's server."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from tests.conftest import MotoServer, free_port
from tests.waiting import wait_for

CLUSTER = "prod"


def seed_services(moto: MotoServer, counts: dict[str, int], cluster: str = CLUSTER) -> Any:
    ecs = moto.client("ecs")
    ecs.create_cluster(clusterName=cluster)
    for name, count in counts.items():
        for _ in range(2):
            ecs.register_task_definition(
                family=name, containerDefinitions=[{"name": name, "image": "x", "memory": 128}]
            )
        ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=f"{name}:1", desiredCount=count)
    return ecs


def service_manifest(name: str, count: int, cluster: str = CLUSTER) -> str:
    return (
        f"apiVersion: homeostat/v1\nkind: ECSService\nmetadata:\n  name: {name}\n"
        f"spec:\n  cluster: {cluster}\n  service: {name}\n  desiredCount: {count}\n"
    )


def desired_count(ecs: Any, name: str, cluster: str = CLUSTER) -> int:
    return int(ecs.describe_services(cluster=cluster, services=[name])["services"][0]["desiredCount"])


class DaemonProcess:
    """`python -m homeostat run ...` with its stderr (JSON log lines) kept in a file."""

    def __init__(
        self,
        moto: MotoServer,
        desired: Path,
        history: str,
        *extra: str,
        env: dict[str, str] | None = None,
        log_dir: Path,
        prefix: tuple[str, ...] = (),
    ) -> None:
        """`prefix` runs the daemon under a wrapper command (e.g. setpriv dropping capabilities)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"daemon-{self.port}.log"
        args = [
            *prefix,
            sys.executable,
            "-m",
            "homeostat",
            "run",
            "--desired-state",
            str(desired),
            "--history",
            history,
            "--listen",
            f"127.0.0.1:{self.port}",
            "--log-format",
            "json",
            *extra,
        ]
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, env=env if env is not None else moto.env()
        )

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, timeout=5)

    def wait_ready(self, timeout: float = 30) -> None:
        wait_for(
            lambda: self.process.poll() is None and self.get("/readyz").status_code == 200,
            timeout,
            what=f"/readyz 200; log: {self.log_text()[-2000:]}",
        )

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if name is None or event.get("event") == name:
                out.append(event)
        return out

    def log_text(self) -> str:
        return self.log_path.read_text()

    def terminate(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._log.close()
