"""The executor: the one place actions are applied and everything is recorded.

Every action and event becomes an ActionRecord with an outcome, handed to
exactly three sinks: the history row, the `actions_total` counter and the log
line. A mutation is journaled first: its row is written `pending` (and
committed) before the AWS call, and overwritten with `applied`/`failed` when
AWS answers, so a SIGKILL at any moment leaves a row for every call AWS may
have seen. One Executor serves every kind's worker thread of a pass; the mutations of
a kind are sent by a bounded pool (`sending.py`).
"""

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from homeostat.metrics import Metrics
from homeostat.operator.history import HistoryStore
from homeostat.operator.records import ActionRecord, Event, event_record, recorded_once
from homeostat.operator.sending import send_in_stages
from homeostat.reconcilers.actions import Action, Outcome
from homeostat.reconcilers.aws import AwsClients
from homeostat.reconcilers.base import AnyReconciler

Clock = Callable[[], datetime]
# A record to write, with the row id of its journal entry when it completes one.
Entry = tuple[int | None, ActionRecord]


# One resource's actions for `execute_all`: its reconciler, the actions, whether a dry run, and
# the clients they are sent with (its region's).
Item = tuple[AnyReconciler, Sequence[Action], bool, AwsClients]
DEFAULT_CONCURRENCY = 8


class Executor:
    def __init__(
        self,
        history: HistoryStore | None,
        metrics: Metrics | None,
        log: Any,
        clock: Clock,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.history = history
        self.metrics = metrics
        self.log = log
        self.clock = clock
        self.concurrency = concurrency
        # Guards _unwritten and orders history writes; never held during an AWS call.
        self._lock = threading.Lock()
        self._unwritten: list[Entry] = []

    def execute(
        self,
        reconciler: AnyReconciler,
        actions: Sequence[Action],
        aws: AwsClients,
        *,
        revision: str,
        dry_run: bool,
    ) -> list[ActionRecord]:
        """Apply the actions of one resource (see `execute_all`)."""
        return self.execute_all([(reconciler, actions, dry_run, aws)], revision=revision)[0]

    def execute_all(
        self,
        items: Sequence[Item],
        *,
        revision: str,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> list[list[ActionRecord]]:
        """Apply the actions of several resources of a pass, one record list per item.

        Conflicts and dry runs are recorded, never sent. Every other action is journaled
        (one transaction for all of them) before anything is sent; then the units of each
        stage (`Staged`) go through a pool of `concurrency` workers, stage after stage, and
        every completion is written in one transaction at the end. An exception in apply (a
        bug, an unexpected botocore error) fails the actions of its unit only; a unit not
        started when a shutdown is asked is not sent (recorded failed, `not sent: shutting
        down`)."""
        entries: list[list[Entry]] = [[] for _ in items]
        to_apply: list[tuple[int, AnyReconciler, list[Action], AwsClients]] = []
        for index, (reconciler, actions, dry_run, aws) in enumerate(items):
            sent: list[Action] = []
            for action in actions:
                if action.conflict is not None:
                    outcome: Outcome | None = Outcome.CONFLICT
                elif dry_run:
                    outcome = Outcome.DRY_RUN
                else:
                    outcome = None
                    sent.append(action)
                if outcome is not None:
                    record = ActionRecord.of(action, outcome, time=self.clock(), revision=revision)
                    entries[index].append((None, record))
            if sent:
                to_apply.append((index, reconciler, sent, aws))
        if to_apply:
            for index, completed in self._journaled_apply(to_apply, revision, should_stop):
                entries[index].extend(completed)
        self._emit([entry for item in entries for entry in item])
        return [[record for _, record in item] for item in entries]

    def record(self, events: Sequence[Event], *, revision: str) -> list[ActionRecord]:
        """Record events (findings, revision rejections, unmanaged resources) through the same
        sinks as actions. A finding is recorded once, ever: a completed row with its identity
        already in the history means it was reported before (by this process, an earlier one,
        or `run --once`)."""
        records = []
        for event in events:
            record = event_record(event, time=self.clock(), revision=revision)
            if not (recorded_once(event) and self.history is not None and self.history.exists(record)):
                records.append(record)
        self._emit([(None, r) for r in records])
        return records

    def _journaled_apply(
        self,
        to_apply: list[tuple[int, AnyReconciler, list[Action], AwsClients]],
        revision: str,
        should_stop: Callable[[], bool],
    ) -> list[tuple[int, list[Entry]]]:
        every = [action for _, _, actions, _ in to_apply for action in actions]
        pending = [ActionRecord.of(a, Outcome.PENDING, time=self.clock(), revision=revision) for a in every]
        try:
            ids = iter(self._journal(pending))
        except Exception as exc:  # noqa: BLE001 - what cannot be journaled is not sent
            error = f"not sent: the journal could not be written: {type(exc).__name__}: {exc}"
            self.log.error("journal_write_failed", rows=len(pending), error=str(exc))
            return [
                (index, [(None, self._completed(a, revision, error)) for a in actions])
                for index, _, actions, _ in to_apply
            ]
        errors = send_in_stages(
            [(reconciler, actions, aws) for _, reconciler, actions, aws in to_apply],
            self.concurrency,
            should_stop,
        )
        return [
            (
                index,
                [
                    (next(ids), self._completed(a, revision, error))
                    for a, error in zip(actions, found, strict=True)
                ],
            )
            for (index, _, actions, _), found in zip(to_apply, errors, strict=True)
        ]

    def _completed(self, action: Action, revision: str, error: str | None) -> ActionRecord:
        outcome = Outcome.APPLIED if error is None else Outcome.FAILED
        return ActionRecord.of(action, outcome, time=self.clock(), revision=revision, error=error)

    def _journal(self, pending: list[ActionRecord]) -> list[int | None]:
        """Commit the pending rows (with any rows still unwritten) before anything is sent."""
        if self.history is None:
            return [None] * len(pending)
        with self._lock:
            written = self.history.write([*self._unwritten, *((None, r) for r in pending)])
            self._unwritten.clear()
        return written[len(written) - len(pending) :]

    def _emit(self, entries: Sequence[Entry]) -> None:
        """Log and count first, then write the history: a failing database must not hide an
        action already applied in AWS. Rows that could not be written are kept and written
        with the next records; the failure is logged and raised to the loop (a pass whose
        history cannot be written is not progress)."""
        for _, record in entries:
            self._log_and_count(record)
        with self._lock:
            self._unwritten.extend(entries)
            if self.history is None or not self._unwritten:
                self._unwritten.clear()
                return
            try:
                self.history.write(self._unwritten)
            except Exception as exc:
                self.log.error("history_write_failed", rows=len(self._unwritten), error=str(exc))
                raise
            self._unwritten.clear()

    def _log_and_count(self, record: ActionRecord) -> None:
        if self.metrics is not None:
            self.metrics.actions_total.labels(
                kind=record.kind, action=record.action, outcome=str(record.outcome)
            ).inc()
        self.log.info("action", **record.to_json())


def mark_interrupted(history: HistoryStore, log: Any) -> list[ActionRecord]:
    """The start-up step of the journal: every `pending` row left by a process killed while
    AWS had its call becomes `interrupted` and is logged. Call it holding the lease, before
    the first pass; that pass observes every resource again (a new process has no backoff),
    so what the interrupted call did or did not do is seen before anything else is sent."""
    interrupted = history.mark_interrupted()
    for record in interrupted:
        log.warning("action_interrupted", **record.to_json())
    return interrupted
