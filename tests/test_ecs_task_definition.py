"""Specification of ECSTaskDefinition (contract section 2, issue 13 item 1) against moto in-process.

The loader resolves `definitionFile` from the `*.json` files it reads with the manifests
(so the file is part of the revision); the reconciler registers a revision only when no
ACTIVE revision of the family carries the declared digest, tags it, describes each
revision once per process, and with keepRevisions deregisters only homeostat's own
revisions beyond the newest N that no service of the observed clusters runs.
"""

import itertools
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from homeostat.desired_state.identifiers import Revision
from homeostat.desired_state.loading import load_directory, read_directory
from homeostat.desired_state.state import DesiredState, InvalidDesiredState, Resource, Source
from homeostat.reconcilers.ecs_service import ECSService
from homeostat.reconcilers.ecs_task_definition import (
    ECSTaskDefinition,
    ECSTaskDefinitionReconciler,
    FamilyObservation,
    TaskDefinitionAction,
    diff_task_definition,
)
from homeostat.reconcilers.registry import kind_table
from homeostat.reconcilers.task_definitions import (
    DIGEST_TAG,
    RevisionCatalog,
    RevisionInfo,
    digest_of,
)

from .conftest import CountingClients

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
FAMILY = "shop-api"
CLUSTER = "prod"


def definition(image: str = "nginx:1") -> dict[str, Any]:
    return {"containerDefinitions": [{"name": "api", "image": image, "memory": 128, "essential": True}]}


def task_definition(name: str = "api", family: str = FAMILY, **spec: Any) -> Resource[ECSTaskDefinition]:
    body = {"family": family, **spec}
    if "definitionFile" not in body:
        body.setdefault("definition", definition())
    model = ECSTaskDefinition.model_validate(
        {"apiVersion": "homeostat/v1", "kind": "ECSTaskDefinition", "metadata": {"name": name}, "spec": body}
    )
    return Resource(model, Source("task-definitions.yaml", 1))


def service(name: str, cluster: str = CLUSTER) -> Resource[ECSService]:
    model = ECSService.model_validate(
        {
            "apiVersion": "homeostat/v1",
            "kind": "ECSService",
            "metadata": {"name": name},
            "spec": {"cluster": cluster, "service": name, "taskDefinitionFrom": "api"},
        }
    )
    return Resource(model, Source("services.yaml", 1))


def state(*resources: Resource[Any]) -> DesiredState:
    return DesiredState(Revision("test"), Path(), tuple(resources))


@pytest.fixture
def clients(counting_clients: CountingClients) -> Iterator[CountingClients]:
    with mock_aws():
        yield counting_clients


PASSES = itertools.count(1)


def one_pass(
    reconciler: ECSTaskDefinitionReconciler, clients: CountingClients, *resources: Resource[Any]
) -> dict[str, Any]:
    """Observe, diff and apply every action of the task definitions, as the executor would, in a
    pass of its own (a new start instant: the catalog keeps a family's listing for one pass)."""
    desired = state(*resources)
    mine = [r for r in resources if isinstance(r.manifest, ECSTaskDefinition)]
    observed = reconciler.observe(mine, desired, clients, NOW + timedelta(seconds=next(PASSES)))
    plans = {r.name: reconciler.diff(r, observed[r.name], NOW) for r in mine}
    actions = [a for p in plans.values() for a in p.actions]
    results = reconciler.apply(actions, clients) if actions else []
    assert all(r.error is None for r in results), [r.error for r in results]
    return plans


def active(clients: CountingClients, family: str = FAMILY) -> list[str]:
    listed = clients.client("ecs").list_task_definitions(familyPrefix=family, status="ACTIVE")
    return [arn.rsplit("/", 1)[-1] for arn in listed["taskDefinitionArns"]]


# --- the loader: definitionFile -------------------------------------------------------------------


def write_directory(tmp_path: Path, file_body: str, manifest_extra: str = "") -> Path:
    directory = tmp_path / "desired"
    (directory / "defs").mkdir(parents=True, exist_ok=True)
    (directory / "defs" / "api.json").write_text(file_body)
    (directory / "api.yaml").write_text(
        "apiVersion: homeostat/v1\nkind: ECSTaskDefinition\nmetadata: {name: api}\nspec:\n"
        f"  family: {FAMILY}\n  definitionFile: defs/api.json\n{manifest_extra}"
    )
    return directory


def test_a_definition_file_is_read_with_the_revision_and_has_the_inline_digest(tmp_path: Path) -> None:
    """The runbook's JSON (family included) becomes the definition; same content, same digest."""
    directory = write_directory(tmp_path, json.dumps({"family": FAMILY, **definition()}))
    [resource] = load_directory(directory, kinds=kind_table()).resources
    spec = resource.manifest.spec
    assert spec.definition == definition()
    assert digest_of(spec.content()) == digest_of(task_definition().manifest.spec.content())
    files, revision = read_directory(directory)
    assert Path("defs/api.json") in files  # kept in the last-known-good copy with the manifests
    (directory / "defs" / "api.json").write_text(json.dumps(definition("nginx:2")))
    assert read_directory(directory)[1] != revision  # the file is part of the revision


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{not json", "defs/api.json is not JSON"),
        ("[1, 2]", "must hold a JSON object"),
        (json.dumps({"family": "other", **definition()}), "declares family 'other'"),
        (json.dumps({"tags": [], **definition()}), "must not hold tags"),
    ],
)
def test_a_bad_definition_file_is_a_located_validation_error(
    tmp_path: Path, body: str, expected: str
) -> None:
    directory = write_directory(tmp_path, body)
    with pytest.raises(InvalidDesiredState) as caught:
        load_directory(directory, kinds=kind_table())
    [error] = caught.value.errors
    assert (error.file, error.line, error.field) == ("api.yaml", 6, "spec.definitionFile")
    assert expected in error.message


def test_a_missing_definition_file_is_a_validation_error(tmp_path: Path) -> None:
    directory = write_directory(tmp_path, "{}")
    (directory / "defs" / "api.json").unlink()
    with pytest.raises(InvalidDesiredState) as caught:
        load_directory(directory, kinds=kind_table())
    assert [str(e) for e in caught.value.errors] == [
        "api.yaml:6: spec.definitionFile: 'defs/api.json': no such file in the desired-state "
        "directory (defs/api.json)"
    ]


def test_two_task_definitions_of_one_family_are_an_error_at_the_second(tmp_path: Path) -> None:
    directory = write_directory(tmp_path, json.dumps(definition()))
    (directory / "web.yaml").write_text(
        "apiVersion: homeostat/v1\nkind: ECSTaskDefinition\nmetadata: {name: web}\n"
        f"spec: {{family: {FAMILY}, definition: {{containerDefinitions: []}}}}\n"
    )
    with pytest.raises(InvalidDesiredState) as caught:
        load_directory(directory, kinds=kind_table())
    assert [str(e) for e in caught.value.errors] == [
        f"web.yaml:1: spec.family: ECSTaskDefinition 'web' declares family '{FAMILY}', as does "
        "ECSTaskDefinition 'api' (api.yaml:1)"
    ]


def test_definition_and_definition_file_are_exclusive_and_family_and_tags_are_refused() -> None:
    with pytest.raises(ValueError, match="exactly one of definition or definitionFile"):
        task_definition(definitionFile="a.json", definition=definition())
    with pytest.raises(ValueError, match="must not hold family, tags"):
        task_definition(definition={**definition(), "family": FAMILY, "tags": []})


def test_the_digest_is_canonical_json_without_defaults() -> None:
    """Key order and whitespace do not change the digest; any value does."""
    a = {"cpu": "256", "containerDefinitions": [{"image": "x", "name": "n"}]}
    b = json.loads('{"containerDefinitions":[{"name":"n","image":"x"}],   "cpu":"256"}')
    assert digest_of(a) == digest_of(b)
    assert digest_of(a) != digest_of({**a, "cpu": "512"})
    assert digest_of(a) != digest_of({**a, "memory": "512"})  # no AWS default is assumed


# --- the reconciler -------------------------------------------------------------------------------


def test_registers_once_tagged_and_a_new_process_finds_it_by_its_tag(clients: CountingClients) -> None:
    """The first pass registers the content with its digest tag; a new process (a crash between
    the call and the history row) reads the tag and registers nothing."""
    clients.client("ecs").register_task_definition(family=FAMILY, **definition("by-hand"))
    resource = task_definition()
    plans = one_pass(ECSTaskDefinitionReconciler(), clients, resource)
    [action] = plans["api"].actions
    assert action.action == TaskDefinitionAction.REGISTER
    assert action.before == {"revision": f"{FAMILY}:1", "digest": None}
    assert action.after == {"revision": f"{FAMILY}:(new)", "digest": digest_of(definition())}
    assert action.reason.endswith(f"(digest {digest_of(definition())[:12]}; nginx:1)")
    assert active(clients) == [f"{FAMILY}:1", f"{FAMILY}:2"]
    described = clients.client("ecs").describe_task_definition(taskDefinition=f"{FAMILY}:2", include=["TAGS"])
    assert {t["key"]: t["value"] for t in described["tags"]} == {
        DIGEST_TAG: digest_of(definition()),
        "managed-by": "homeostat",
    }
    clients.log.calls.clear()
    plans = one_pass(ECSTaskDefinitionReconciler(), clients, resource)
    assert plans["api"].actions == ()
    assert plans["api"].notes == (
        f"{FAMILY}:2 holds the declared content (digest {digest_of(definition())[:12]})",
    )
    assert clients.log.count()["RegisterTaskDefinition"] == 0


def test_each_revision_is_described_once_per_process_and_other_families_are_ignored(
    clients: CountingClients,
) -> None:
    """ListTaskDefinitions every pass (family prefix, ACTIVE, newest first); DescribeTaskDefinition
    once per revision per catalog; `shop-api-worker` shares the prefix and is not looked at."""
    ecs = clients.client("ecs")
    for image in ("a", "b", "c"):
        ecs.register_task_definition(family=FAMILY, **definition(image))
    ecs.register_task_definition(family=f"{FAMILY}-worker", **definition("w"))
    reconciler = ECSTaskDefinitionReconciler()
    clients.log.calls.clear()
    one_pass(reconciler, clients, task_definition())
    first = clients.log.count()
    assert (
        first["ListTaskDefinitions"],
        first["DescribeTaskDefinition"],
        first["RegisterTaskDefinition"],
    ) == (
        1,
        3,
        1,
    )
    [listing] = clients.log.of("ListTaskDefinitions")
    assert (listing["familyPrefix"], listing["status"], listing["sort"]) == (FAMILY, "ACTIVE", "DESC")
    described = {p["taskDefinition"].rsplit("/", 1)[-1] for p in clients.log.of("DescribeTaskDefinition")}
    assert described == {f"{FAMILY}:1", f"{FAMILY}:2", f"{FAMILY}:3"}
    clients.log.calls.clear()
    plans = one_pass(reconciler, clients, task_definition())
    assert plans["api"].actions == ()
    assert dict(clients.log.count()) == {"ListTaskDefinitions": 1}  # the registered one was remembered


def test_a_revert_to_content_still_active_registers_nothing(clients: CountingClients) -> None:
    reconciler = ECSTaskDefinitionReconciler()
    one_pass(reconciler, clients, task_definition(definition=definition("v1")))
    one_pass(reconciler, clients, task_definition(definition=definition("v2")))
    clients.log.calls.clear()
    plans = one_pass(reconciler, clients, task_definition(definition=definition("v1")))
    assert plans["api"].actions == ()
    assert clients.log.count()["RegisterTaskDefinition"] == 0
    assert active(clients) == [f"{FAMILY}:1", f"{FAMILY}:2"]


def test_aws_refusing_the_definition_is_that_resources_error(clients: CountingClients) -> None:
    """Unknown keys are passed as they are; the refusal is the action's error."""
    reconciler = ECSTaskDefinitionReconciler()
    resource = task_definition(definition={**definition(), "noSuchKey": 1})
    observed = reconciler.observe([resource], state(resource), clients, NOW)
    [action] = reconciler.diff(resource, observed["api"], NOW).actions
    [result] = reconciler.apply([action], clients)
    assert result.error is not None
    assert "noSuchKey" in result.error
    assert active(clients) == []


def test_keep_revisions_deregisters_only_old_own_revisions_no_service_runs(clients: CountingClients) -> None:
    """keepRevisions 2 over 5 own revisions and 1 by hand: the by-hand one stays, the newest 2 own
    stay, the one a service (unmanaged, in an observed cluster) runs stays; the others go."""
    ecs = clients.client("ecs")
    ecs.create_cluster(clusterName=CLUSTER)
    reconciler = ECSTaskDefinitionReconciler()
    ecs.register_task_definition(family=FAMILY, **definition("by-hand"))  # :1
    for image in ("v1", "v2", "v3", "v4", "v5"):  # :2 .. :6
        one_pass(reconciler, clients, task_definition(definition=definition(image)))
    ecs.create_service(cluster=CLUSTER, serviceName="legacy", taskDefinition=f"{FAMILY}:3", desiredCount=1)
    resources = (task_definition(definition=definition("v5"), keepRevisions=2), service("web"))
    plans = one_pass(reconciler, clients, *resources)
    deregistered = sorted(a.target for a in plans["api"].actions)
    assert deregistered == [f"{FAMILY}:2", f"{FAMILY}:4"]
    assert all(a.action == TaskDefinitionAction.DEREGISTER for a in plans["api"].actions)
    assert f"{FAMILY}:3 is kept: a service runs it" in plans["api"].notes
    assert active(clients) == [f"{FAMILY}:1", f"{FAMILY}:3", f"{FAMILY}:5", f"{FAMILY}:6"]


def test_keep_revisions_deregisters_nothing_when_the_services_cannot_be_read() -> None:
    """Fail closed: without the list of what services run, no revision is deregistered."""
    spec = task_definition(keepRevisions=1).manifest.spec
    revisions = tuple(
        RevisionInfo(f"arn:aws:ecs:r:1:task-definition/{FAMILY}:{n}", n, f"d{n}", True) for n in (3, 2, 1)
    )
    plan = diff_task_definition("api", spec, FamilyObservation(revisions, None, "cannot read the services"))
    assert [a.action for a in plan.actions] == [TaskDefinitionAction.REGISTER]
    assert "no revision is deregistered: cannot read the services" in plan.notes


# Each example is a fresh moto account and up to nine passes: 30 examples, in either profile.
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    preexisting=st.lists(st.sampled_from("abcd"), max_size=3),
    commits=st.lists(st.sampled_from("abcdef"), min_size=1, max_size=6),
)
def test_registrations_equal_the_distinct_digests_not_already_active(
    counting_clients: CountingClients, preexisting: Sequence[str], commits: Sequence[str]
) -> None:
    """Property: for any sequence of commits of definitions (and revisions already ACTIVE with
    homeostat's tag, e.g. from an earlier process), the number of RegisterTaskDefinition calls is
    the number of distinct digests among the commits that no ACTIVE revision carried."""
    with mock_aws():
        earlier = ECSTaskDefinitionReconciler()
        for image in preexisting:
            one_pass(earlier, counting_clients, task_definition(definition=definition(image)))
        counting_clients.log.calls.clear()
        reconciler = ECSTaskDefinitionReconciler(RevisionCatalog())  # a new process
        for image in commits:
            one_pass(reconciler, counting_clients, task_definition(definition=definition(image)))
        assert counting_clients.log.count()["RegisterTaskDefinition"] == len(set(commits) - set(preexisting))


def test_an_uncommitted_definition_file_edit_makes_the_git_revision_dirty(tmp_path: Path) -> None:
    """The JSON file counts like a manifest for the dirty flag (it is read with the revision)."""
    from tests.test_gitops_git import commit_all, new_repo

    repo = new_repo(tmp_path / "repo")
    directory = write_directory(repo, json.dumps(definition()))
    commit = commit_all(repo, "api")[:12]
    assert load_directory(directory, kinds=kind_table()).revision == commit
    (directory / "defs" / "api.json").write_text(json.dumps(definition("nginx:2")))
    assert load_directory(directory, kinds=kind_table()).revision.startswith(f"{commit}-dirty.")
