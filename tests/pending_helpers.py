"""A stand-in for RDS's pending maintenance operations, which moto does not implement.

moto 5.2.5 answers DescribePendingMaintenanceActions and ApplyPendingMaintenanceAction with
NotImplementedError in-process and HTTP 500 from its server (testing-notes.md). This fake
answers them from a table instead, through botocore's `before-call` event (a handler that
returns (http, parsed) short-circuits the request), while every other RDS call, such as
DescribeDBClusters for the ARNs, still goes to moto. The answers follow the shapes of AWS's
API reference (ResourcePendingMaintenanceActions with PendingMaintenanceActionDetails:
Action, AutoAppliedAfterDate, ForcedApplyDate, OptInStatus, CurrentApplyDate, Description),
as botocore parses them (dates as aware datetimes).
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.awsrequest import AWSResponse

DESCRIBE = "DescribePendingMaintenanceActions"
APPLY = "ApplyPendingMaintenanceAction"


def detail(
    action: str,
    *,
    auto_applied_after: datetime | None = None,
    forced_apply: datetime | None = None,
    opt_in_status: str | None = None,
    description: str = "",
) -> dict[str, Any]:
    """One PendingMaintenanceActionDetails entry, as AWS returns it."""
    found: dict[str, Any] = {"Action": action, "Description": description or f"{action} available"}
    if auto_applied_after is not None:
        found["AutoAppliedAfterDate"] = auto_applied_after
    if forced_apply is not None:
        found["ForcedApplyDate"] = forced_apply
    if opt_in_status is not None:
        found["OptInStatus"] = opt_in_status
    return found


@dataclass
class FakePendingMaintenance:
    """Pending actions by cluster ARN; `applied` lists each ApplyPendingMaintenanceAction's
    parameters. `page_size` cuts describe answers into pages (following Marker), whatever
    MaxRecords asks; `failure` is raised by the next calls of its operation instead of an answer.
    `keep_applied`: an applied action stays listed as AWS lists it until the cluster has
    applied it (without the immediate opt-in, to test the history's memory alone)."""

    pending: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    applied: list[dict[str, Any]] = field(default_factory=list)
    describes: list[dict[str, Any]] = field(default_factory=list)
    failure: dict[str, BaseException] = field(default_factory=dict)
    page_size: int | None = None
    keep_applied: bool = True
    _params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def attach(self, client: Any) -> Any:
        for operation in (DESCRIBE, APPLY):
            client.meta.events.register(f"before-parameter-build.rds.{operation}", self._remember)
            client.meta.events.register(f"before-call.rds.{operation}", self._answer)
        return client

    def _remember(self, model: Any = None, params: Any = None, **_: Any) -> None:
        self._params[model.name] = dict(params or {})

    def _answer(self, model: Any = None, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        params = self._params.pop(model.name)
        if model.name in self.failure:
            raise self.failure[model.name]
        ok = AWSResponse("https://rds.stub", 200, {}, None)
        if model.name == DESCRIBE:
            self.describes.append(params)
            return ok, self._describe(params)
        self.applied.append(params)
        if not self.keep_applied:
            arn = params["ResourceIdentifier"]
            self.pending[arn] = [d for d in self.pending.get(arn, []) if d["Action"] != params["ApplyAction"]]
        return ok, {"ResourcePendingMaintenanceActions": {"ResourceIdentifier": params["ResourceIdentifier"]}}

    def _describe(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted: set[str] | None = None
        for item in params.get("Filters", []):
            if item["Name"] == "db-cluster-id":
                wanted = set(item["Values"])
        rows = [
            {"ResourceIdentifier": arn, "PendingMaintenanceActionDetails": list(details)}
            for arn, details in sorted(self.pending.items())
            if details and (wanted is None or arn in wanted)
        ]
        start = int(params.get("Marker") or 0)
        size = self.page_size or int(params.get("MaxRecords") or 100)
        answer: dict[str, Any] = {"PendingMaintenanceActions": rows[start : start + size]}
        if start + size < len(rows):
            answer["Marker"] = str(start + size)
        return answer
