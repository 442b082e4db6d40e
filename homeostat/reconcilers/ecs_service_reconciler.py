"""ECSService's reconciler: observe (batched, concurrent), diff (ecs_service_diff.py), apply.

Observe (the I/O is ecs_services.py): DescribeServices, 10 services per call per cluster
(AWS's limit), beside Application Auto Scaling DescribeScalableTargets, 50 resource ids per
call; the declared task definitions' revisions (the family's revisions are listed once per
family per pass, each revision's tags read once per process, shared with ECSTaskDefinition's
reconciler); and what the history remembers of the group, in three batched queries.
"""

import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.state import DesiredState, Resource
from homeostat.reconcilers.actions import Action, ApplyResult, ObserveError, Outcome, Plan, RolloutState
from homeostat.reconcilers.aws import (
    AwsClients,
    aws_errors,
    client_region,
    describe_error,
    send_each,
    together,
)
from homeostat.reconcilers.ecs_service import KIND, ECSAction, ECSService
from homeostat.reconcilers.ecs_service_diff import (
    DeclaredRevision,
    ServiceObservation,
    ServiceRecall,
    diff_service,
    failure_finding,
    manifests_digest,
    resource_id,
    runs_one_of,
    service_facts,
    wanted_task_definitions,
)
from homeostat.reconcilers.ecs_services import (
    ScalableTarget,
    describe_services,
    list_whole_namespace,
    not_active,
    primary_rollout,
    register_scalable_target,
    scalable_targets,
)
from homeostat.reconcilers.rollouts import (
    SENT,
    SETTLE_SECONDS,
    Recall,
    RolloutMemory,
    deployment_gauge,
    deployments_of,
    verdict,
)
from homeostat.reconcilers.task_definitions import RevisionCatalog, TaskDefinitionSpec, digest_of, holding


class ECSServiceReconciler:
    kinds = (KIND,)

    def __init__(self, catalog: RevisionCatalog | None = None, recall: Recall | None = None) -> None:
        self.catalog = catalog or RevisionCatalog()
        self.recall = recall
        # Services whose deployment settles (or was just sent): they want a pass soon. Each
        # observe replaces the entries of the services it observed (the pass observes each
        # region on its own), read by the daemon's wake-up computation.
        self._settling: frozenset[str] = frozenset()
        # Per region, how many ECS scalable targets its last whole listing found.
        self._listed: dict[str | None, int] = {}
        self._lock = threading.Lock()

    def observe(
        self, resources: Sequence[Resource[ECSService]], desired: DesiredState, aws: AwsClients, now: datetime
    ) -> Mapping[str, ServiceObservation | ObserveError]:
        by_cluster: dict[str, list[Resource[ECSService]]] = defaultdict(list)
        for resource in resources:
            by_cluster[resource.manifest.spec.cluster].append(resource)
        results: dict[str, ServiceObservation | ObserveError] = {}
        ids = [resource_id(r.manifest.spec) for r in resources]
        ecs = aws.client("ecs")
        declared = self._declared(resources, desired, ecs, now)
        recalled = self._recalled(resources)
        (targets, target_error), answers = together(
            lambda: self._scalable_targets(aws.client("application-autoscaling"), ids),
            lambda: describe_services(
                ecs,
                {
                    cluster: [r.manifest.spec.service for r in members]
                    for cluster, members in by_cluster.items()
                },
            ),
        )
        for cluster, members in by_cluster.items():
            found = answers[cluster]
            if found.error is not None:
                for resource in members:
                    results[resource.name] = ObserveError(found.error)
                continue
            for resource in members:
                spec = resource.manifest.spec
                item = found.live.get(spec.service)
                wanted = declared.get(spec.taskDefinitionFrom) if spec.taskDefinitionFrom else None
                error = (
                    target_error
                    or not_active(spec.service, cluster, item, found.failures)
                    or (wanted.message if isinstance(wanted, ObserveError) else None)
                )
                if error is not None or item is None or isinstance(wanted, ObserveError):
                    results[resource.name] = ObserveError(error or "not observed")
                else:
                    manifests = manifests_digest(spec, wanted)
                    runs = wanted_task_definitions(spec, wanted)
                    watched = (
                        verdict(
                            partial(runs_one_of, runs),
                            manifests,
                            deployments_of(item),
                            recalled.memory(resource.name),
                            current=str(item["taskDefinition"]),
                        )
                        if runs
                        else None
                    )
                    results[resource.name] = ServiceObservation(
                        cluster=cluster,
                        service=spec.service,
                        desired_count=int(item["desiredCount"]),
                        task_definition=str(item["taskDefinition"]),
                        scalable_target=targets.get(resource_id(spec)),
                        declared=wanted,
                        running_count=int(item.get("runningCount", 0)),
                        rollout=primary_rollout(item),
                        watched=watched,
                        manifests=manifests,
                        applied_token=recalled.token(resource.name),
                    )
        deploying = {
            name
            for name, seen in results.items()
            if isinstance(seen, ServiceObservation)
            and seen.watched is not None
            and seen.watched.rollout.state == RolloutState.DEPLOYING
        }
        with self._lock:
            self._settling = (self._settling - {r.name for r in resources}) | deploying
        return results

    def _scalable_targets(
        self, client: Any, ids: list[str]
    ) -> tuple[Mapping[str, ScalableTarget], str | None]:
        """The group's scalable targets, by id or by listing the region's (whichever costs fewer
        calls, judged by what the region's last listing found: `list_whole_namespace`)."""
        if not ids:
            return {}, None
        region = client_region(client)
        with self._lock:
            before = self._listed.get(region)
        read = scalable_targets(client, ids, whole_namespace=list_whole_namespace(len(ids), before))
        if read.listed is not None:
            with self._lock:
                self._listed[region] = read.listed
        return read.targets, read.error

    def _recalled(self, resources: Sequence[Resource[ECSService]]) -> ServiceRecall:
        """What the history holds for this group, in three batched queries (not two or four per
        service): the redeployToken last sent to each service that declares one, and the
        rollout memory of each that runs a declared task definition."""
        if self.recall is None:
            return ServiceRecall(tokens=None, memories=None)
        tokened = [r.name for r in resources if r.manifest.spec.redeployToken is not None]
        pinned = [
            r.name
            for r in resources
            if r.manifest.spec.taskDefinition is not None or r.manifest.spec.taskDefinitionFrom is not None
        ]
        kind = str(KIND)
        redeploys = self.recall.remembered(kind, tokened, ECSAction.REDEPLOY, SENT)  # never twice
        sent = self.recall.remembered(kind, pinned, ECSAction.UPDATE_SERVICE, (Outcome.APPLIED,))
        failed = self.recall.remembered(kind, pinned, ECSAction.DEPLOYMENT_FAILED, (Outcome.FAILED,))
        return ServiceRecall(
            tokens={
                name: str(rows[0].after.get("redeployToken")) if rows else None
                for name in tokened
                for rows in [redeploys.get(name, [])]
            },
            memories={
                name: RolloutMemory(sent=tuple(sent.get(name, ())), failed=tuple(failed.get(name, ())))
                for name in pinned
            },
        )

    def _declared(
        self, resources: Sequence[Resource[ECSService]], desired: DesiredState, ecs: Any, now: datetime
    ) -> dict[str, DeclaredRevision | ObserveError]:
        """Per ECSTaskDefinition named by a `taskDefinitionFrom`: the revisions holding its declared
        content. The pass runs this kind after ECSTaskDefinition's, so the family's listing of
        this pass (shared catalog), with the revision registered in it, is already known."""
        named = {r.manifest.spec.taskDefinitionFrom for r in resources} - {None}
        found: dict[str, DeclaredRevision | ObserveError] = {}
        listed: dict[str, Any] = {}
        for source in desired.of_kind(Kind("ECSTaskDefinition")):
            spec = source.manifest.spec
            if source.name not in named or not isinstance(spec, TaskDefinitionSpec):
                continue
            digest = digest_of(spec.content())
            try:
                if spec.family not in listed:
                    listed[spec.family] = self.catalog.active_revisions(ecs, spec.family, now)
            except aws_errors() as exc:
                listed[spec.family] = ObserveError(
                    f"cannot list the revisions of {spec.family}: {describe_error(exc)}"
                )
            revisions = listed[spec.family]
            found[source.name] = (
                revisions
                if isinstance(revisions, ObserveError)
                else DeclaredRevision(
                    source.name, spec.family, digest, tuple(r.arn for r in holding(revisions, digest))
                )
            )
        return found

    def diff(
        self, resource: Resource[ECSService], observed: ServiceObservation | ObserveError, now: datetime
    ) -> Plan:
        if isinstance(observed, ObserveError):
            return Plan(KIND, resource.name, error=observed.message)
        spec = resource.manifest.spec
        notes: tuple[str, ...] = ()
        if spec.autoscaling is not None and observed.scalable_target is None:
            return Plan(
                KIND,
                resource.name,
                error=f"autoscaling is declared but {resource_id(spec)} has no scalable target; "
                "homeostat does not create one",
            )
        if observed.scalable_target is not None and spec.desiredCount is None:
            notes = (f"desiredCount {observed.desired_count} is owned by Application Auto Scaling",)
        watched = observed.watched
        if watched is not None and watched.holds_back:  # `plan` shows it too
            notes = (*notes, watched.rollout.message)
        targets = wanted_task_definitions(spec, observed.declared)
        in_place = runs_one_of(targets, observed.task_definition)
        return Plan(
            KIND,
            resource.name,
            actions=diff_service(resource.name, spec, observed),
            notes=notes,
            facts=service_facts(observed),
            findings=failure_finding(resource.name, spec, observed),
            measurements=deployment_gauge(resource.name, watched, in_place) if targets else (),
            rollout=watched.rollout if watched is not None else None,
        )

    def apply(self, actions: Sequence[Action], aws: AwsClients) -> list[ApplyResult]:
        def send(action: Action) -> str | None:
            if action.action == ECSAction.UPDATE_SERVICE and "unregistered" in action.params:
                return (
                    f"not sent: ECSTaskDefinition {action.params['unregistered']} has no ACTIVE "
                    "revision holding its declared content"
                )
            if action.action in {ECSAction.UPDATE_SERVICE, ECSAction.REDEPLOY}:
                aws.client("ecs").update_service(**action.params)
                if "taskDefinition" in action.params:  # a deployment starts: watch it soon
                    with self._lock:
                        self._settling = self._settling | {action.name}
            elif action.action == ECSAction.UPDATE_SCALABLE_TARGET:
                register_scalable_target(aws.client("application-autoscaling"), action.params)
            else:
                raise ValueError(f"unknown action {action.action}")
            return None

        return send_each(actions, send)

    def wake_times(self, desired: DesiredState, now: datetime) -> list[datetime]:
        """A pass every few seconds while a deployment settles (not the resync)."""
        declared = {r.name for r in desired.of_kind(KIND)}  # not a service no longer declared
        return [now + timedelta(seconds=SETTLE_SECONDS)] if self._settling & declared else []
