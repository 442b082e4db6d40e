"""One rendering of values for every human view: console, plan text, history, the page, the demo.

JSON-style scalars (`true`, `false`, `null`), strings plain, a task definition as
`family:revision` (its full ARN only with `--wide`, and always in `--json`, which prints the
stored value), and a field that goes away as `deleted` rather than `-> null`. The machine views
(`--json`, the log line) encode with `records.json_value` and keep every value whole.
"""

import json
from collections.abc import Iterable, Mapping
from typing import Any

_TASK_DEFINITION_ARN = ":task-definition/"


def value_text(value: Any, *, wide: bool = False) -> str:
    """A value as every human view prints it. Pure."""
    if isinstance(value, str):
        if not wide and value.startswith("arn:") and _TASK_DEFINITION_ARN in value:
            return value.rsplit("/", 1)[-1]
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def change_text(before: Mapping[str, Any], after: Mapping[str, Any], *, wide: bool = False) -> str:
    """`field: before -> after` for each changed field; a value that goes away is `deleted`. Pure."""
    parts = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old is not None and new is None:
            parts.append(f"{key}: {value_text(old, wide=wide)} deleted")
        else:
            parts.append(f"{key}: {value_text(old, wide=wide)} -> {value_text(new, wide=wide)}")
    return ", ".join(parts)


def region_column(regions: Iterable[str | None]) -> bool:
    """Whether a table of resources shows a REGION column: only when they span more than one
    region (`spec.region`), so a one-region fleet's tables read as they always did. Pure."""
    return len(set(regions)) > 1


def region_cells(regional: bool, region: Any) -> list[str]:
    """A row's REGION cell (`-` for a resource without one) when its table shows the column
    (`region_column`), else nothing: the one rule of every resource table. Pure."""
    return [str(region or "-")] if regional else []
