"""The immutable desired state handed to reconcilers, and the errors that reject one."""

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from homeostat.desired_state.identifiers import Kind, Revision
from homeostat.desired_state.models import ManifestBase

M_co = TypeVar("M_co", bound=ManifestBase, covariant=True)


@dataclass(frozen=True, slots=True)
class ManifestError:
    """One validation error, located as precisely as the input allows."""

    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        what = f"{self.field}: {self.message}" if self.field else self.message
        return f"{where}: {what}"


@dataclass(frozen=True, slots=True)
class Source:
    """Where a manifest was declared (file relative to the directory, 1-based line)."""

    file: str
    line: int


@dataclass(frozen=True, slots=True)
class Resource(Generic[M_co]):
    """One declared manifest and where it was declared; typed by its kind's model, so a kind
    module reads `resource.manifest.spec` with its own spec type (no isinstance)."""

    manifest: M_co
    source: Source

    @property
    def kind(self) -> Kind:
        return Kind(self.manifest.kind)

    @property
    def name(self) -> str:
        return self.manifest.metadata.name


@dataclass(frozen=True, slots=True)
class DesiredState:
    """One whole valid revision of the desired-state directory."""

    revision: Revision
    directory: Path
    resources: tuple[Resource[Any], ...] = field(default=())

    def of_kind(self, kind: Kind) -> tuple[Resource[Any], ...]:
        return tuple(r for r in self.resources if r.kind == kind)

    def __iter__(self) -> Iterator[Resource[Any]]:
        return iter(self.resources)

    def regions(self, default: str | None) -> list[str | None]:
        """The effective regions of the resources, in order of first declaration. Pure."""
        return list(dict.fromkeys(effective_region(r, default) for r in self.resources))

    def in_region(self, region: str | None, default: str | None) -> "DesiredState":
        """The resources whose effective region is `region`: all a reconciler working in that
        region may see, so a cross-kind fact (a window silencing alarms, a `taskDefinitionFrom`)
        never reaches across regions. The same value when nothing is left out. Pure."""
        kept = tuple(r for r in self.resources if effective_region(r, default) == region)
        return self if len(kept) == len(self.resources) else dataclasses.replace(self, resources=kept)


def effective_region(resource: Resource[Any], default: str | None) -> str | None:
    """The region a resource is reconciled in: its own `spec.region`, else the daemon's `default`."""
    region: str | None = resource.manifest.spec.region
    return region if region is not None else default


class InvalidDesiredState(Exception):
    """The directory (or revision) is rejected whole; nothing may act on it."""

    def __init__(self, errors: list[ManifestError], revision: Revision | None = None) -> None:
        self.errors = tuple(errors)
        self.revision = revision
        super().__init__("; ".join(str(e) for e in errors))
