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
from datetime import UTC, datetime
from functools import partial

from f8a_jobs_worker import retry
from f8a_jobs_worker.persistence.database import short_reason
from f8a_jobs_worker.persistence.ledger import LedgerEntry, RunLedger
from f8a_jobs_worker.persistence.replicas import Replicas
from f8a_jobs_worker.persistence.state import SchedulerStateStore
from f8a_jobs_worker.persistence.unit_of_work import Transactions, UnitOfWork
from f8a_jobs_worker.scheduling.runtime import SchedulerRuntime
from f8a_jobs_worker.threads import Rounds

log = logging.getLogger(__name__)


class Membership(Rounds):
    def __init__(
        self,
        transactions: Transactions,
        replicas: Replicas,
        ledger: RunLedger,
        state: SchedulerStateStore,
        runtime: SchedulerRuntime,
    ) -> None:
        super().__init__(
            "f8a-heartbeat", replicas.heartbeat_interval, retry.Outage("job store (heartbeat)", log)
        )
        self.transactions = transactions
        self.replicas = replicas
        self.ledger = ledger
        self.state = state
        self.runtime = runtime
        #: the shared pause is applied to this replica's scheduler only once the worker has started
        self.following = False
        self.joined = False

    def join(self, everyone_else_gone: bool) -> None:
        """Register this replica and take over what gone replicas left. ``everyone_else_gone``: no other
        replica can be running (SQLite, under its file lock), so none is waited for to lapse."""
        began = time.monotonic()
        with self.transactions.begin() as uow:
            self.replicas.register(uow.connection)
            uow.after_commit(partial(self.replicas.renewed, began))
            self._take_over(uow, self.replicas.reap(uow.connection, everyone_else_gone))
        self.joined = True

    def leave(self) -> None:
        """Unregister (a clean stop): anything left in the ledger is reported by the others at once."""
        if not self.joined:
            return
        try:
            with self.transactions.begin() as uow:
                self.replicas.leave(uow.connection)
        except Exception as exc:  # the others take over once the heartbeat lapses
            log.warning("could not unregister this replica (%s)", short_reason(exc))

    def round(self) -> None:
        self.beat()

    def beat(self) -> None:
        """One round: renew, take over from lapsed replicas, follow the shared pause."""
        began = time.monotonic()
        with self.transactions.begin() as uow:
            if not self.replicas.renew(uow.connection):
                log.warning(
                    "this replica (%s) was taken for gone by the others (no heartbeat for %.0fs or "
                    "more); its runs in progress were reported interrupted; registering again",
                    self.replicas.replica_id,
                    self.replicas.lapse,
                )
                self.replicas.register(uow.connection)
            uow.after_commit(partial(self.replicas.renewed, began))
            self._take_over(uow, self.replicas.reap(uow.connection))
            paused = self.state.is_paused(uow.connection)
        if self.following:
            self.runtime.scheduler.follow(paused)

    def _take_over(self, uow: UnitOfWork, gone: list[str]) -> None:
        """Within ``uow``: the runs of replicas that are gone and the runs this replica declined to start,
        reported interrupted (and run again on request); unsent outbox rows of gone replicas adopted."""
        connection = uow.connection
        interrupted = self.ledger.take_interrupted(connection)
        declined = self.runtime.executor.take_declined()
        if declined:
            uow.after_rollback(partial(self.runtime.executor.decline, declined))
            interrupted += self.ledger.take_interrupted(connection, [e.run_id for e in declined])
        adopted = self.replicas.adopt_outbox(connection)
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
            uow.after_commit(self.runtime.scheduler.wakeup)  # their due jobs are ours to see now
        self._report(uow, interrupted)

    def _report(self, uow: UnitOfWork, interrupted: list[LedgerEntry]) -> None:
        if not interrupted:
            return
        self.runtime.runner.interrupted(uow, interrupted, datetime.now(UTC))
        executor = self.runtime.executor
        for entry in interrupted:
            if entry.on_interrupt == "retry" and executor.reserve(entry.job_id, 1):
                again = LedgerEntry.new(
                    entry.job_id, entry.handler, entry.kwargs, entry.scheduled_at, "retry"
                )
                executor.start_entries_after_commit(uow, entry.job_id, [again], None)
