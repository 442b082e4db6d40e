"""Identifier types shared by every layer above."""

from typing import NewType

Revision = NewType("Revision", str)
DBClusterId = NewType("DBClusterId", str)
SnapshotId = NewType("SnapshotId", str)
AlarmName = NewType("AlarmName", str)

API_VERSION = "homeostat/v1"


# The pseudo-kind of the desired-state directory itself: the history rows of its rejected revisions.
DESIRED_STATE_KIND = "DesiredState"


class Kind(str):
    """A manifest kind, spelled as in `kind:` (e.g. "ECSService").

    Open on purpose: each kind module declares its own (`KIND = Kind("ECSService")`) and
    `homeostat.reconcilers.registry` lists the kinds, so adding a kind is one module and one
    registry line; nothing else enumerates them (the loader is handed the registry's table).
    A `str` subclass rather than a NewType so that a kind reads as a kind in `repr`s and
    signatures while comparing, hashing and serialising as its plain spelling.
    """

    __slots__ = ()
