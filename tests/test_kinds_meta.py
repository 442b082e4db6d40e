"""Meta-tests over the registry of kinds (in the style of Cloud Custodian's policy meta-tests).

Each check is a function of a registry, so that a throwaway kind built here (lacking an
example, an IAM permission, a gauge declaration or a schema entry) can show each one
fails; the real registry must pass them all. Adding a kind therefore cannot forget any
of the places derived from its descriptor.
"""

import importlib
import json
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from types import ModuleType
from typing import Any, Literal, get_args

import pytest
import yaml
from prometheus_client import CollectorRegistry

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.loading import load_directory
from homeostat.desired_state.models import ManifestBase, SpecBase
from homeostat.desired_state.schema import manifest_schema
from homeostat.desired_state.state import DesiredState, Resource, Source
from homeostat.desired_state.validation import cross_check
from homeostat.metrics import Metrics, UndeclaredGauge
from homeostat.reconcilers.actions import Action, ApplyResult, GaugeSpec, Measurement, ObserveError, Plan
from homeostat.reconcilers.descriptor import KindDescriptor
from homeostat.reconcilers.registry import (
    KINDS,
    Registry,
    default_reconcilers,
    gauges,
    kind_modules,
    kind_table,
    schema_models,
)
from tests.conftest import EXAMPLES, REPO

POLICY = json.loads((REPO / "deploy" / "iam-policy.json").read_text())
SCHEMA = json.loads((REPO / "examples" / "homeostat.schema.json").read_text())
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


# --- the checks ----------------------------------------------------------------------------------


def example_problems(registry: Registry) -> list[str]:
    """Every kind has a documented example that validates, and a manifest in examples/desired-state/."""
    problems = []
    try:
        shipped = {r.kind for r in load_directory(EXAMPLES, kinds=kind_table(registry))}
    except Exception as exc:  # noqa: BLE001 - any failure to load the examples is the finding
        return [f"examples/desired-state does not load with this registry: {exc}"]
    for descriptor in registry:
        try:
            descriptor.model.model_validate(yaml.safe_load(descriptor.example))
        except Exception as exc:  # noqa: BLE001 - an example that does not validate is the finding
            problems.append(f"{descriptor.kind}: its example does not validate: {exc}")
        if "Example:" not in (descriptor.model.__doc__ or ""):
            problems.append(f"{descriptor.kind}: its model's docstring shows no example")
        if descriptor.kind not in shipped:
            problems.append(f"{descriptor.kind}: no manifest of this kind in examples/desired-state/")
    return problems


def policy_actions(policy: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for statement in policy["Statement"]:
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found


def permission_problems(registry: Registry, policy: Mapping[str, Any]) -> list[str]:
    """Every action and observation maps to permissions in the policy, and the policy holds nothing unused."""
    granted = policy_actions(policy)
    needed: set[str] = set()
    problems = []
    for descriptor in registry:
        if not descriptor.observations:
            problems.append(f"{descriptor.kind}: observing it needs no IAM action? declare its observations")
        for action, permissions in descriptor.actions.items():
            if not permissions:
                problems.append(f"{descriptor.kind}: action {action} maps to no IAM action")
        wanted = {p for ps in descriptor.actions.values() for p in ps} | set(descriptor.observations)
        needed |= wanted
        problems.extend(
            f"{descriptor.kind}: {p} is not in deploy/iam-policy.json" for p in sorted(wanted - granted)
        )
    problems.extend(
        f"deploy/iam-policy.json grants {p}, which no kind needs" for p in sorted(granted - needed)
    )
    return problems


def _gauges_in(module: ModuleType) -> set[GaugeSpec]:
    return {value for value in vars(module).values() if isinstance(value, GaugeSpec)}


def gauge_problems(registry: Registry) -> list[str]:
    """Every gauge a kind module (or a reconciler it is wired with) defines is declared by a descriptor,
    and the metrics module defines every declared gauge."""
    declared = {g for d in registry for g in d.gauges}
    modules = {sys.modules[d.module] for d in registry}
    modules |= {sys.modules[type(r).__module__] for r in default_reconcilers(registry)}
    problems = [
        f"{module.__name__}: gauge {gauge.name} is not declared by any kind descriptor"
        for module in sorted(modules, key=lambda m: m.__name__)
        for gauge in sorted(_gauges_in(module) - declared, key=lambda g: g.name)
    ]
    metrics = Metrics(CollectorRegistry(), gauges(registry))
    problems.extend(f"metrics lacks gauge {g.name}" for g in declared if g.name not in metrics.gauges)
    return problems


def schema_problems(registry: Registry, committed: Mapping[str, Any]) -> list[str]:
    """Every kind appears in the committed schema, and it is the output of `homeostat schema`."""
    mapping = committed.get("discriminator", {}).get("mapping", {})
    problems = [f"{d.kind}: not in examples/homeostat.schema.json" for d in registry if d.kind not in mapping]
    if manifest_schema(schema_models(registry)) != committed:
        problems.append("examples/homeostat.schema.json is not the output of `homeostat schema`")
    return problems


def independence_problems(registry: Registry, pyproject: Mapping[str, Any]) -> list[str]:
    """The import-linter independence contract lists exactly the kind modules."""
    contracts = pyproject["tool"]["importlinter"]["contracts"]
    listed = [c["modules"] for c in contracts if c["type"] == "independence"]
    if len(listed) != 1:
        return [f"expected one independence contract, found {len(listed)}"]
    if sorted(listed[0]) != sorted(kind_modules(registry)):
        return [
            f"independence contract lists {sorted(listed[0])}, the registry's kind modules are "
            f"{sorted(kind_modules(registry))}"
        ]
    return []


# --- the real registry passes every check ----------------------------------------------------------


def test_every_kind_has_a_documented_example_that_validates_and_ships_in_examples() -> None:
    """Each kind's descriptor example validates, its model documents one, examples/ holds one."""
    assert example_problems(KINDS) == []


def test_every_action_and_observation_has_its_iam_permission_and_the_policy_nothing_more() -> None:
    """deploy/iam-policy.json grants exactly what the kinds' actions and observations need."""
    assert permission_problems(KINDS, POLICY) == []


def test_every_gauge_is_declared() -> None:
    """Each GaugeSpec a kind module defines is in its descriptor, and metrics defines each."""
    assert gauge_problems(KINDS) == []


def test_every_kind_is_in_the_schema_and_the_committed_schema_is_current() -> None:
    """`homeostat schema` names every kind, and the committed schema file is its output."""
    assert schema_problems(KINDS, SCHEMA) == []


def test_the_independence_contract_lists_exactly_the_kind_modules() -> None:
    """Forgetting a kind module in pyproject's independence list fails here, not silently."""
    assert independence_problems(KINDS, PYPROJECT) == []


def test_the_registry_has_one_descriptor_per_kind_and_a_declared_pass_order() -> None:
    """Each kind is declared once, by its own module (`KIND`), and its model accepts exactly that
    spelling; distinct orders make the pass order a declaration. No other list of kinds exists."""
    kinds = [d.kind for d in KINDS]
    assert len(set(kinds)) == len(kinds)
    for descriptor in KINDS:
        assert descriptor.kind == importlib.import_module(descriptor.module).KIND
        assert get_args(descriptor.model.model_fields["kind"].annotation) == (descriptor.kind,)
    assert len({d.order for d in KINDS}) == len(KINDS)
    order = [kind for r in default_reconcilers() for kind in r.kinds]
    assert list(dict.fromkeys(order)) == [
        Kind("ECSTaskDefinition"),
        Kind("ECSService"),
        Kind("AlarmActions"),
        Kind("MaintenanceWindow"),
        Kind("SnapshotRetention"),
        Kind("AuroraCluster"),
    ]


def test_the_fought_over_actions_are_each_kinds_declared_corrections() -> None:
    """Fight detection counts what the kinds declare, nothing else: each correction is one of its
    kind's own actions, a deletion or a registration is never one, and adding a kind's
    correction reaches the fight rule through the registry alone."""
    from homeostat.operator.fights import CORRECTIONS
    from homeostat.reconcilers.registry import corrections

    for descriptor in KINDS:
        assert set(descriptor.corrections) <= set(descriptor.actions), descriptor.kind
    assert corrections() == CORRECTIONS
    assert {
        "update_service",
        "update_scalable_target",
        "modify_db_cluster",
        "enable_alarm_actions",
        "disable_alarm_actions",
    } == CORRECTIONS
    extra = replace(KINDS[0], corrections=(*KINDS[0].corrections, *KINDS[0].actions))
    assert set(map(str, KINDS[0].actions)) <= corrections((extra, *KINDS[1:]))


def test_one_reconciler_owns_every_alarm_call() -> None:
    """Exactly one reconciler plans for the alarm kinds' changes; the window kind's own sends nothing."""
    alarm_planners = [r for r in default_reconcilers() if Kind("AlarmActions") in r.kinds]
    assert len(alarm_planners) == 1
    assert set(alarm_planners[0].kinds) == {Kind("AlarmActions"), Kind("MaintenanceWindow")}


# --- a throwaway kind lacking each piece makes its check fail ----------------------------------

THROWAWAY = Kind("Throwaway")  # declared here, in no registry but the fake ones below
UNDECLARED = GaugeSpec("throwaway_pokes", "Pokes so far.", ("name",))


class ThrowawaySpec(SpecBase):
    target: str


class Throwaway(ManifestBase):
    """A kind that exists only in this test (its docstring has no example on purpose)."""

    kind: Literal["Throwaway"]
    spec: ThrowawaySpec


class ThrowawayAction(StrEnum):
    POKE = "poke"


class ThrowawayReconciler:
    kinds = (THROWAWAY,)

    def observe(
        self, resources: Sequence[Resource[Any]], desired: DesiredState, aws: Any, now: datetime
    ) -> Mapping[str, ObserveError | None]:
        return dict.fromkeys((r.name for r in resources), None)

    def diff(self, resource: Resource[Any], observed: ObserveError | None, now: datetime) -> Plan:
        return Plan(
            THROWAWAY, resource.name, measurements=(Measurement(UNDECLARED, {"name": resource.name}, 1),)
        )

    def apply(self, actions: Sequence[Action], aws: Any) -> list[ApplyResult]:
        return [ApplyResult(a) for a in actions]

    def wake_times(self, desired: DesiredState, now: datetime) -> list[datetime]:
        return []


LACKING_EVERYTHING = KindDescriptor(
    kind=THROWAWAY,
    model=Throwaway,
    order=99,
    example="",
    reconciler=ThrowawayReconciler(),
    actions={ThrowawayAction.POKE: ("throwaway:Poke",)},
    observations=("throwaway:DescribeThings",),
)
WITH_THROWAWAY = (*KINDS, LACKING_EVERYTHING)


def test_a_kind_without_an_example_fails_the_example_check() -> None:
    """No descriptor example, no docstring example, nothing in examples/desired-state/: three findings."""
    problems = [p for p in example_problems(WITH_THROWAWAY) if p.startswith("Throwaway")]
    assert len(problems) == 3


def test_a_kind_whose_permissions_the_policy_lacks_fails_the_iam_check() -> None:
    """throwaway:Poke and throwaway:DescribeThings are not granted: the check names both."""
    problems = permission_problems(WITH_THROWAWAY, POLICY)
    assert problems == [
        "Throwaway: throwaway:DescribeThings is not in deploy/iam-policy.json",
        "Throwaway: throwaway:Poke is not in deploy/iam-policy.json",
    ]


def test_a_policy_granting_more_than_the_kinds_need_fails_the_iam_check() -> None:
    """A grant no kind needs is a finding too (least privilege)."""
    wider = {"Statement": [*POLICY["Statement"], {"Action": ["rds:DeleteDBCluster"]}]}
    assert permission_problems(KINDS, wider) == [
        "deploy/iam-policy.json grants rds:DeleteDBCluster, which no kind needs"
    ]


def test_a_kind_setting_an_undeclared_gauge_fails_the_gauge_check_and_metrics_refuses_it() -> None:
    """The throwaway's module defines a gauge its descriptor does not declare; setting it raises."""
    assert gauge_problems(WITH_THROWAWAY) == [
        f"{__name__}: gauge throwaway_pokes is not declared by any kind descriptor"
    ]
    metrics = Metrics(CollectorRegistry(), gauges(WITH_THROWAWAY))
    with pytest.raises(UndeclaredGauge):
        metrics.set_measurement(UNDECLARED, {"name": "x"}, 1)


def test_a_kind_missing_from_the_committed_schema_fails_the_schema_check() -> None:
    """The registry's schema now has the throwaway; the committed file does not: two findings."""
    assert schema_problems(WITH_THROWAWAY, SCHEMA) == [
        "Throwaway: not in examples/homeostat.schema.json",
        "examples/homeostat.schema.json is not the output of `homeostat schema`",
    ]


def test_a_kind_module_missing_from_the_independence_contract_fails() -> None:
    """Registering a kind module without listing it in pyproject's independence contract fails."""
    assert independence_problems(WITH_THROWAWAY, PYPROJECT) != []


def test_a_fully_declared_throwaway_kind_loads_and_plans_through_the_registry() -> None:
    """With every piece declared, the throwaway is one descriptor: the loader and pass accept it."""
    declared = KindDescriptor(
        kind=THROWAWAY,
        model=Throwaway,
        order=99,
        example="apiVersion: homeostat/v1\nkind: Throwaway\nmetadata: {name: t}\nspec: {target: x}\n",
        reconciler=ThrowawayReconciler(),
        actions={ThrowawayAction.POKE: ("throwaway:Poke",)},
        observations=("throwaway:DescribeThings",),
        gauges=(UNDECLARED,),
    )
    registry = (*KINDS, declared)
    assert gauge_problems(registry) == []
    assert not [p for p in example_problems(registry) if "validate" in p]
    table = kind_table(registry)
    manifest = table.models[THROWAWAY].model_validate(yaml.safe_load(declared.example))
    assert isinstance(manifest, Throwaway)


# --- linear cross-document checks -------------------------------------------------------------------


def test_ten_thousand_documents_cross_check_without_pairwise_comparison() -> None:
    """10,000 resources of every kind (disjoint prefixes, names, services) cross-check cleanly."""
    table = kind_table()
    resources = []
    for i in range(2500):
        docs = [
            {"kind": "ECSService", "spec": {"cluster": "c", "service": f"s{i}", "desiredCount": 1}},
            {
                "kind": "SnapshotRetention",
                "spec": {
                    "dbClusterIdentifier": "db",
                    "snapshotPrefix": f"p{i:05d}x",
                    "retention": {"maxAge": "7d"},
                },
            },
            {"kind": "AlarmActions", "spec": {"alarmNamePrefix": f"a{i:05d}x", "actionsEnabled": i % 2 == 0}},
            {
                "kind": "MaintenanceWindow",
                "spec": {
                    "schedule": "0 2 * * SUN",
                    "duration": "1h",
                    "silenceAlarms": [{"alarmNames": [f"a{i:05d}x-1"]}],
                },
            },
        ]
        for doc in docs:
            model = table.models[Kind(doc["kind"])]
            manifest = model.model_validate(
                {"apiVersion": "homeostat/v1", "metadata": {"name": f"r{i}"}, **doc}
            )
            resources.append(Resource(manifest, Source("many.yaml", len(resources) + 1)))
    assert cross_check(resources, table.checks) == []
    duplicate = Resource(resources[2].manifest, Source("again.yaml", 1))  # an AlarmActions
    [error] = cross_check([*resources, duplicate], table.checks)
    assert error.file == "again.yaml"
    assert "many.yaml:3" in error.message


# --- no AWS library to validate or print the schema -------------------------------------------------


def _printed_by_a_fresh_interpreter(code: str, *args: str) -> str:
    """What `python -c code args...` prints: what a process imports starts from nothing."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_importing_the_registry_and_the_cli_schema_path_loads_no_aws_library() -> None:
    """`validate` and `schema` need no AWS library: the registry imports neither boto3 nor botocore."""
    code = (
        "import sys, homeostat.reconcilers.registry as r, homeostat.desired_state.loading as l;"
        "from homeostat.desired_state.schema import manifest_schema;"
        "manifest_schema(r.schema_models());"
        "l.load_directory(__import__('pathlib').Path(sys.argv[1]), kinds=r.kind_table());"
        "print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))"
    )
    assert _printed_by_a_fresh_interpreter(code, str(EXAMPLES)).strip() == "[]"


def test_the_kinds_reconcilers_are_imported_only_by_a_process_that_reconciles() -> None:
    """Loading and validating the examples imports the kinds, not the reconciler modules split
    from them; building the reconcilers (what run, plan and demo do) imports them."""
    split = (
        "homeostat.reconcilers.ecs_service_reconciler",
        "homeostat.reconcilers.snapshot_retention_reconciler",
    )
    code = (
        "import sys, homeostat.reconcilers.registry as r, homeostat.desired_state.loading as l;"
        "l.load_directory(__import__('pathlib').Path(sys.argv[1]), kinds=r.kind_table());"
        f"print(sorted(m for m in {split!r} if m in sys.modules));"
        "r.default_reconcilers();"
        f"print(sorted(m for m in {split!r} if m in sys.modules))"
    )
    assert _printed_by_a_fresh_interpreter(code, str(EXAMPLES)).split("\n")[:2] == ["[]", str(sorted(split))]
