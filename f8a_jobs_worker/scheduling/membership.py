"""This replica's part in the cluster: heartbeat, taking over from replicas that are gone, the shared pause.

A thread of the worker. Every ``heartbeat_interval`` it renews this replica's heartbeat, deletes the replicas
whose heartbeat lapsed, and in the same transaction takes what they left: their unfinished runs (reported as
``job.interrupted`` and run again where the job asked for it) and their unsent outbox rows. It also applies the
stored ``scheduler.pause``/``resume`` to this replica's scheduler (a notification makes that immediate; this
is the fallback). On SQLite only one replica runs (a file lock sees to it), so the same loop serves to take
over from the previous, dead process at start.
"""

from __future__ import annotations

import logging
import time
from functools import partial

from f8a_jobs_worker import retry
from f8a_jobs_worker.lifecycle import Doorbell, Rounds
from f8a_jobs_worker.persistence.ledger import LedgerEntry, RunLedger
from f8a_jobs_worker.persistence.replicas import Replicas
from f8a_jobs_worker.persistence.scheduler_state import SchedulerStateStore
from f8a_jobs_worker.persistence.unit_of_work import Transactions, UnitOfWork
from f8a_jobs_worker.scheduling.executor import RunExecutor
from f8a_jobs_worker.scheduling.outcomes import Outcomes
from f8a_jobs_worker.scheduling.scheduler import Scheduler

log = logging.getLogger(__name__)


class Membership(Rounds):
    def __init__(
        self,
        transactions: Transactions,
        replicas: Replicas,
        ledger: RunLedger,
        state: SchedulerStateStore,
        outcomes: Outcomes,
        executor: RunExecutor,
        scheduler: Scheduler,
        bell: Doorbell,
    ) -> None:
        """``bell`` rings when the stored pause may have changed (a notification from any replica)."""
        outage = retry.Outage("job store (heartbeat)", log)
        super().__init__("f8a-heartbeat", replicas.heartbeat_interval, outage, bell)
        self.transactions = transactions
        self.replicas = replicas
        self.ledger = ledger
        self.state = state
        self.outcomes = outcomes
        self.executor = executor
        self.scheduler = scheduler
        #: the shared pause is applied to this replica's scheduler only once the worker has started
        #: whether the stored pause is applied to this replica's scheduler (tests turn it off to pause one
        #: replica alone)
        self.following = True
        self.joined = False

    def join(self, everyone_else_gone: bool) -> None:
        """Register this replica and take over what gone replicas left. ``everyone_else_gone``: no other
        replica can be running (SQLite, under its file lock), so none is waited for to lapse."""
        began = time.monotonic()
        with self.transactions.begin() as uow:
            self.replicas.register(uow)
            uow.after_commit(partial(self.replicas.renewed, began))
            self._take_over(uow, self.replicas.reap(uow, everyone_else_gone))
        self.joined = True

    def leave(self) -> None:
        """Unregister (a clean stop): anything left in the ledger is reported by the others at once."""
        if not self.joined:
            return
        try:
            with self.transactions.begin() as uow:
                self.replicas.leave(uow)
        except Exception as exc:  # the others take over once the heartbeat lapses
            log.warning("could not unregister this replica (%s)", retry.reason(exc))

    def round(self) -> None:
        self.beat()

    def beat(self) -> None:
        """One round: renew, take over from lapsed replicas, follow the shared pause."""
        began = time.monotonic()
        with self.transactions.begin() as uow:
            if not self.replicas.renew(uow):
                log.warning(
                    "this replica (%s) was taken for gone by the others (no heartbeat for %.0fs or "
                    "more); its runs in progress were reported interrupted; registering again",
                    self.replicas.replica_id,
                    self.replicas.lapse,
                )
                self.replicas.register(uow)
            uow.after_commit(partial(self.replicas.renewed, began))
            self._take_over(uow, self.replicas.reap(uow))
            paused = self.state.is_paused(uow)
        if self.following:
            self.scheduler.follow(paused)

    def _take_over(self, uow: UnitOfWork, gone: list[str]) -> None:
        """Within ``uow``: the runs of replicas that are gone and the runs this replica declined to start,
        reported interrupted (and run again on request); unsent outbox rows of gone replicas adopted."""
        interrupted = self.ledger.take_interrupted(uow)
        declined = self.executor.take_declined()
        if declined:
            uow.after_rollback(partial(self.executor.decline, declined))
            interrupted += self.ledger.take_interrupted(uow, [e.run_id for e in declined])
        adopted = self.replicas.adopt_outbox(uow)
        if gone:
            uow.after_commit(
                partial(
                    log.warning,
                    "replica(s) %s stopped heart-beating for over %.0fs: taking over (%d runs in "
                    "progress reported interrupted, %d unsent messages adopted)",
                    ", ".join(gone),
                    self.replicas.lapse,
                    len(interrupted),
                    adopted,
                )
            )
            uow.after_commit(self.scheduler.wake)  # their due jobs are ours to see now
        self._report(uow, interrupted)

    def _report(self, uow: UnitOfWork, interrupted: list[LedgerEntry]) -> None:
        if not interrupted:
            return
        self.outcomes.interrupted(uow, interrupted)
        for entry in interrupted:
            if entry.on_interrupt == "retry" and self.executor.reserve(entry.job_id, 1):
                again = LedgerEntry.new(
                    entry.job_id,
                    entry.handler,
                    entry.kwargs,
                    entry.scheduled_at,
                    "retry",
                    started_by=entry.started_by,
                )
                self.executor.start_entries_after_commit(uow, entry.job_id, [again], None)
