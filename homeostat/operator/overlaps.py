"""Overlapping shards: another shard acted on a resource this shard selects too.

Shards split a fleet by label (`--selector`), each with its own lease, so two daemons of
different shards lead side by side. The lease cannot keep them off one resource: two
selectors on different keys (`team=a` and `env=prod`) both select a resource labelled with
both, and two writers would act on it, the race the lease exists to prevent. No daemon is
told the others' selectors (that would be coordination of its own); but the history they
share says who acted on what: every row carries its writer's canonical selector.

So a shard's pass asks the history which other shards acted on resources within the fight
window, and a resource of its own shard that such a shard's selector also selects (by the
labels of the revision in force here) is a Conflict in this shard: not reconciled, its status
naming the other shard and when it acted. The shard that acted first keeps acting, so the
two settle on one writer, and both say why in their logs. A shard that has not acted is
not seen: until then it has changed nothing.

Not counted: rows of the daemon without a selector ("", which the lease never lets lead
beside a shard, and every row written before shards existed), dry-run rows, and the rows
that say a shard let go of a resource (`unmanage`) or are about the directory
(`reject_revision`). Pure: the history query is `HistoryStore.acted_since`.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from homeostat.desired_state.durations import format_duration
from homeostat.desired_state.selector import Selector, parse_selector
from homeostat.desired_state.state import Resource
from homeostat.operator.clock import rfc3339

# Rows that say nothing about a shard managing a resource (see the module docstring).
NOT_ACTING = ("unmanage", "reject_revision")

Key = tuple[str, str]  # (kind, name)


@dataclass(frozen=True, slots=True)
class ShardActed:
    """The history's word: `shard` last acted on kind/name at `at`."""

    kind: str
    name: str
    shard: str
    at: datetime


def overlapping(
    mine: Selector, resources: Iterable[Resource[Any]], acted: Iterable[ShardActed]
) -> dict[Key, ShardActed]:
    """The resources of this shard (`resources`, selected by `mine`) that another shard acted
    on and also selects, each with that shard's newest action on it (the earliest shard text
    on a tie). Empty for the daemon without a selector."""
    if not mine.pairs:
        return {}
    by_key: dict[Key, list[ShardActed]] = {}
    for row in acted:
        if row.shard not in ("", mine.text):
            by_key.setdefault((row.kind, row.name), []).append(row)
    found: dict[Key, ShardActed] = {}
    for resource in resources:
        key = (str(resource.kind), resource.name)
        for row in sorted(by_key.get(key, ()), key=lambda r: (-r.at.timestamp(), r.shard)):
            try:
                other = parse_selector(row.shard)
            except ValueError:
                continue  # not a selector this version writes: no shard of ours
            if other.matches(resource.manifest.metadata.labels):
                found[key] = row
                break
    return found


def message(row: ShardActed, window: timedelta) -> str:
    """The status of an overlapped resource: which shard, when, and what ends it."""
    return (
        f"Conflict: shard {row.shard!r} acted on it at {rfc3339(row.at, timespec='seconds')} and its "
        "selector matches this resource too: shards must not overlap (label it for one of them); "
        f"not reconciled here until {format_duration(window)} after that shard's last action on it"
    )


def changes(
    before: Mapping[Key, ShardActed], after: Mapping[Key, ShardActed]
) -> tuple[list[tuple[Key, str]], list[tuple[Key, str]]]:
    """(started, ended) overlaps as (resource, other shard) pairs, sorted: what to log once."""
    old = {(key, row.shard) for key, row in before.items()}
    new = {(key, row.shard) for key, row in after.items()}
    return sorted(new - old), sorted(old - new)
