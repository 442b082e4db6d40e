"""Human and machine renderings of plans, reports and history rows.

Values in the human views go through `values.value_text`/`change_text` (one rendering
everywhere); the machine views keep the stored values whole.
"""

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from homeostat.operator.clock import rfc3339
from homeostat.operator.records import ACTION_FIELDS, ActionRecord, action_view
from homeostat.operator.statuses import ResourceStatus
from homeostat.operator.values import change_text, region_cells, region_column, value_text
from homeostat.reconcilers.actions import Action, Plan

if TYPE_CHECKING:
    from rich.table import Table

PLAN_FORMAT_VERSION = 1
# A revision in the human history table: enough of it to tell revisions apart (full with --wide).
SHORT_REVISION = 12


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)


# The record fields a `plan --json` action carries: kind and name are its resource's.
PLAN_ACTION_FIELDS = tuple(f for f in ACTION_FIELDS if f not in {"kind", "name"})


def _plan_action(action: Action) -> dict[str, Any]:
    view = action_view(action)
    return {name: view[name] for name in PLAN_ACTION_FIELDS}


def plan_json(
    revision: str,
    plans: Sequence[Plan],
    skipped: Sequence[ResourceStatus],
    regions: Mapping[tuple[str, str], str | None] | None = None,
) -> dict[str, Any]:
    """The documented, stable `plan --json` document (formatVersion 1). `regions`: each planned
    resource's region by (kind, name) (a skipped one's status carries its own)."""
    resources = []
    for plan in plans:
        resources.append(
            {
                "kind": str(plan.kind),
                "name": plan.name,
                "region": (regions or {}).get((str(plan.kind), plan.name)),
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
                "region": status.region,
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


def plan_text(document: dict[str, Any], *, wide: bool = False) -> str:
    regional = region_column(r.get("region") for r in document["resources"])
    rows: list[list[str]] = [
        ["KIND", "NAME", *(["REGION"] if regional else []), "ACTION", "TARGET", "CHANGE", "REASON"]
    ]
    notes: list[str] = []
    for resource in document["resources"]:
        names = [resource["kind"], resource["name"], *region_cells(regional, resource.get("region"))]
        for action in resource["actions"]:
            label = action["action"] + (" (CONFLICT)" if action["conflict"] else "")
            reason = action["reason"] + (f"; {action['conflict']}" if action["conflict"] else "")
            change = change_text(action["before"], action["after"], wide=wide)
            target = value_text(action["target"], wide=wide)
            rows.append([*names, label, target, change, reason])
        if resource["error"]:
            rows.append([*names, "(error)", "-", "-", resource["error"]])
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


def history_table(records: Sequence[ActionRecord], *, wide: bool, header: bool = True) -> "Table":
    """The history rows as a table rich fits to the terminal: identifying columns are cut with
    an ellipsis, change and reason fold; `wide` cuts nothing and prints full ARNs and revisions."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_header=header, header_style="bold", pad_edge=False)
    for column in ("TIME", "KIND", "NAME", "ACTION", "TARGET", "OUTCOME"):
        table.add_column(column, no_wrap=True, overflow="fold" if wide else "ellipsis")
    table.add_column("CHANGE", overflow="fold", ratio=2)
    table.add_column("REASON", overflow="fold", ratio=3)
    table.add_column("REVISION", no_wrap=True, overflow="fold" if wide else "ellipsis")
    for r in records:
        reason = r.reason + (f"; conflict: {r.conflict}" if r.conflict else "")
        reason += f" (error: {r.error})" if r.error else ""
        outcome = str(r.outcome)
        bad = outcome in {"failed", "conflict", "interrupted"}
        # Text, never markup: names and reasons come from manifests and AWS.
        table.add_row(
            Text(rfc3339(r.time, timespec="seconds")),
            Text(r.kind),
            Text(r.name),
            Text(r.action),
            Text(value_text(r.target, wide=wide)),
            Text(outcome, style="red" if bad else "green" if outcome == "applied" else ""),
            Text(change_text(r.before, r.after, wide=wide)),
            Text(reason),
            Text(r.revision if wide else r.revision[:SHORT_REVISION]),
        )
    return table


def history_text(records: Sequence[ActionRecord], *, wide: bool = False, width: int | None = None) -> str:
    """The history table as text: fitted to `width`, or whole rows when None (off a terminal)."""
    if not records:
        return "no history rows match"
    from rich.console import Console

    from homeostat.operator.console import PIPE_WIDTH

    out = io.StringIO()
    Console(file=out, width=width or PIPE_WIDTH, color_system=None).print(history_table(records, wide=wide))
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def report_text(statuses: Sequence[ResourceStatus]) -> str:
    regional = region_column(s.region for s in statuses)
    rows = [["KIND", "NAME", *(["REGION"] if regional else []), "STATE", "MESSAGE"]]
    ordered = sorted(statuses, key=lambda s: (s.kind, s.name))
    rows.extend(
        [str(s.kind), s.name, *region_cells(regional, s.region), str(s.state), s.message] for s in ordered
    )
    return _table(rows)
