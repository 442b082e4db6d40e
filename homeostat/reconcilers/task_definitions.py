"""Task definition content and the revisions that hold it: shared by the two ECS kinds.

Not a kind module: ECSTaskDefinition registers revisions and ECSService runs the one that
holds its task definition's declared content, and kind modules must not import each
other, so the spec, the digest and the revision lookup live here.

A revision is known by its `homeostat-digest` tag: the SHA-256 of the canonical JSON of
the definition (keys sorted, no whitespace, AWS defaults not added), so the same content
from inline YAML or from a JSON file has one digest. Revisions never change, so a
revision's tags are read once per process (`RevisionCatalog`, keyed by ARN); only the
listing of a family's ACTIVE revisions is read every pass.
"""

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StrictInt, model_validator

from homeostat.desired_state.models import SpecBase
from homeostat.reconcilers.aws import client_region, pages

DIGEST_TAG = "homeostat-digest"
MANAGED_TAG = ("managed-by", "homeostat")
FAMILY_PATTERN = r"^[A-Za-z0-9_-]{1,255}$"
# Keys of the RegisterTaskDefinition input that a definition must not carry: the family is the
# spec's, the tags are homeostat's (the digest is the proof of what it registered).
RESERVED_KEYS = ("family", "tags")


class TaskDefinitionSpec(SpecBase):
    family: Annotated[str, Field(pattern=FAMILY_PATTERN, description="The task definition family.")]
    definition: Annotated[
        dict[str, Any] | None,
        Field(
            description="The RegisterTaskDefinition input without family and tags (keys are passed "
            "to AWS as they are)."
        ),
    ] = None
    definitionFile: Annotated[
        str | None,
        Field(
            min_length=1,
            description="Instead of definition: a .json file (path relative to this manifest) holding "
            "the RegisterTaskDefinition input, as `register-task-definition --cli-input-json` reads it.",
        ),
    ] = None
    keepRevisions: Annotated[
        StrictInt | None,
        Field(
            ge=1,
            description="ACTIVE revisions homeostat registered beyond the newest N are deregistered "
            "(never one a service in the observed clusters runs).",
        ),
    ] = None

    @model_validator(mode="after")
    def _one_source(self) -> "TaskDefinitionSpec":
        if (self.definition is None) == (self.definitionFile is None):
            raise ValueError("declare exactly one of definition or definitionFile")
        if self.definition is not None:
            reserved = [key for key in RESERVED_KEYS if key in self.definition]
            if reserved:
                raise ValueError(
                    f"definition must not hold {', '.join(reserved)}: the family is spec.family, "
                    "the tags are homeostat's"
                )
        return self

    def content(self) -> Mapping[str, Any]:
        """The declared definition (a definitionFile's content, once the loader has resolved it)."""
        if self.definition is None:
            raise ValueError(f"the definitionFile of family {self.family} was not resolved by the loader")
        return self.definition


def canonical_json(definition: Mapping[str, Any]) -> str:
    return json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest_of(definition: Mapping[str, Any]) -> str:
    """The content digest: SHA-256 (hex) of the canonical JSON. Pure."""
    return hashlib.sha256(canonical_json(definition).encode()).hexdigest()


def family_and_number(arn: str) -> tuple[str, int]:
    """`arn:...:task-definition/<family>:<n>` -> (family, n)."""
    family, _, number = arn.rsplit("/", 1)[-1].rpartition(":")
    return family, int(number)


@dataclass(frozen=True, slots=True)
class RevisionInfo:
    """One ACTIVE revision: its ARN, number, `homeostat-digest` tag and whether homeostat registered it."""

    arn: str
    number: int
    digest: str | None
    managed: bool

    @property
    def name(self) -> str:
        family, number = family_and_number(self.arn)
        return f"{family}:{number}"


class RevisionCatalog:
    """Every ACTIVE revision of a family with its tags; each revision described once per process,
    each family listed once per pass.

    One catalog per process wiring, shared by both ECS kinds' reconcilers (`Shared.get`).
    Tags are kept by ARN (a revision never changes). The listing of a family is kept for the
    pass it was made in (the pass's start instant, which every kind's observe receives), with
    what ECSTaskDefinition registered or deregistered since: so ECSService, which runs after it
    in the pass, needs no second listing and no describe of the revision just registered. The
    lock guards the dictionaries only, never an AWS call.
    """

    def __init__(self) -> None:
        self._tags: dict[str, tuple[str | None, bool]] = {}
        # By (region, family): a family of one name in two regions is two families.
        self._listed: dict[tuple[str | None, str], tuple[datetime, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def registered(self, arn: str, digest: str) -> None:
        """A revision homeostat just registered: its tags, and a place in this pass's listing."""
        with self._lock:
            self._tags[arn] = (digest, True)
            for key in self._listings_of(arn):
                at, arns = self._listed[key]
                self._listed[key] = (at, (arn, *arns))

    def deregistered(self, arn: str) -> None:
        with self._lock:
            for key in self._listings_of(arn):
                at, arns = self._listed[key]
                self._listed[key] = (at, tuple(a for a in arns if a != arn))

    def _listings_of(self, arn: str) -> list[tuple[str | None, str]]:
        """The listings an ARN belongs to: its family's, in the ARN's region (or a listing made
        with a client that names no region: a test double). Call holding the lock."""
        family = family_and_number(arn)[0]
        parts = arn.split(":")
        region = parts[3] if len(parts) > 3 and parts[0] == "arn" else None
        return [key for key in self._listed if key[1] == family and key[0] in {region, None}]

    def _known(self, arn: str) -> tuple[str | None, bool] | None:
        with self._lock:
            return self._tags.get(arn)

    def _listing(self, ecs: Any, family: str, at: datetime) -> tuple[str, ...]:
        key = (client_region(ecs), family)
        with self._lock:
            cached = self._listed.get(key)
        if cached is not None and cached[0] == at:
            return cached[1]
        arns = tuple(
            arn
            for page in pages(
                ecs.list_task_definitions,
                "nextToken",
                familyPrefix=family,
                status="ACTIVE",
                sort="DESC",
                maxResults=100,
            )
            for arn in page.get("taskDefinitionArns", [])
            if family_and_number(arn)[0] == family
        )
        with self._lock:
            self._listed[key] = (at, arns)
        return arns

    def active_revisions(self, ecs: Any, family: str, at: datetime) -> tuple[RevisionInfo, ...]:
        """The family's ACTIVE revisions, newest first, as listed in the pass started `at`.
        Raises the AWS errors (`aws_errors()`).

        ListTaskDefinitions matches a family *prefix*: revisions of other families are dropped.
        """
        found = []
        for arn in self._listing(ecs, family, at):
            known = self._known(arn)
            if known is None:
                response = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
                tags = {t.get("key"): t.get("value") for t in response.get("tags", [])}
                known = (tags.get(DIGEST_TAG), tags.get(MANAGED_TAG[0]) == MANAGED_TAG[1])
                with self._lock:
                    self._tags[arn] = known
            found.append(RevisionInfo(arn, family_and_number(arn)[1], known[0], known[1]))
        return tuple(sorted(found, key=lambda r: r.number, reverse=True))


def holding(revisions: tuple[RevisionInfo, ...], digest: str) -> tuple[RevisionInfo, ...]:
    """The revisions that carry `digest`, newest first. Pure."""
    return tuple(r for r in revisions if r.digest == digest)
