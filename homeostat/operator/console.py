"""`homeostat status` for a terminal: the running daemon's `/status` document as tables.

A view of the same document the page at `/` and `status --json` show, so the three cannot disagree.
rich fits the tables to the terminal's width and decides colour: never when `NO_COLOR` is set or the
output is not a terminal. The morning health check (tasks per service, Aurora clusters, alarms in
ALARM) is printed when the daemon's document carries it: it comes from what the daemon already
observed, never from AWS calls of this command.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from homeostat.operator.page import instant_text, state_style
from homeostat.operator.values import region_cells, region_column, value_text

_STYLES = {"bad": "bold red", "warn": "yellow", "good": "green", "": ""}
# Off a terminal (a file, a pipe to grep) nothing is cut: rows are as wide as their values.
PIPE_WIDTH = 10_000


def terminal_console() -> Console:
    """stdout as rich sees it: fitted to a terminal's width, coloured only on a terminal and
    never under NO_COLOR (rich's own rules); whole rows off a terminal."""
    console = Console()
    return console if console.is_terminal else Console(width=PIPE_WIDTH)


def _state(state: str) -> Text:
    return Text(state, style=_STYLES[state_style(state)])


def _table(title: str, headers: Sequence[str], *, wide: bool) -> Table:
    # min_width: a narrow table (one column of alarm names) must not fold its own title.
    table = Table(
        title=title, title_justify="left", title_style="bold", expand=False, box=None, min_width=len(title)
    )
    for index, header in enumerate(headers):
        last = index == len(headers) - 1
        # The last column (a message) takes what is left and folds; the others never wrap.
        table.add_column(header, no_wrap=not last, overflow="fold" if last or wide else "ellipsis")
    return table


def resources_table(resources: Sequence[Mapping[str, Any]], *, title: str, wide: bool) -> Table:
    regional = region_column(r.get("region") for r in resources)
    headers = ("KIND", "NAME", *(("REGION",) if regional else ()), "STATE", "SINCE", "MESSAGE")
    table = _table(title, headers, wide=wide)
    for r in resources:
        hold = r.get("suspension") or {}
        message = str(r.get("message") or "")
        if hold:
            # The hold says it all (the message of a bounded hold repeats it): said once.
            message = f"held until {hold.get('until')}: {hold.get('reason')}"
        table.add_row(  # Text, never markup: names and messages come from manifests and AWS
            Text(str(r.get("kind", ""))),
            Text(str(r.get("name", ""))),
            *(Text(cell) for cell in region_cells(regional, r.get("region"))),
            _state(str(r.get("state", ""))),
            Text(str(instant_text(r.get("lastReconcile")) or "-")),
            Text(message),
        )
    return table


def _schedule_table(document: Mapping[str, Any], *, wide: bool) -> Table | None:
    rows = [
        (
            "maintenance window",
            str(w.get("name")),
            "active" if w.get("active") else "next",
            str(w.get("start")),
            str(w.get("end")),
        )
        for w in document.get("windows") or ()
    ] + [
        ("snapshot slot", str(s.get("name")), "next", str(s.get("at")), "")
        for s in document.get("slots") or ()
    ]
    if not rows:
        return None
    table = _table("Windows and slots", ("WHAT", "NAME", "WHEN", "START", "END"), wide=wide)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


def _health_tables(health: Mapping[str, Any], *, wide: bool) -> list[Table]:
    tables = []
    services = health.get("services") or ()
    if services:
        table = _table("Services", ("NAME", "RUNNING", "DESIRED", "ROLLOUT"), wide=wide)
        for s in services:
            running, desired = s.get("running"), s.get("desired")
            style = "" if running == desired else "yellow"
            table.add_row(
                Text(str(s.get("name"))),
                Text(value_text(running), style=style),
                Text(value_text(desired)),
                Text(str(s.get("rollout") or "-")),
            )
        tables.append(table)
    clusters = health.get("clusters") or ()
    if clusters:
        table = _table("Aurora clusters", ("CLUSTER", "STATUS", "NEWEST SNAPSHOT AGE"), wide=wide)
        for c in clusters:
            status = str(c.get("status") or "-")
            table.add_row(
                Text(str(c.get("name"))),
                Text(status, style="" if status == "available" else "yellow"),
                Text(str(c.get("newestSnapshotAge") or "-")),
            )
        tables.append(table)
    alarms = health.get("alarmsInAlarm")
    if alarms is not None:
        table = _table("Managed alarms in ALARM", ("ALARM",), wide=wide)
        for name in alarms:
            table.add_row(Text(str(name), style="bold red"))
        if not alarms:
            table.add_row(Text("none", style="green"))
        tables.append(table)
    return tables


def status_renderables(document: Mapping[str, Any], *, wide: bool = False) -> list[RenderableType]:
    """Every table of `homeostat status`, in the order an on-call engineer reads them."""
    revision = document.get("revision") or "none"
    parts: list[RenderableType] = [
        Text.assemble(
            ("revision ", ""),
            (str(revision), "bold"),
            (f" · last pass {instant_text(document.get('lastPass')) or 'none yet'}", ""),
            (f" · shard {document['selector']}" if document.get("selector") else "", ""),
        )
    ]
    if not document.get("valid", False):
        rejected = document.get("rejectedRevision")
        parts.append(
            Text(
                f"desired state INVALID: revision {rejected} rejected; {revision} stays in force",
                style="bold red",
            )
        )
        parts.extend(Text(f"  {error}", style="red") for error in document.get("rejectedErrors") or ())
    resources = list(document.get("resources") or ())
    parts.append(resources_table(resources, title="Resources", wide=wide))
    held = [r for r in resources if r.get("state") in {"Suspended", "Fighting"}]
    if held:
        parts.append(resources_table(held, title="Held (suspended, fighting)", wide=wide))
    schedule = _schedule_table(document, wide=wide)
    if schedule is not None:
        parts.append(schedule)
    parts.extend(_health_tables(document.get("health") or {}, wide=wide))
    return parts


def print_status(document: Mapping[str, Any], console: Console, *, wide: bool = False) -> None:
    """`status_renderables`, printed."""
    for part in status_renderables(document, wide=wide):
        console.print(part)
