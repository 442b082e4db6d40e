"""ActionRecord: an action with what became of it; the one value every sink receives."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeostat.operator.clock import rfc3339
from homeostat.reconcilers.actions import Action, Outcome


@dataclass(frozen=True, slots=True)
class ActionRecord:
    time: datetime
    kind: str
    name: str
    action: str
    target: str
    outcome: Outcome
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    reason: str
    error: str | None
    revision: str
    dry_run: bool

    @classmethod
    def of(
        cls,
        action: Action,
        outcome: Outcome,
        *,
        time: datetime,
        revision: str,
        error: str | None = None,
    ) -> "ActionRecord":
        return cls(
            time=time,
            kind=str(action.kind),
            name=action.name,
            action=action.action,
            target=action.target,
            outcome=outcome,
            before=dict(action.before),
            after=dict(action.after),
            reason=action.reason
            if action.conflict is None
            else f"{action.reason}; conflict: {action.conflict}",
            error=error,
            revision=revision,
            dry_run=outcome == Outcome.DRY_RUN,
        )

    def to_json(self) -> dict[str, Any]:
        """The `history --json` object (contract section 5)."""
        return {
            "time": rfc3339(self.time),
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "target": self.target,
            "outcome": str(self.outcome),
            "before": dict(self.before),
            "after": dict(self.after),
            "reason": self.reason,
            "error": self.error,
            "revision": self.revision,
            "dry_run": self.dry_run,
        }
