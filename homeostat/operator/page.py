"""The read-only HTML page at `/`: what the daemon sees, for people (contract section 5).

A pure function of the `/status` document and the newest history rows (as `history --json` prints
them), so the page cannot say anything the other views do not. Server-rendered, no JavaScript; the
browser refreshes it (`<meta http-equiv="refresh">`). Every value that comes from a manifest or from AWS
(names, reasons, errors, targets) is HTML-escaped: a resource named in a manifest or an alarm name is
text, never markup.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from homeostat.operator.values import change_text, region_cells, region_column, value_text

PAGE_HISTORY_ROWS = 50
# States shown in red, amber or green; anything else is shown plain.
_BAD = frozenset({"Error", "Conflict", "DeploymentFailed", "Fighting"})
_WARN = frozenset({"Drifted", "BackingOff", "Suspended", "Deploying"})
_GOOD = frozenset({"InSync", "Fixed"})

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem;
  color:#1d1d1f;background:#fafafa}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
.meta{color:#555;margin:0 0 1rem}.meta code{background:#eee;padding:0 .3rem;border-radius:3px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.9rem}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e3e3e3;vertical-align:top}
td.wrap{overflow-wrap:anywhere;min-width:8rem}table+table,table+p{margin-top:1rem}
th{background:#f0f0f0;font-weight:600}td.nw{white-space:nowrap}
.state{font-weight:600;border-radius:3px;padding:0 .35rem;white-space:nowrap}
.bad{background:#fde2e1;color:#a1130b}.warn{background:#fff1cc;color:#7a5500}.good{background:#dff5e3;color:#146c2e}
.banner{padding:.6rem .8rem;border-radius:4px;margin:.8rem 0}.banner.bad{border:1px solid #f3a29c}
.banner.good{border:1px solid #9fd9ab}.empty{color:#777;font-style:italic}
ul.errors{margin:.3rem 0 0 1.2rem;padding:0;font-family:ui-monospace,monospace;font-size:.85rem}
"""


def instant_text(value: Any) -> Any:
    """An RFC 3339 instant to the second, as people read it (`/status` keeps the fraction)."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", value):
        return value.split(".", 1)[0] + "Z"
    return value


def _cell(value: Any, css: str = "") -> str:
    attribute = f' class="{css}"' if css else ""
    return f"<td{attribute}>{escape(value_text(value)) if value is not None else ''}</td>"


def state_style(state: str) -> str:
    """bad, warn, good or "" for a resource state: one colour scheme for the page and the console."""
    return "bad" if state in _BAD else "warn" if state in _WARN else "good" if state in _GOOD else ""


def _state(state: str) -> str:
    return f'<td><span class="state {state_style(state)}">{escape(state)}</span></td>'


def _table(headers: Sequence[str], rows: Iterable[str], empty: str) -> str:
    body = "".join(rows)
    if not body:
        return f'<p class="empty">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _banner(status: Mapping[str, Any]) -> str:
    revision = status.get("revision") or "none"
    if status.get("valid", False):
        code = f"<code>{escape(revision)}</code>"
        return f'<div class="banner good">Desired state valid: revision {code} in force.</div>'
    rejected = status.get("rejectedRevision")
    errors = "".join(f"<li>{escape(str(e))}</li>" for e in status.get("rejectedErrors") or ())
    what = f"revision <code>{escape(str(rejected))}</code> rejected" if rejected else "no valid desired state"
    return (
        f'<div class="banner bad"><strong>Desired state invalid:</strong> {what}; '
        f"revision <code>{escape(revision)}</code> stays in force.<ul class=errors>{errors}</ul></div>"
    )


RESOURCE_HEADERS = ("Kind", "Name", "State", "Since", "Message")


def _resource_table(resources: Sequence[Mapping[str, Any]], regional: bool, empty: str) -> str:
    """Resources, with a Region column when the page's resources span several regions."""
    headers = (*RESOURCE_HEADERS[:2], *(("Region",) if regional else ()), *RESOURCE_HEADERS[2:])
    return _table(headers, _resource_rows(resources, regional), empty)


def _resource_rows(resources: Sequence[Mapping[str, Any]], regional: bool) -> Iterable[str]:
    for r in resources:
        hold = r.get("suspension") or {}
        message = r.get("message") or ""
        if hold:
            # The hold says it all (the message of a bounded hold repeats it): said once.
            message = f"held until {hold.get('until')}: {hold.get('reason')}"
        yield (
            "<tr>"
            + _cell(r.get("kind"), "nw")
            + _cell(r.get("name"), "nw")
            + "".join(_cell(cell, "nw") for cell in region_cells(regional, r.get("region")))
            + _state(str(r.get("state", "")))
            + _cell(instant_text(r.get("lastReconcile")), "nw")
            + _cell(message, "wrap")
            + "</tr>"
        )


def _history_rows(rows: Sequence[Mapping[str, Any]]) -> Iterable[str]:
    for row in rows[:PAGE_HISTORY_ROWS]:
        outcome = str(row.get("outcome", ""))
        css = (
            "bad"
            if outcome in {"failed", "conflict", "interrupted"}
            else "good"
            if outcome == "applied"
            else ""
        )
        yield (
            "<tr>"
            + _cell(instant_text(row.get("time")), "nw")
            + _cell(f"{row.get('kind')}/{row.get('name')}", "nw")
            + _cell(row.get("action"), "nw")
            + _cell(row.get("target"), "wrap")
            + f'<td><span class="state {css}">{escape(outcome)}</span></td>'
            + _cell(change_text(row.get("before") or {}, row.get("after") or {}), "wrap")
            + _cell(row.get("error") or row.get("reason"), "wrap")
            + "</tr>"
        )


def _schedule_rows(status: Mapping[str, Any]) -> Iterable[str]:
    for window in status.get("windows") or ():
        state = "active" if window.get("active") else "next"
        yield (
            "<tr>"
            + _cell("maintenance window")
            + _cell(window.get("name"))
            + _cell(state)
            + _cell(window.get("start"))
            + _cell(window.get("end"))
            + "</tr>"
        )
    for slot in status.get("slots") or ():
        yield (
            "<tr>"
            + _cell("snapshot slot")
            + _cell(slot.get("name"))
            + _cell("next")
            + _cell(slot.get("at"))
            + _cell(None)
            + "</tr>"
        )


def _health(health: Mapping[str, Any]) -> list[str]:
    """The runbook's morning health check, as the daemon observed it (no AWS call of the page)."""
    services = [
        "<tr>"
        + _cell(s.get("name"), "nw")
        + _cell(s.get("running"), "" if s.get("running") == s.get("desired") else "warn")
        + _cell(s.get("desired"))
        + _cell(s.get("rollout"))
        + "</tr>"
        for s in health.get("services") or ()
    ]
    clusters = [
        "<tr>"
        + _cell(c.get("name"), "nw")
        + _cell(c.get("status"), "" if c.get("status") == "available" else "warn")
        + _cell(c.get("newestSnapshotAge"))
        + "</tr>"
        for c in health.get("clusters") or ()
    ]
    alarms = health.get("alarmsInAlarm")
    if alarms is None:
        in_alarm = '<p class="empty">No managed alarms observed.</p>'
    elif not alarms:
        in_alarm = '<p><span class="state good">none</span> of the managed alarms is in ALARM.</p>'
    else:
        items = "".join(f'<li><span class="state bad">{escape(str(a))}</span></li>' for a in alarms)
        in_alarm = f"<p>Managed alarms in ALARM:</p><ul>{items}</ul>"
    return [
        "<h2>Health check</h2>",
        _table(("Service", "Running", "Desired", "Rollout"), services, "No services observed."),
        _table(("Aurora cluster", "Status", "Newest snapshot age"), clusters, "No Aurora clusters observed."),
        in_alarm,
    ]


def render_page(
    status: Mapping[str, Any], history: Sequence[Mapping[str, Any]], *, refresh_seconds: int
) -> str:
    """The whole page. Pure: the same documents always give the same bytes."""
    resources = list(status.get("resources") or ())
    held = [r for r in resources if r.get("state") in {"Suspended", "Fighting"}]
    regional = region_column(r.get("region") for r in resources)
    sections = [
        "<h2>Resources</h2>",
        _resource_table(resources, regional, "No resources reconciled yet."),
        *_health(status.get("health") or {}),
        "<h2>Held: suspended and fighting</h2>",
        _resource_table(held, regional, "Nothing is held."),
        "<h2>Maintenance windows and snapshot slots</h2>",
        _table(
            ("What", "Name", "When", "Start", "End"),
            _schedule_rows(status),
            "No maintenance windows or snapshot schedules.",
        ),
        f"<h2>History: the last {PAGE_HISTORY_ROWS} rows</h2>",
        _table(
            ("Time", "Resource", "Action", "Target", "Outcome", "Change", "Reason or error"),
            _history_rows(history),
            "No history rows yet.",
        ),
    ]
    last = instant_text(status.get("lastPass")) or "no pass yet"
    shard = status.get("selector")  # --selector: the labels this daemon's resources match
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>homeostat</title><style>{_STYLE}</style></head><body>"
        "<h1>homeostat</h1>"
        + (f'<p class="meta">Shard: <code>{escape(str(shard))}</code></p>' if shard else "")
        + f'<p class="meta">Last pass: <code>{escape(str(last))}</code>'
        f" · passes: {int(status.get('passes') or 0)}"
        f" · this page refreshes every {int(refresh_seconds)} s</p>"
        + _banner(status)
        + "".join(sections)
        + "</body></html>\n"
    )
