"""Rules that span documents, and the kind table that tells the loader which kinds exist.

This layer knows no kind: the operator hands the loader a `KindTable` derived from the
registry of kind descriptors (`homeostat.reconcilers.registry`), with each kind's model and
its cross-document checks. Duplicate names per kind are checked here for every kind.

Every check is linear in the number of documents (dicts, or sorted neighbours), so a
desired state of 10,000 documents cross-checks in milliseconds; each reports the error at
the second declaration and names the first.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.models import AlarmSelector, ManifestBase
from homeostat.desired_state.state import ManifestError, Resource

CrossCheck = Callable[[Sequence[Resource[Any]]], list[ManifestError]]
# Pairs of resources one daemon must decide together, with why, found among all the resources
# of a revision: a `--selector` shard must hold both or neither (`selector.select`).
Bond = Callable[[Sequence[Resource[Any]]], Iterable[tuple[Resource[Any], Resource[Any], str]]]
# The non-manifest files read with the manifests (`reading.ATTACHMENT_SUFFIXES`), by posix path
# relative to the desired-state directory, as the manifests' `Source.file` is.
Attachments = Mapping[str, bytes]
# The line of a field path of the document being resolved (its nearest declared parent's).
Locate = Callable[[tuple[str | int, ...]], int | None]
# A kind's hook that completes one validated manifest from the files it names (a model
# validator cannot read files, and must not): the manifest with the file's content in it, or
# located errors. Pure: it reads only the attachments the loader read with the revision, so a
# named file is part of the revision (its hash, its last-known-good copy) like a manifest.
Resolve = Callable[[ManifestBase, str, Locate, Attachments], tuple[ManifestBase | None, list[ManifestError]]]


@dataclass(frozen=True, slots=True)
class KindTable:
    """The kinds the loader accepts: model per `kind:` value, the cross-document checks, and the
    hooks of kinds whose manifests name files (`Resolve`)."""

    models: Mapping[Kind, type[ManifestBase]]
    checks: tuple[CrossCheck, ...] = ()
    resolvers: Mapping[Kind, Resolve] = field(default_factory=dict)


def where(resource: Resource[Any]) -> str:
    return f"{resource.source.file}:{resource.source.line}"


def cross_check(resources: Sequence[Resource[Any]], checks: Iterable[CrossCheck] = ()) -> list[ManifestError]:
    """Errors that no single document shows: duplicate names, then each kind's checks. Pure."""
    errors = duplicate_names(resources)
    for check in checks:
        errors.extend(check(resources))
    return errors


def duplicate_names(resources: Sequence[Resource[Any]]) -> list[ManifestError]:
    """A name is unique per kind: an error at each later declaration, naming the first. Pure."""
    errors: list[ManifestError] = []
    first_seen: dict[tuple[Kind, str], Resource[Any]] = {}
    for resource in resources:
        first = first_seen.setdefault((resource.kind, resource.name), resource)
        if first is not resource:
            errors.append(
                ManifestError(
                    resource.source.file,
                    resource.source.line,
                    "metadata.name",
                    f"duplicate {resource.kind} name {resource.name!r} (first declared at {where(first)})",
                )
            )
    return errors


class PrefixIndex:
    """Strings in declaration order, for "which earlier string is a prefix of, or extends, this?"

    Built incrementally (query, then `add`), so a query sees only earlier declarations, and
    `setdefault` keeps the earliest. Each add and query costs the string's length in dict
    operations: linear in the number of declarations, never pairwise.
    """

    def __init__(self) -> None:
        self._exact: dict[str, int] = {}
        self._extended: dict[str, int] = {}  # every prefix of an added string -> earliest index

    def add(self, text: str, index: int) -> None:
        self._exact.setdefault(text, index)
        for end in range(1, len(text) + 1):
            self._extended.setdefault(text[:end], index)

    def first_exact(self, text: str) -> int | None:
        """The earliest added string equal to `text`, if any."""
        return self._exact.get(text)

    def first_prefix_of(self, text: str) -> int | None:
        """The earliest added string that `text` starts with (itself included), if any."""
        found = [self._exact[text[:end]] for end in range(1, len(text) + 1) if text[:end] in self._exact]
        return min(found, default=None)

    def first_extending(self, text: str) -> int | None:
        """The earliest added string that starts with `text` (itself included), if any."""
        return self._extended.get(text)

    def first_overlapping(self, text: str) -> int | None:
        """The earliest added string that is a prefix of `text` or starts with it."""
        found = [i for i in (self.first_prefix_of(text), self.first_extending(text)) if i is not None]
        return min(found, default=None)


def per_region(check: CrossCheck) -> CrossCheck:
    """`check` applied to the resources of each `spec.region` on its own: names, prefixes and
    selectors are unique per account and region, so only resources of one region can collide.
    Validation does not know the daemon's default region, so "no region" is a value of its own
    (a resource without region never collides with one naming a region). Errors come in
    declaration order, as from `check` over one region. Pure."""

    def checked(resources: Sequence[Resource[Any]]) -> list[ManifestError]:
        by_region: dict[str | None, list[Resource[Any]]] = {}
        for resource in resources:
            by_region.setdefault(resource.manifest.spec.region, []).append(resource)
        if len(by_region) <= 1:
            return check(resources)
        position = {(r.source.file, r.source.line): i for i, r in reversed(list(enumerate(resources)))}
        errors = [error for members in by_region.values() for error in check(members)]
        return sorted(errors, key=lambda e: position.get((e.file, e.line), len(position)))

    return checked


def selectors_overlap(a: AlarmSelector, b: AlarmSelector) -> bool:
    """True when some alarm name could be selected by both (by name or prefix)."""
    if a.alarmNamePrefix is not None and b.alarmNamePrefix is not None:
        return a.alarmNamePrefix.startswith(b.alarmNamePrefix) or b.alarmNamePrefix.startswith(
            a.alarmNamePrefix
        )
    if a.alarmNamePrefix is not None:
        return any(name.startswith(a.alarmNamePrefix) for name in b.alarmNames or ())
    if b.alarmNamePrefix is not None:
        return any(name.startswith(b.alarmNamePrefix) for name in a.alarmNames or ())
    return bool(set(a.alarmNames or ()) & set(b.alarmNames or ()))
