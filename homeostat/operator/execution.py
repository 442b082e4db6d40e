"""The executor: the one place actions are applied and recorded.

Each action becomes an ActionRecord with an outcome (applied, failed,
dry_run, conflict), handed to exactly three sinks: the history row, the
`actions_total` counter and the log line.
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from homeostat.metrics import Metrics
from homeostat.operator.history import HistoryStore
from homeostat.operator.records import ActionRecord
from homeostat.reconcilers.actions import Action, Finding, Outcome
from homeostat.reconcilers.aws import AwsClients
from homeostat.reconcilers.base import Reconciler

Clock = Callable[[], datetime]


class Executor:
    def __init__(self, history: HistoryStore | None, metrics: Metrics | None, log: Any, clock: Clock) -> None:
        self.history = history
        self.metrics = metrics
        self.log = log
        self.clock = clock
        self._unwritten: list[ActionRecord] = []

    def execute(
        self,
        reconciler: Reconciler,
        actions: Sequence[Action],
        aws: AwsClients,
        *,
        revision: str,
        dry_run: bool,
    ) -> list[ActionRecord]:
        records: list[ActionRecord] = []
        to_apply: list[Action] = []
        for action in actions:
            if action.conflict is not None:
                records.append(
                    ActionRecord.of(action, Outcome.CONFLICT, time=self.clock(), revision=revision)
                )
            elif dry_run:
                records.append(ActionRecord.of(action, Outcome.DRY_RUN, time=self.clock(), revision=revision))
            else:
                to_apply.append(action)
        if to_apply:
            for result in reconciler.apply(to_apply, aws):
                outcome = Outcome.APPLIED if result.error is None else Outcome.FAILED
                records.append(
                    ActionRecord.of(
                        result.action,
                        outcome,
                        time=self.clock(),
                        revision=revision,
                        error=result.error,
                    )
                )
        self.record(records)
        return records

    def record_findings(self, findings: Sequence[Finding], *, revision: str) -> list[ActionRecord]:
        """Record each finding once, ever: a row with the same identity already in the history
        means it was reported before (by this process, an earlier one, or `run --once`)."""
        records = []
        for finding in findings:
            record = ActionRecord(
                time=self.clock(),
                kind=str(finding.kind),
                name=finding.name,
                action=finding.action,
                target=finding.target,
                outcome=Outcome.FAILED,
                before={},
                after={},
                reason=finding.reason,
                error=finding.error,
                revision=revision,
                dry_run=False,
            )
            if self.history is None or not self.history.exists(record):
                records.append(record)
        self.record(records)
        return records

    def record(self, records: Sequence[ActionRecord]) -> None:
        """Log and count first, then write the history: a failing database must not hide an
        action already applied in AWS. Rows that could not be written are kept and written
        with the next records; the failure is logged and raised to the loop (a pass whose
        history cannot be written is not progress)."""
        self._log_and_count(records)
        self._unwritten.extend(records)
        if self.history is None or not self._unwritten:
            self._unwritten.clear()
            return
        try:
            self.history.add(self._unwritten)
        except Exception as exc:
            self.log.error("history_write_failed", rows=len(self._unwritten), error=str(exc))
            raise
        self._unwritten.clear()

    def _log_and_count(self, records: Sequence[ActionRecord]) -> None:
        for record in records:
            if self.metrics is not None:
                self.metrics.actions_total.labels(
                    kind=record.kind, action=record.action, outcome=str(record.outcome)
                ).inc()
            self.log.info(
                "action",
                kind=record.kind,
                name=record.name,
                action=record.action,
                target=record.target,
                before=dict(record.before),
                after=dict(record.after),
                outcome=str(record.outcome),
                reason=record.reason,
                error=record.error,
                revision=record.revision,
                dry_run=record.dry_run,
            )
