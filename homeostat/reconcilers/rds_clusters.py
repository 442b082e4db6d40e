"""DescribeDBClusters for a set of named clusters: the read both RDS kinds share.

SnapshotRetention asks which clusters exist; AuroraCluster reads their status and
settings. One request per 100 identifiers (`Filters=[{Name: db-cluster-id, ...}]`,
which moto 5.2.5 implements, case-insensitively as AWS), following Marker, so a
pass costs one call per 100 clusters however many resources name them, and a
missing cluster is simply absent from the answer (a DBClusterIdentifier= request
would fail the whole batch with DBClusterNotFoundFault). Errors are raised: each
caller decides which resources they fail.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from homeostat.reconcilers.aws import chunks, pages

CLUSTER_FILTER_BATCH = 100  # AWS accepts up to 100 values per filter
CLUSTER_PAGE_SIZE = 100  # DescribeDBClusters accepts MaxRecords 20-100


def describe_clusters(rds: Any, clusters: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    """The DBClusters entries of the named clusters that exist, by lower-cased identifier
    (RDS stores identifiers in lower case). Raises on any AWS error or a repeated Marker."""
    found: dict[str, Mapping[str, Any]] = {}
    for batch in chunks(sorted({c.lower() for c in clusters}), CLUSTER_FILTER_BATCH):
        filters = [{"Name": "db-cluster-id", "Values": batch}]
        for response in pages(
            rds.describe_db_clusters, "Marker", Filters=filters, MaxRecords=CLUSTER_PAGE_SIZE
        ):
            for item in response.get("DBClusters", []):
                found[str(item["DBClusterIdentifier"]).lower()] = item
    return found
