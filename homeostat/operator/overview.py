"""The top-level `windows`, `slots` and `health` of `/status`, derived from the plans' facts.

Each reconciler's diff puts what it observed into its plan's `facts` (reconcilers/actions.py:
Plan); this module only regroups them, so `homeostat status`, the page and `status --json` show
the morning health check of the runbook without a single AWS call of their own. Pure.
"""

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from homeostat.operator.statuses import ResourceStatus
from homeostat.reconcilers.snapshot_policy import human_duration


def _facts(statuses: Sequence[ResourceStatus], key: str) -> list[tuple[str, Mapping[str, Any]]]:
    """The facts of the resources whose plan set `key`. By key, not by kind: the kinds are an
    open vocabulary (the registry's), the fact keys are this module's (Plan documents them)."""
    return [(s.name, s.plan.facts) for s in statuses if s.plan is not None and key in s.plan.facts]


def windows(statuses: Sequence[ResourceStatus]) -> list[dict[str, Any]]:
    """Every maintenance window: the occurrence active now, else the next one; active ones first."""
    found = [
        {"name": name, "active": bool(f.get("active")), "start": f.get("start"), "end": f.get("end")}
        for name, f in _facts(statuses, "active")
    ]
    return sorted(found, key=lambda w: (not w["active"], w["start"] or "~", w["name"]))


def slots(statuses: Sequence[ResourceStatus]) -> list[dict[str, Any]]:
    """The next snapshot slot of every scheduled SnapshotRetention, soonest first."""
    found = [
        {"name": name, "cluster": f.get("cluster"), "at": f["nextSlot"]}
        for name, f in _facts(statuses, "nextSlot")
        if f["nextSlot"]
    ]
    return sorted(found, key=lambda s: (s["at"], s["name"]))


def _age_text(seconds: Any) -> str | None:
    return None if seconds is None else human_duration(timedelta(seconds=float(seconds)), 2)


def health(statuses: Sequence[ResourceStatus]) -> dict[str, Any]:
    """The runbook's morning health check: tasks per service, Aurora clusters (status and the
    newest snapshot's age; one row per cluster whether a SnapshotRetention or an AuroraCluster
    names it, with the youngest snapshot any resource of it saw),
    and the managed alarms now in ALARM (null when no alarm kind was observed)."""
    services = [
        {"name": name, "running": f.get("running"), "desired": f.get("desired"), "rollout": f.get("rollout")}
        for name, f in _facts(statuses, "running")
    ]
    clusters: dict[str, dict[str, Any]] = {}
    for _, f in _facts(statuses, "cluster"):
        name = str(f.get("cluster"))
        row = clusters.setdefault(
            name.lower(), {"name": name, "status": None, "newestSnapshotAgeSeconds": None}
        )
        row["status"] = row["status"] or f.get("clusterStatus")
        age = f.get("newestSnapshotAgeSeconds")
        if age is not None and (
            row["newestSnapshotAgeSeconds"] is None or age < row["newestSnapshotAgeSeconds"]
        ):
            row["newestSnapshotAgeSeconds"] = age
    for row in clusters.values():
        row["newestSnapshotAge"] = _age_text(row["newestSnapshotAgeSeconds"])
    alarm_facts = [f["alarmsInAlarm"] for _, f in _facts(statuses, "alarmsInAlarm")]
    return {
        "services": sorted(services, key=lambda s: s["name"]),
        "clusters": [clusters[c] for c in sorted(clusters)],
        "alarmsInAlarm": sorted({a for names in alarm_facts for a in names}) if alarm_facts else None,
    }


def overview(statuses: Sequence[ResourceStatus]) -> dict[str, Any]:
    """The three derived sections of `/status`."""
    return {"windows": windows(statuses), "slots": slots(statuses), "health": health(statuses)}
