"""Locating and running Prometheus' own tools (promtool, prometheus) for the observability tests.

`make test` installs Debian's `prometheus` package first
(deploy/prometheus/ensure-prometheus.sh). When the tools are still missing
the tests fail with a message saying how to get them: nothing is skipped.
Prometheus only ever listens on, and scrapes, 127.0.0.1.
"""

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client import CollectorRegistry

from homeostat.metrics import Metrics
from homeostat.reconcilers.registry import gauges
from tests.conftest import REPO, free_port
from tests.waiting import stop_process

DEPLOY = REPO / "deploy"
DASHBOARD = DEPLOY / "grafana" / "homeostat-dashboard.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yaml"
SCRAPE_CONFIG = DEPLOY / "prometheus" / "scrape-config.yaml"
ENSURE_SCRIPT = DEPLOY / "prometheus" / "ensure-prometheus.sh"

# Where Prometheus' binaries live besides PATH (Debian's package puts them in /usr/bin).
EXTRA_DIRS = ("/usr/bin", "/usr/local/bin", "/opt/prometheus")


def locate(tool: str) -> str:
    """The path of `tool` (promtool or prometheus); fails the test when it is not installed."""
    found = shutil.which(tool) or shutil.which(tool, path=os.pathsep.join(EXTRA_DIRS))
    if found is None:
        pytest.fail(
            f"`{tool}` is not installed: these tests need a real Prometheus. Run "
            f"`{ENSURE_SCRIPT.relative_to(REPO)}` as root (installs Debian's `prometheus` package; "
            "`make test` does this), or put the prometheus/promtool release binaries on PATH.",
            pytrace=False,
        )
    return found


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [locate("promtool"), *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


# -- what homeostat exports -----------------------------------------------------------------


def exported_names(metrics: Metrics) -> set[str]:
    """Series names /metrics can carry: counters add _total, histograms _bucket/_sum/_count."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gauge": ("",),
    }
    names: set[str] = set()
    for family in metrics.registry.collect():
        names.update(family.name + suffix for suffix in suffixes[family.type])
    return names


EXPORTED = exported_names(Metrics(CollectorRegistry(), gauges()))


# -- PromQL in the dashboard and the rules -------------------------------------------------

PROMQL_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
    | {"offset", "atan2", "inf", "nan"}
)
# Series Prometheus makes itself rather than homeostat exporting them.
PROMETHEUS_SERIES = frozenset({"up"})


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords). Pure."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def dashboard() -> dict[str, Any]:
    import json

    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_queries(board: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(panel title, refId, target) for every query of every panel, rows included."""
    out = []
    for panel in board["panels"]:
        for child in [panel, *panel.get("panels", [])]:
            for target in child.get("targets", []):
                out.append((child["title"], target["refId"], target))
    return out


def alert_rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(ALERTS.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


# -- a real Prometheus on 127.0.0.1 ---------------------------------------------------------


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def get(self, path: str, **params: str) -> dict[str, Any]:
        response = requests.get(self.url + path, params=params, timeout=10)
        body: dict[str, Any] = response.json()
        return body

    def query(self, expr: str, **params: str) -> dict[str, Any]:
        """/api/v1/query; the JSON answer whatever its status (errors included)."""
        return self.get("/api/v1/query", query=expr, **params)

    def query_range(self, expr: str, start: float, end: float, step: str) -> dict[str, Any]:
        return self.get("/api/v1/query_range", query=expr, start=str(start), end=str(end), step=step)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_prometheus(
    workdir: Path, targets: list[str], scrape_interval: str = "1s"
) -> Iterator[Prometheus]:
    """Start Prometheus on a free 127.0.0.1 port scraping `targets` (job `homeostat`); always stop it."""
    binary = locate("prometheus")
    for target in targets:
        assert target.startswith("127.0.0.1:"), "tests scrape 127.0.0.1 only"
    port = free_port()
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": "homeostat",
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "static_configs": [{"targets": targets}],
            }
        ],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    storage = workdir / "prometheus-data"
    storage.mkdir()
    log_path = workdir / "prometheus.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={storage}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    prometheus = Prometheus(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited with {process.returncode}: {prometheus.log_text()}")
            try:
                if requests.get(prometheus.url + "/-/ready", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus not ready after 30 s: {prometheus.log_text()}")
            time.sleep(0.2)
        yield prometheus
    finally:
        stop_process(process)
        log.close()
