"""The shard of a desired state: what one `--selector` daemon reconciles.

A fleet that outgrows one process is split by label: several daemons share one directory
and one history database, each with its own selector. The whole directory is always loaded
and validated first (its cross-document rules span shards), then filtered here.
Some resources must be decided together by one daemon: the alarm reconciler resolves each
alarm from every window and policy that can select it, and a service's `taskDefinitionFrom`
is resolved from its task definition. Each kind names such pairs (its `Bond`); a pair cut
by the selector is an error of this shard at the resource inside it (both daemons report
it), since two daemons each deciding half of it would fight.
"""

from collections.abc import Sequence
from typing import Any

from homeostat.desired_state.selector import Selector
from homeostat.desired_state.state import DesiredState, InvalidDesiredState, ManifestError, Resource
from homeostat.desired_state.validation import Bond, where


def selects(selector: Selector, resource: Resource[Any]) -> bool:
    return selector.matches(resource.manifest.metadata.labels)


def select(desired: DesiredState, selector: Selector, bonds: Sequence[Bond] = ()) -> DesiredState:
    """The shard of `desired`: its resources that `selector` selects, same revision. Raises
    InvalidDesiredState (one error per cut pair, at the resource inside the shard) when a
    bond crosses the shard's edge. Pure."""
    if not selector.pairs:
        return desired
    inside = tuple(r for r in desired.resources if selects(selector, r))
    errors: list[ManifestError] = []
    seen: set[frozenset[int]] = set()
    for bond in bonds:
        for left, right, why in bond(desired.resources):
            pair = frozenset((id(left), id(right)))
            if selects(selector, left) == selects(selector, right) or pair in seen:
                continue
            seen.add(pair)
            mine, other = (left, right) if selects(selector, left) else (right, left)
            errors.append(
                ManifestError(
                    mine.source.file,
                    mine.source.line,
                    "metadata.labels",
                    f"{mine.kind} {mine.name!r} is in shard {selector.text!r} but {other.kind} "
                    f"{other.name!r} ({where(other)}) is not, and {why}: label both for one shard",
                )
            )
    if errors:
        raise InvalidDesiredState(errors, desired.revision)
    return DesiredState(desired.revision, desired.directory, inside)
