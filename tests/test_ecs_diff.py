"""Specification of the ECSService diff (pure): what it plans, and that its plans converge.

The property tests model AWS applying each planned action to the observed
service, then diff again: the result must be the declared state, and the
second diff must be empty. Conflicted plans are never applied, so they change
nothing.
"""

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from homeostat.desired_state.identifiers import Kind, Revision
from homeostat.desired_state.state import DesiredState, Resource, Source
from homeostat.reconcilers.actions import Action, ObserveError
from homeostat.reconcilers.ecs_service import ECSAction, ECSService, ECSServiceSpec
from homeostat.reconcilers.ecs_service_diff import (
    ServiceObservation,
    diff_service,
    resource_id,
    same_task_definition,
)
from homeostat.reconcilers.ecs_service_reconciler import ECSServiceReconciler
from homeostat.reconcilers.ecs_services import ScalableTarget

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
ACCOUNT_PREFIX = "arn:aws:ecs:us-east-1:123456789012:task-definition/"


def arn(family_revision: str) -> str:
    return ACCOUNT_PREFIX + family_revision


def service(**spec: Any) -> ECSService:
    body = {"cluster": "prod", "service": "prod-api", **spec}
    return ECSService.model_validate(
        {"apiVersion": "homeostat/v1", "kind": "ECSService", "metadata": {"name": "api"}, "spec": body}
    )


def resource(**spec: Any) -> Resource:
    return Resource(service(**spec), Source("services.yaml", 1))


def observed(count: int = 2, task: str = "api:1", target: ScalableTarget | None = None) -> ServiceObservation:
    return ServiceObservation("prod", "prod-api", count, arn(task), target)


def apply_to(live: ServiceObservation, actions: tuple[Action, ...]) -> ServiceObservation:
    """What AWS does with the actions homeostat applies (conflicted ones are never applied)."""
    for action in actions:
        if action.conflict is not None:
            continue
        if action.action == ECSAction.UPDATE_SERVICE:
            task = action.params.get("taskDefinition")
            live = replace(
                live,
                desired_count=action.params.get("desiredCount", live.desired_count),
                task_definition=live.task_definition
                if task is None
                else (task if task.startswith("arn:") else arn(task)),
            )
        elif action.action == ECSAction.UPDATE_SCALABLE_TARGET:
            live = replace(
                live,
                scalable_target=ScalableTarget(action.params["minCapacity"], action.params["maxCapacity"]),
            )
        else:
            raise AssertionError(f"unexpected action {action.action}")
    return live


# --- examples ---------------------------------------------------------------------------------


def test_in_sync_service_plans_nothing() -> None:
    """A service at its declared count and task definition needs no action."""
    spec = service(desiredCount=2, taskDefinition="api:1").spec
    assert diff_service("api", spec, observed(2, "api:1")) == ()


def test_count_and_task_drift_is_one_update_service() -> None:
    """Drift in both fields is fixed by one UpdateService carrying both."""
    spec = service(desiredCount=4, taskDefinition="api:42").spec
    (action,) = diff_service("api", spec, observed(2, "api:41"))
    assert action.action == ECSAction.UPDATE_SERVICE
    assert action.target == "prod/prod-api"
    assert action.before == {"desiredCount": 2, "taskDefinition": arn("api:41")}
    assert action.after == {"desiredCount": 4, "taskDefinition": "api:42"}
    assert action.params == {
        "cluster": "prod",
        "service": "prod-api",
        "desiredCount": 4,
        "taskDefinition": "api:42",
    }
    assert action.conflict is None
    assert action.reason == "drift: desiredCount and taskDefinition differ from the manifest"


def test_only_the_drifted_field_is_sent() -> None:
    """An UpdateService for a count drift does not resend the task definition, and vice versa."""
    (count_only,) = diff_service("api", service(desiredCount=3).spec, observed(2))
    assert count_only.params == {"cluster": "prod", "service": "prod-api", "desiredCount": 3}
    (task_only,) = diff_service("api", service(taskDefinition="api:2").spec, observed(2, "api:1"))
    assert task_only.params == {"cluster": "prod", "service": "prod-api", "taskDefinition": "api:2"}


def test_undeclared_fields_are_left_alone() -> None:
    """A manifest without desiredCount or taskDefinition never changes them."""
    assert diff_service("api", service().spec, observed(7, "anything:9")) == ()


def test_task_definition_pins_match_by_family_and_revision_or_exact_arn() -> None:
    """`family:revision` matches the ARN that ends with it; an ARN pin must match exactly."""
    assert same_task_definition("api:1", arn("api:1"))
    assert not same_task_definition("api:1", arn("api:10"))
    assert not same_task_definition("api:1", arn("my-api:1"))
    assert same_task_definition(arn("api:1"), arn("api:1"))
    assert not same_task_definition(arn("api:1"), "arn:aws:ecs:eu-west-1:123456789012:task-definition/api:1")


def test_desired_count_on_an_autoscaled_service_is_a_conflict() -> None:
    """When an autoscaler owns the count, a differing declared desiredCount is a Conflict."""
    spec = service(desiredCount=9, taskDefinition="api:2").spec
    actions = diff_service("api", spec, observed(3, "api:1", ScalableTarget(2, 8)))
    assert len(actions) == 1
    assert actions[0].conflict is not None
    assert "Auto Scaling" in actions[0].conflict


def test_autoscaled_service_with_declared_count_is_a_conflict_even_when_counts_agree() -> None:
    """The autoscaler owns the count: declaring one is a Conflict whatever the live value, and the
    task definition drift of that service is not applied either."""
    spec = service(desiredCount=3, taskDefinition="api:2").spec
    (action,) = diff_service("api", spec, observed(3, "api:1", ScalableTarget(2, 8)))
    assert action.conflict is not None
    assert action.after == {"desiredCount": 3, "taskDefinition": "api:2"}
    assert action.reason == "drift: taskDefinition differs from the manifest"
    (alone,) = diff_service("api", service(desiredCount=3).spec, observed(3, "api:1", ScalableTarget(2, 8)))
    assert alone.conflict is not None
    assert alone.reason.startswith("desiredCount is declared for a service whose count")


def test_autoscaling_bounds_drift_is_a_register_scalable_target() -> None:
    """Declared autoscaling bounds that differ from the target's are reconciled on the target."""
    spec = service(autoscaling={"minCapacity": 2, "maxCapacity": 8}).spec
    (action,) = diff_service("api", spec, observed(3, "api:1", ScalableTarget(1, 4)))
    assert action.action == ECSAction.UPDATE_SCALABLE_TARGET
    assert action.target == "service/prod/prod-api"
    assert action.before == {"minCapacity": 1, "maxCapacity": 4}
    assert action.after == {"minCapacity": 2, "maxCapacity": 8}
    assert action.params == {"resourceId": "service/prod/prod-api", "minCapacity": 2, "maxCapacity": 8}


def test_cluster_arn_is_reduced_to_its_name_in_targets() -> None:
    """A cluster given as an ARN yields the Application Auto Scaling id with the cluster name."""
    spec = service(cluster="arn:aws:ecs:us-east-1:123456789012:cluster/prod").spec
    assert resource_id(spec) == "service/prod/prod-api"


RECONCILER = ECSServiceReconciler()


def test_observe_error_is_the_resource_error() -> None:
    """A service that could not be observed yields a plan with that error and no actions."""
    plan = RECONCILER.diff(resource(desiredCount=1), ObserveError("service missing"), NOW)
    assert plan.error == "service missing"
    assert plan.actions == ()
    assert not plan.in_sync


def test_declared_autoscaling_without_a_target_is_an_error() -> None:
    """homeostat does not create scalable targets: declared bounds with no target are an error."""
    plan = RECONCILER.diff(resource(autoscaling={"minCapacity": 1, "maxCapacity": 2}), observed(), NOW)
    assert plan.error is not None
    assert "no scalable target" in plan.error


def test_autoscaled_count_is_noted_not_changed() -> None:
    """An autoscaled service without a declared count is in sync, with a note who owns the count."""
    plan = RECONCILER.diff(resource(), observed(5, "api:1", ScalableTarget(2, 8)), NOW)
    assert plan.in_sync
    assert plan.notes == ("desiredCount 5 is owned by Application Auto Scaling",)


def test_reconciler_kind_and_wake_times() -> None:
    """The ECS reconciler handles ECSService and never needs a timed pass."""
    assert RECONCILER.kinds == (Kind("ECSService"),)
    desired = DesiredState(Revision("r"), Path(), (resource(desiredCount=1),))
    assert RECONCILER.wake_times(desired, NOW) == []


# --- properties -------------------------------------------------------------------------------

FAMILIES = st.sampled_from(["api", "web", "worker"])
TASKS = st.builds(lambda f, r: f"{f}:{r}", FAMILIES, st.integers(min_value=1, max_value=50))
COUNTS = st.integers(min_value=0, max_value=20)
TARGETS = st.builds(
    lambda low, span: ScalableTarget(low, low + span),
    st.integers(min_value=0, max_value=10),
    st.integers(min_value=0, max_value=10),
)


@st.composite
def specs(draw: st.DrawFn) -> ECSServiceSpec:
    body: dict[str, Any] = {}
    pin = draw(st.none() | TASKS)
    if pin is not None:
        body["taskDefinition"] = draw(st.sampled_from([pin, arn(pin)]))
    choice = draw(st.sampled_from(["count", "autoscaling", "neither"]))
    if choice == "count":
        body["desiredCount"] = draw(COUNTS)
    elif choice == "autoscaling":
        bounds = draw(TARGETS)
        body["autoscaling"] = {"minCapacity": bounds.min_capacity, "maxCapacity": bounds.max_capacity}
    return service(**body).spec


OBSERVATIONS = st.builds(observed, COUNTS, TASKS, st.none() | TARGETS)


@given(spec=specs(), live=OBSERVATIONS)
def test_applying_the_plan_reaches_the_declared_state(spec: ECSServiceSpec, live: ServiceObservation) -> None:
    """Unless in conflict, applying the planned actions yields the declared state; a second diff is empty."""
    actions = diff_service("api", spec, live)
    if any(a.conflict for a in actions):
        return
    after = apply_to(live, actions)
    if spec.desiredCount is not None:
        assert after.desired_count == spec.desiredCount
    if spec.taskDefinition is not None:
        assert same_task_definition(spec.taskDefinition, after.task_definition)
    if spec.autoscaling is not None and live.scalable_target is not None:
        assert after.scalable_target == ScalableTarget(
            spec.autoscaling.minCapacity, spec.autoscaling.maxCapacity
        )
    assert diff_service("api", spec, after) == ()


@given(spec=specs(), live=OBSERVATIONS)
def test_conflicts_change_nothing(spec: ECSServiceSpec, live: ServiceObservation) -> None:
    """A conflict arises exactly when an autoscaled service declares a count; then every action is
    conflicted, so applying the plan leaves the service as it was."""
    actions = diff_service("api", spec, live)
    expect_conflict = live.scalable_target is not None and spec.desiredCount is not None
    assert any(a.conflict for a in actions) == expect_conflict
    if expect_conflict:
        assert all(a.conflict for a in actions)
        assert apply_to(live, actions) == live
        assert diff_service("api", spec, live) == actions


@given(spec=specs(), live=OBSERVATIONS)
def test_plans_are_minimal(spec: ECSServiceSpec, live: ServiceObservation) -> None:
    """At most one UpdateService (changing only drifted fields) and one RegisterScalableTarget
    (sending both bounds, at least one of which drifted)."""
    actions = diff_service("api", spec, live)
    kinds = [a.action for a in actions]
    assert kinds.count(ECSAction.UPDATE_SERVICE) <= 1
    assert kinds.count(ECSAction.UPDATE_SCALABLE_TARGET) <= 1
    for action in actions:
        assert set(action.before) == set(action.after)
        if action.conflict is not None:
            continue  # a conflict reports the declared count even when it equals the live one
        assert action.before != action.after
        if action.action == ECSAction.UPDATE_SERVICE:
            assert all(action.before[k] != action.after[k] for k in action.after)
        assert action.kind == Kind("ECSService")
        assert action.name == "api"
