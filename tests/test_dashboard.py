"""The Grafana dashboard: importable structure, the datasource variable everywhere, real metric names."""

import re
from typing import Any

import pytest

from tests.prometheus_tools import (
    EXPORTED,
    PROMETHEUS_SERIES,
    alert_rules,
    dashboard,
    dashboard_queries,
    metric_names,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# What the issue asks the dashboard to chart, and a phrase of the panel title that charts it.
REQUIRED_PANELS = (
    "in sync vs drifted per kind",
    "drift over time",
    "actions per kind and outcome",
    "reconcile errors",
    "reconcile duration quantiles",
    "aws api calls per service",
    "aws throttling per service",
    "desired state valid",
    "revision in force",
    "active maintenance windows",
    "newest snapshot age per retention policy",
    "time since last pass",
    "fighting resources",
)


def all_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [child for panel in board["panels"] for child in [panel, *panel.get("panels", [])]]


def test_exported_names_follow_the_exposition_format() -> None:
    """Counters are exposed with _total, histograms with _bucket/_sum/_count, gauges as named."""
    assert "homeostat_reconcile_total" in EXPORTED
    assert "homeostat_reconcile" not in EXPORTED
    assert {
        "homeostat_reconcile_duration_seconds_bucket",
        "homeostat_reconcile_duration_seconds_count",
    } <= EXPORTED
    assert "homeostat_reconcile_duration_seconds" not in EXPORTED
    assert "homeostat_maintenance_window_active" in EXPORTED


def test_dashboard_is_a_current_schema_dashboard_with_datasource_and_instance_variables() -> None:
    """A current-schema dashboard with a prometheus datasource variable and an instance variable."""
    board = dashboard()
    assert board["schemaVersion"] >= 36
    assert board["uid"]
    assert board["title"]
    assert board["id"] is None, "an importable dashboard carries no database id"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    instance = variables["instance"]
    assert instance["type"] == "query"
    assert instance["datasource"] == DATASOURCE
    assert instance["query"]["query"] == "label_values(homeostat_build_info, instance)"


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    """Every panel has its own id, and no two panels share a grid cell on the 24-column grid."""
    panels = all_panels(dashboard())
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_panel_and_query_uses_the_datasource_variable() -> None:
    """Each panel and each of its queries names `${datasource}`, so the dashboard works on any Prometheus."""
    for panel in all_panels(dashboard()):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


def test_every_query_filters_on_the_instance_variable() -> None:
    """Every homeostat selector in a panel query is restricted to the chosen instances."""
    for title, ref, target in dashboard_queries(dashboard()):
        selectors = re.findall(r"\b(?:homeostat_\w+|up)(\{[^}]*\})?", target["expr"])
        assert selectors, f"{title} {ref} selects nothing"
        for labels in selectors:
            assert 'instance=~"$instance"' in labels, f"{title} {ref}: {target['expr']}"


def test_panels_cover_everything_the_issue_asks_for() -> None:
    """There is a panel for each item of the issue's list."""
    titles = [panel["title"].lower().replace("-", " ") for panel in all_panels(dashboard())]
    for wanted in REQUIRED_PANELS:
        assert any(wanted in title for title in titles), wanted


@pytest.mark.parametrize(
    ("title", "ref", "expr"),
    [(t, r, target["expr"]) for t, r, target in dashboard_queries(dashboard())],
)
def test_every_metric_a_panel_names_is_exported_by_homeostat(title: str, ref: str, expr: str) -> None:
    """Each metric a panel query selects is one homeostat.metrics.Metrics exports (or Prometheus' `up`)."""
    names = metric_names(expr)
    assert names, expr
    unknown = names - EXPORTED - PROMETHEUS_SERIES
    assert not unknown, f"panel {title!r} query {ref} names metrics homeostat does not export: {unknown}"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_metric_an_alert_names_is_exported_by_homeostat(rule: dict[str, Any]) -> None:
    """Each metric an alert expression selects is one homeostat exports (or Prometheus' `up`)."""
    names = metric_names(rule["expr"])
    assert names, rule["expr"]
    assert not names - EXPORTED - PROMETHEUS_SERIES, names - EXPORTED - PROMETHEUS_SERIES


def test_metric_name_extraction_sees_metrics_not_functions_labels_or_keywords() -> None:
    """metric_names picks selectors out of PromQL and ignores functions, grouping labels and keywords."""
    expr = (
        'sum by (kind, le) (rate(homeostat_reconcile_duration_seconds_bucket{instance=~"$instance"}[5m]))'
        " / on (kind) group_left sum without (name) (homeostat_resource_in_sync)"
        " or time() - homeostat_last_pass_timestamp_seconds offset 5m > bool 3 * 60"
        ' and absent(up{job="homeostat"}) unless homeostat_typo_metric'
    )
    assert metric_names(expr) == {
        "homeostat_reconcile_duration_seconds_bucket",
        "homeostat_resource_in_sync",
        "homeostat_last_pass_timestamp_seconds",
        "up",
        "homeostat_typo_metric",
    }
