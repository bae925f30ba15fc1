"""Retention: every ten minutes, run history beyond its age or its count per job is pruned, the outbox's
sent events and old stored replies, audit entries beyond theirs and signatures beyond the replay window. A
thread of each replica (deletes are idempotent across replicas)."""

from __future__ import annotations

import logging
from datetime import timedelta

from f8a_jobs_worker import retry
from f8a_jobs_worker.config import Settings
from f8a_jobs_worker.lifecycle import Rounds
from f8a_jobs_worker.persistence.audit import AuditLog
from f8a_jobs_worker.persistence.runs import RunStore
from f8a_jobs_worker.persistence.signatures import SeenSignatures
from f8a_jobs_worker.persistence.unit_of_work import Transactions

log = logging.getLogger(__name__)

INTERVAL = timedelta(minutes=10)


class Housekeeping(Rounds):
    def __init__(
        self,
        transactions: Transactions,
        runs: RunStore,
        history_max_age: timedelta,
        history_per_job: int,
        reply_max_age: timedelta,
        audit_max_age: timedelta = timedelta(days=365),
        signing_window: int = 300,
    ) -> None:
        outage = retry.Outage("job store (housekeeping)", log)
        super().__init__("f8a-housekeeping", INTERVAL.total_seconds(), outage)
        self.transactions = transactions
        self.runs = runs
        self.history_max_age = history_max_age
        self.history_per_job = history_per_job
        self.reply_max_age = reply_max_age
        self.audit_max_age = audit_max_age
        self.signing_window = signing_window

    @classmethod
    def of(cls, transactions: Transactions, runs: RunStore, settings: Settings) -> Housekeeping:
        """With the retention the settings give."""
        return cls(
            transactions,
            runs,
            timedelta(days=settings.history_max_age_days),
            settings.history_per_job,
            timedelta(days=settings.reply_max_age_days),
            timedelta(days=settings.audit_retention_days),
            settings.signing_window,
        )

    def round(self) -> None:
        self.prune()

    def prune(self) -> tuple[int, int]:
        """Apply the retention now: how many runs and how many outbox rows it removed."""
        with self.transactions.begin() as uow:
            removed = self.runs.prune(uow, self.history_max_age, self.history_per_job)
            expired = uow.outbox.prune(uow.connection, self.reply_max_age, uow.now())
            audited = AuditLog.prune(uow, self.audit_max_age)
            SeenSignatures.prune(uow, self.signing_window)
        if audited:
            log.info("audit retention removed %d entries", audited)
        if removed:
            log.info("history retention removed %d old runs", removed)
        if expired:
            log.info("outbox retention removed %d sent events and old replies", expired)
        return removed, expired
