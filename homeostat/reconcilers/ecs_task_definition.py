"""ECSTaskDefinition: the task definition lives in git; a commit of new content registers it.

Observe: the family's ACTIVE revisions (ListTaskDefinitions by family prefix, newest first,
100 per page) and their `homeostat-digest` tags (DescribeTaskDefinition with tags, once per
revision per process: `task_definitions.RevisionCatalog`); with `keepRevisions`, also the
task definitions the services of the observed clusters run (ListServices, DescribeServices
10 per call), which are never deregistered.
Diff: RegisterTaskDefinition only when no ACTIVE revision carries the declared digest (a
`git revert` back to older content finds the older revision and registers nothing); the
tag is the proof of what homeostat registered, read again by every new process, so a
crash between the call and its history row never registers the same content twice.
DeregisterTaskDefinition for the revisions homeostat registered beyond the newest N.
"""

import json
import posixpath
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.models import ManifestBase
from homeostat.desired_state.reading import ATTACHMENT_SUFFIXES
from homeostat.desired_state.state import DesiredState, ManifestError, Resource
from homeostat.desired_state.validation import Attachments, Locate, per_region, where
from homeostat.reconcilers.actions import Action, ApplyResult, ObserveError, Plan
from homeostat.reconcilers.aws import (
    AwsClients,
    aws_errors,
    chunks,
    describe_error,
    fan_out,
    pages,
    send_each,
)
from homeostat.reconcilers.descriptor import KindDescriptor, Shared, example_of
from homeostat.reconcilers.ecs_services import DESCRIBE_SERVICES_BATCH
from homeostat.reconcilers.task_definitions import (
    DIGEST_TAG,
    MANAGED_TAG,
    RevisionCatalog,
    RevisionInfo,
    TaskDefinitionSpec,
    digest_of,
    holding,
)

KIND = Kind("ECSTaskDefinition")


class TaskDefinitionAction(StrEnum):
    REGISTER = "register_task_definition"
    DEREGISTER = "deregister_task_definition"


class ECSTaskDefinition(ManifestBase):
    """A task definition family whose content is declared in git (inline, or a JSON file).

    Example:
        apiVersion: homeostat/v1
        kind: ECSTaskDefinition
        metadata: {name: api}
        spec:
          family: omnirapeutic-production-api
          definitionFile: api-task-definition.json
          keepRevisions: 10
    """

    kind: Literal["ECSTaskDefinition"]
    spec: TaskDefinitionSpec


@dataclass(frozen=True, slots=True)
class FamilyObservation:
    """The family's ACTIVE revisions (newest first) and the task definitions services run.

    `in_use` is None when it was not read (no keepRevisions) or could not be (`in_use_error`):
    then nothing is deregistered.
    """

    revisions: tuple[RevisionInfo, ...]
    in_use: frozenset[str] | None = None
    in_use_error: str | None = None


def resolve_definition_file(
    manifest: ManifestBase, file: str, locate: Locate, attachments: Attachments
) -> tuple[ManifestBase | None, list[ManifestError]]:
    """The loader's hook: a `definitionFile`'s JSON becomes the manifest's `definition`. Pure.

    The file is one the loader read with the revision (any `*.json` of the directory), so its
    content is part of the revision. A `family` in the file (the runbook's `--cli-input-json`
    carries one) must be spec.family and is dropped; `tags` are refused (they are homeostat's).
    """
    spec = manifest.spec
    if not isinstance(spec, TaskDefinitionSpec) or spec.definitionFile is None:
        return manifest, []
    named = spec.definitionFile
    path = posixpath.normpath(posixpath.join(posixpath.dirname(file), named))

    def error(message: str) -> tuple[None, list[ManifestError]]:
        return None, [ManifestError(file, locate(("spec", "definitionFile")), "spec.definitionFile", message)]

    if not named.lower().endswith(ATTACHMENT_SUFFIXES):
        return error(f"{named!r} is not a .json file")
    content = attachments.get(path)
    if content is None:
        return error(f"{named!r}: no such file in the desired-state directory ({path})")
    try:
        data = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return error(f"{path} is not JSON: {exc}")
    if not isinstance(data, dict):
        return error(f"{path} must hold a JSON object (the RegisterTaskDefinition input)")
    family = data.pop("family", spec.family)
    if family != spec.family:
        return error(f"{path} declares family {family!r}, but spec.family is {spec.family!r}")
    if "tags" in data:
        return error(f"{path} must not hold tags: homeostat tags what it registers")
    return manifest.model_copy(update={"spec": spec.model_copy(update={"definition": data})}), []


def _images(definition: Mapping[str, Any]) -> list[str]:
    containers = definition.get("containerDefinitions")
    if not isinstance(containers, list):
        return []
    return [str(c.get("image")) for c in containers if isinstance(c, dict) and "image" in c]


def diff_task_definition(name: str, spec: TaskDefinitionSpec, live: FamilyObservation) -> Plan:
    """Pure: register the declared content unless an ACTIVE revision holds it; trim old revisions."""
    definition = spec.content()
    digest = digest_of(definition)
    in_force = holding(live.revisions, digest)
    actions: list[Action] = []
    notes: list[str] = []
    newest = live.revisions[0] if live.revisions else None
    if in_force:
        notes.append(f"{in_force[0].name} holds the declared content (digest {digest[:12]})")
    else:
        images = ", ".join(_images(definition)) or "no image"
        actions.append(
            Action(
                kind=KIND,
                name=name,
                action=TaskDefinitionAction.REGISTER,
                target=spec.family,
                before={
                    "revision": newest.name if newest else None,
                    "digest": newest.digest if newest else None,
                },
                after={"revision": f"{spec.family}:(new)", "digest": digest},
                reason=f"no ACTIVE revision of {spec.family} holds the declared content "
                f"(digest {digest[:12]}; {images})",
                params={"family": spec.family, "definition": definition, "digest": digest},
            )
        )
    if spec.keepRevisions is not None:
        actions.extend(_trim(name, spec, live, {r.arn for r in in_force}, notes))
    return Plan(KIND, name, actions=tuple(actions), notes=tuple(notes))


def _trim(
    name: str, spec: TaskDefinitionSpec, live: FamilyObservation, in_force: set[str], notes: list[str]
) -> list[Action]:
    """Deregister homeostat's revisions beyond the newest keepRevisions, except those in use."""
    keep = spec.keepRevisions or 0
    beyond = [r for r in live.revisions if r.managed][keep:]
    if not beyond:
        return []
    if live.in_use is None:
        notes.append(f"no revision is deregistered: {live.in_use_error or 'services not read'}")
        return []
    actions = []
    for revision in beyond:
        if revision.arn in live.in_use or revision.arn in in_force:
            notes.append(f"{revision.name} is kept: a service runs it")
            continue
        actions.append(
            Action(
                kind=KIND,
                name=name,
                action=TaskDefinitionAction.DEREGISTER,
                target=revision.name,
                before={"status": "ACTIVE"},
                after={"status": "INACTIVE"},
                reason=f"keepRevisions {keep}: older than the newest {keep} revisions homeostat registered",
                params={"taskDefinition": revision.arn},
            )
        )
    return actions


class ECSTaskDefinitionReconciler:
    kinds = (KIND,)

    def __init__(self, catalog: RevisionCatalog | None = None) -> None:
        self.catalog = catalog or RevisionCatalog()

    def observe(
        self,
        resources: Sequence[Resource[ECSTaskDefinition]],
        desired: DesiredState,
        aws: AwsClients,
        now: datetime,
    ) -> Mapping[str, FamilyObservation | ObserveError]:
        ecs = aws.client("ecs")
        in_use: frozenset[str] | None = None
        in_use_error = None
        if any(r.manifest.spec.keepRevisions is not None for r in resources):
            in_use, in_use_error = self._in_use(desired, ecs)
        by_family: dict[str, list[Resource[ECSTaskDefinition]]] = defaultdict(list)
        for resource in resources:
            by_family[resource.manifest.spec.family].append(resource)

        def family_of(family: str) -> FamilyObservation | ObserveError:
            try:
                return FamilyObservation(
                    self.catalog.active_revisions(ecs, family, now), in_use, in_use_error
                )
            except aws_errors() as exc:
                return ObserveError(f"family {family}: {describe_error(exc)}")

        # The families are independent listings: read concurrently (the shared budget paces them).
        results: dict[str, FamilyObservation | ObserveError] = {}
        for members, observed in zip(by_family.values(), fan_out(family_of, by_family), strict=True):
            for resource in members:
                results[resource.name] = observed
        return results

    @staticmethod
    def _in_use(desired: DesiredState, ecs: Any) -> tuple[frozenset[str] | None, str | None]:
        """Every task definition a service (managed or not) of the observed clusters runs, in any
        of its deployments. Fails closed: an error means nothing is deregistered."""
        clusters = sorted({str(r.manifest.spec.cluster) for r in desired.of_kind(Kind("ECSService"))})
        running: set[str] = set()
        try:
            for cluster in clusters:
                arns = [
                    arn
                    for page in pages(ecs.list_services, "nextToken", cluster=cluster, maxResults=100)
                    for arn in page.get("serviceArns", [])
                ]
                for batch in chunks(arns, DESCRIBE_SERVICES_BATCH):
                    for service in ecs.describe_services(cluster=cluster, services=batch).get("services", []):
                        running.add(str(service.get("taskDefinition")))
                        running.update(str(d.get("taskDefinition")) for d in service.get("deployments", []))
        except aws_errors() as exc:
            return None, f"cannot read the services of the observed clusters: {describe_error(exc)}"
        return frozenset(running), None

    def diff(
        self, resource: Resource[ECSTaskDefinition], observed: FamilyObservation | ObserveError, now: datetime
    ) -> Plan:
        if isinstance(observed, ObserveError):
            return Plan(KIND, resource.name, error=observed.message)
        return diff_task_definition(resource.name, resource.manifest.spec, observed)

    def apply(self, actions: Sequence[Action], aws: AwsClients) -> list[ApplyResult]:
        def send(action: Action) -> None:
            if action.action == TaskDefinitionAction.REGISTER:
                self._register(action, aws)
            elif action.action == TaskDefinitionAction.DEREGISTER:
                aws.client("ecs").deregister_task_definition(taskDefinition=action.params["taskDefinition"])
                self.catalog.deregistered(action.params["taskDefinition"])
            else:
                raise ValueError(f"unknown action {action.action}")

        return send_each(actions, send)

    def _register(self, action: Action, aws: AwsClients) -> None:
        """One RegisterTaskDefinition, tagged with the digest (the proof), which the catalog then
        knows: the service moved to it in this pass needs no describe."""
        digest = action.params["digest"]
        response = aws.client("ecs").register_task_definition(
            **action.params["definition"],
            family=action.params["family"],
            tags=[{"key": DIGEST_TAG, "value": digest}, {"key": MANAGED_TAG[0], "value": MANAGED_TAG[1]}],
        )
        arn = response.get("taskDefinition", {}).get("taskDefinitionArn")
        if arn:
            self.catalog.registered(str(arn), digest)

    def wake_times(self, desired: DesiredState, now: datetime) -> list[datetime]:
        return []


def same_family_twice(resources: Sequence[Resource[Any]]) -> list[ManifestError]:
    """Two ECSTaskDefinition manifests for one family would register each other's content in
    turn and move their services back and forth: an error at the second, naming the first."""
    errors: list[ManifestError] = []
    first_seen: dict[str, Resource[Any]] = {}
    for resource in resources:
        if resource.kind != KIND:
            continue
        family = resource.manifest.spec.family
        first = first_seen.setdefault(family, resource)
        if first is not resource:
            errors.append(
                ManifestError(
                    resource.source.file,
                    resource.source.line,
                    "spec.family",
                    f"ECSTaskDefinition {resource.name!r} declares family {family!r}, as does "
                    f"ECSTaskDefinition {first.name!r} ({where(first)})",
                )
            )
    return errors


def _reconciler(shared: Shared) -> ECSTaskDefinitionReconciler:
    return ECSTaskDefinitionReconciler(shared.get(RevisionCatalog))


DESCRIPTOR = KindDescriptor(
    kind=KIND,
    model=ECSTaskDefinition,
    order=5,
    example=example_of(ECSTaskDefinition),
    reconciler=None,
    make_reconciler=_reconciler,
    resolve=resolve_definition_file,
    checks=(per_region(same_family_twice),),
    actions={
        # iam:PassRole: registering a definition that names a task or execution role passes it to ECS.
        TaskDefinitionAction.REGISTER: ("ecs:RegisterTaskDefinition", "ecs:TagResource", "iam:PassRole"),
        TaskDefinitionAction.DEREGISTER: ("ecs:DeregisterTaskDefinition",),
    },
    observations=(
        "ecs:ListTaskDefinitions",
        "ecs:DescribeTaskDefinition",
        "ecs:ListServices",
        "ecs:DescribeServices",
    ),
)
