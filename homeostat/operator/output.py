"""Human and machine renderings of plans, reports and history rows."""

import json
from collections.abc import Sequence
from typing import Any

from homeostat.operator.clock import rfc3339
from homeostat.operator.passes import ResourceStatus
from homeostat.operator.records import ACTION_FIELDS, ActionRecord, action_view
from homeostat.reconcilers.actions import Action, Plan

PLAN_FORMAT_VERSION = 1


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def change_text(action: Action | ActionRecord) -> str:
    keys = sorted(set(action.before) | set(action.after))
    return ", ".join(
        f"{k}: {_compact(action.before.get(k))} -> {_compact(action.after.get(k))}" for k in keys
    )


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)


# The record fields a `plan --json` action carries: kind and name are its resource's.
PLAN_ACTION_FIELDS = tuple(f for f in ACTION_FIELDS if f not in {"kind", "name"})


def _plan_action(action: Action) -> dict[str, Any]:
    view = action_view(action)
    return {name: view[name] for name in PLAN_ACTION_FIELDS}


def plan_json(revision: str, plans: Sequence[Plan], skipped: Sequence[ResourceStatus]) -> dict[str, Any]:
    """The documented, stable `plan --json` document (formatVersion 1)."""
    resources = []
    for plan in plans:
        resources.append(
            {
                "kind": str(plan.kind),
                "name": plan.name,
                "inSync": plan.in_sync,
                "error": plan.error,
                "notes": list(plan.notes),
                "actions": [_plan_action(a) for a in plan.actions],
            }
        )
    for status in skipped:
        resources.append(
            {
                "kind": str(status.kind),
                "name": status.name,
                "inSync": None,
                "error": None,
                "notes": [status.message],
                "actions": [],
                "state": str(status.state),
            }
        )
    resources.sort(key=lambda r: (r["kind"], r["name"]))
    return {
        "formatVersion": PLAN_FORMAT_VERSION,
        "revision": revision,
        "inSync": all(p.in_sync for p in plans),
        "summary": {
            "resources": len(resources),
            "inSync": sum(1 for p in plans if p.in_sync),
            "toChange": sum(1 for p in plans if p.actions and not p.has_conflict and p.error is None),
            "conflicts": sum(1 for p in plans if p.has_conflict),
            "errors": sum(1 for p in plans if p.error is not None),
            "skipped": len(skipped),
        },
        "resources": resources,
    }


def plan_text(document: dict[str, Any]) -> str:
    rows: list[list[str]] = [["KIND", "NAME", "ACTION", "TARGET", "CHANGE", "REASON"]]
    notes: list[str] = []
    for resource in document["resources"]:
        for action in resource["actions"]:
            label = action["action"] + (" (CONFLICT)" if action["conflict"] else "")
            reason = action["reason"] + (f"; {action['conflict']}" if action["conflict"] else "")
            change = ", ".join(
                f"{k}: {_compact(action['before'].get(k))} -> {_compact(action['after'].get(k))}"
                for k in sorted(set(action["before"]) | set(action["after"]))
            )
            rows.append([resource["kind"], resource["name"], label, action["target"], change, reason])
        if resource["error"]:
            rows.append([resource["kind"], resource["name"], "(error)", "-", "-", resource["error"]])
        for note in resource["notes"]:
            notes.append(f"  {resource['kind']}/{resource['name']}: {note}")
    s = document["summary"]
    lines = [f"revision {document['revision']}"]
    lines.append(_table(rows) if len(rows) > 1 else "no changes: everything is in sync")
    if notes:
        lines.append("notes:")
        lines.extend(notes)
    lines.append(
        f"{s['resources']} resources: {s['inSync']} in sync, {s['toChange']} to change, "
        f"{s['conflicts']} conflicts, {s['errors']} errors, {s['skipped']} skipped"
    )
    return "\n".join(lines)


def history_text(records: Sequence[ActionRecord]) -> str:
    if not records:
        return "no history rows match"
    rows = [["TIME", "KIND", "NAME", "ACTION", "OUTCOME", "CHANGE", "REASON", "REVISION"]]
    for r in records:
        reason = r.reason + (f"; conflict: {r.conflict}" if r.conflict else "")
        reason += f" (error: {r.error})" if r.error else ""
        rows.append(
            [
                rfc3339(r.time, timespec="seconds"),
                r.kind,
                r.name,
                r.action,
                str(r.outcome),
                change_text(r),
                reason,
                r.revision,
            ]
        )
    return _table(rows)


def report_text(statuses: Sequence[ResourceStatus]) -> str:
    rows = [["KIND", "NAME", "STATE", "MESSAGE"]]
    ordered = sorted(statuses, key=lambda s: (s.kind, s.name))
    rows.extend([str(s.kind), s.name, str(s.state), s.message] for s in ordered)
    return _table(rows)
