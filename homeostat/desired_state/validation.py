"""Rules that span documents: duplicate names per kind, conflicting alarm selectors."""

from collections.abc import Sequence

from homeostat.desired_state.identifiers import Kind
from homeostat.desired_state.models import AlarmActions, AlarmSelector, ECSService, SnapshotRetention
from homeostat.desired_state.state import ManifestError, Resource


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


def _where(resource: Resource) -> str:
    return f"{resource.source.file}:{resource.source.line}"


def cross_check(resources: Sequence[Resource]) -> list[ManifestError]:
    """Errors that no single document shows. Pure."""
    errors: list[ManifestError] = []
    first_seen: dict[tuple[Kind, str], Resource] = {}
    for resource in resources:
        key = (resource.kind, resource.name)
        if key in first_seen:
            errors.append(
                ManifestError(
                    resource.source.file,
                    resource.source.line,
                    "metadata.name",
                    f"duplicate {resource.kind} name {resource.name!r} "
                    f"(first declared at {_where(first_seen[key])})",
                )
            )
        else:
            first_seen[key] = resource
    errors.extend(_same_service_twice(resources))
    errors.extend(_overlapping_snapshot_owners(resources))
    alarm_actions = [r for r in resources if isinstance(r.manifest, AlarmActions)]
    for index, left in enumerate(alarm_actions):
        for right in alarm_actions[index + 1 :]:
            assert isinstance(left.manifest, AlarmActions)
            assert isinstance(right.manifest, AlarmActions)
            if left.manifest.spec.actionsEnabled == right.manifest.spec.actionsEnabled:
                continue
            if selectors_overlap(left.manifest.spec, right.manifest.spec):
                errors.append(
                    ManifestError(
                        right.source.file,
                        right.source.line,
                        "spec",
                        f"AlarmActions {right.name!r} conflicts with AlarmActions {left.name!r} "
                        f"({_where(left)}): they select the same alarms with different actionsEnabled",
                    )
                )
    return errors


def _same_service_twice(resources: Sequence[Resource]) -> list[ManifestError]:
    """Two ECSService manifests for one service would fight each other: an error at the second."""
    errors: list[ManifestError] = []
    first_seen: dict[tuple[str, str], Resource] = {}
    for resource in resources:
        if not isinstance(resource.manifest, ECSService):
            continue
        spec = resource.manifest.spec
        cluster = spec.cluster.rsplit("/", 1)[-1] if spec.cluster.startswith("arn:") else spec.cluster
        key = (cluster, spec.service)
        if key in first_seen:
            first = first_seen[key]
            errors.append(
                ManifestError(
                    resource.source.file,
                    resource.source.line,
                    "spec.service",
                    f"ECSService {resource.name!r} manages service {spec.service!r} in cluster "
                    f"{cluster!r}, as does ECSService {first.name!r} ({_where(first)})",
                )
            )
        else:
            first_seen[key] = resource
    return errors


def _overlapping_snapshot_owners(resources: Sequence[Resource]) -> list[ManifestError]:
    """Two SnapshotRetention whose prefixes overlap are an error at the second, even on different
    clusters: on one cluster a snapshot would have two owners with different rules, and across
    clusters both would name their slot snapshots alike, while identifiers are unique per account
    and region (the second cluster's snapshot could never be created). Case-insensitive, as RDS
    stores identifiers in lower case."""
    errors: list[ManifestError] = []
    owners = [r for r in resources if isinstance(r.manifest, SnapshotRetention)]
    for index, left in enumerate(owners):
        for right in owners[index + 1 :]:
            assert isinstance(left.manifest, SnapshotRetention)
            assert isinstance(right.manifest, SnapshotRetention)
            a, b = left.manifest.spec, right.manifest.spec
            pa, pb = a.snapshotPrefix.lower(), b.snapshotPrefix.lower()
            if pa.startswith(pb) or pb.startswith(pa):
                errors.append(
                    ManifestError(
                        right.source.file,
                        right.source.line,
                        "spec.snapshotPrefix",
                        f"SnapshotRetention {right.name!r} prefix {b.snapshotPrefix!r} overlaps "
                        f"{a.snapshotPrefix!r} of SnapshotRetention {left.name!r} ({_where(left)}): "
                        "snapshot identifiers are unique per account and region, so one name "
                        "would have two owners",
                    )
                )
    return errors
