"""What operators look at of one worker: the gauges read from the job store at scrape time, and the liveness
and readiness probes (Kubernetes' meaning: live, the worker's threads run; ready, the job store answers at this
release's schema revision and the broker is connected)."""

from __future__ import annotations

from collections.abc import Callable

from f8a_jobs_worker.operations.metrics import Metrics, StateCollector, StoredState
from f8a_jobs_worker.operations.probes import Probe, thread_check
from f8a_jobs_worker.persistence import counts, schema
from f8a_jobs_worker.persistence.job_repository import JobRepository
from f8a_jobs_worker.persistence.ledger import RunLedger
from f8a_jobs_worker.persistence.replicas import Replicas
from f8a_jobs_worker.persistence.scheduler_state import SchedulerStateStore
from f8a_jobs_worker.persistence.unit_of_work import Transactions

Gauges = Callable[[], dict[str, tuple[str, float]]]


class Watch:
    def __init__(
        self,
        transactions: Transactions,
        jobs: JobRepository,
        ledger: RunLedger,
        replicas: Replicas,
        state: SchedulerStateStore,
        threads: dict[str, Callable[[], bool]],
        broker_connected: Callable[[], bool] | None,
    ) -> None:
        """``threads``: what liveness checks, each thread's name and whether it runs;
        ``broker_connected``: whether the command consumer is connected (None: no consumer)."""
        self.transactions = transactions
        self.jobs = jobs
        self.ledger = ledger
        self.replicas = replicas
        self.state = state
        self.threads = threads
        self.broker_connected = broker_connected
        self._schema: schema.SchemaState | None = None

    def register(self, metrics: Metrics, in_process: Gauges, counters: Gauges) -> None:
        """Add the gauges read at scrape time to ``metrics``."""
        collector = StateCollector(
            self.stored_state, in_process, counters, self.replicas.replica_id
        )
        metrics.add(collector)

    def stored_state(self) -> StoredState:
        with self.transactions.begin(writes=False) as uow:
            totals = counts.totals(uow.connection)
            pending, oldest = uow.outbox.backlog(uow.connection, uow.now())
            return StoredState(
                jobs={"user": totals[counts.USER_JOBS], "default": totals[counts.DEFAULT_JOBS]},
                paused_jobs=self.jobs.paused(uow),
                failures=totals[counts.FAILURES],
                outbox_pending=pending,
                outbox_oldest_age_s=oldest,
                runs_in_progress=self.ledger.running(uow),
                replicas=len(self.replicas.all(uow)),
                scheduler_paused=self.state.is_paused(uow),
            )

    def liveness(self) -> Probe:
        return Probe(
            {
                name.replace(" ", "_"): thread_check(alive, name)
                for name, alive in self.threads.items()
            }
        )

    def readiness(self) -> Probe:
        checks = {"store": self._store}
        connected = self.broker_connected
        if connected is not None:
            checks["broker"] = lambda: (
                None if connected() else "not connected to the broker (retrying)"
            )
        return Probe(checks, {"schema": self._schema_fact})

    def _store(self) -> str | None:
        found = self._schema = schema.state(self.transactions.engine)  # a round trip: it answers
        if found.at_head:
            return None
        return f"the store is at schema revision {found.current}, this release needs {found.head}"

    def _schema_fact(self) -> dict[str, str | None]:
        return {
            "store": None if self._schema is None else self._schema.current,
            "release": schema.head(),
        }
