"""The composition root: settings in, a running worker out.

:class:`Worker` builds the engine, the stores, the handler registry, the scheduler runtime and the service
facade, and runs their lifecycle in one place: start (tables, scheduler paused, default jobs, then resume unless
an operator paused the scheduler) and stop (no new runs, running handlers finish, connections closed).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

import sqlalchemy as sa

from f8a_jobs_worker import __version__
from f8a_jobs_worker.commands.consumer import CommandConsumer
from f8a_jobs_worker.commands.dispatch import COMMANDS, CommandApplier
from f8a_jobs_worker.config import Settings
from f8a_jobs_worker.events import EventSink, LoggingEventSink, SafeEventSink
from f8a_jobs_worker.events.relay import Relay
from f8a_jobs_worker.filters.compiler import FilterCompiler
from f8a_jobs_worker.filters.query import FilterRunner
from f8a_jobs_worker.flows.backend import FlowBackend, load_backend
from f8a_jobs_worker.flows.dispatch import FlowDispatcher
from f8a_jobs_worker.flows.relay import FlowRelay
from f8a_jobs_worker.handlers import HandlerRegistry
from f8a_jobs_worker.logs import job_fields
from f8a_jobs_worker.messaging import broker
from f8a_jobs_worker.messaging.publisher import NO_RETRY, Publisher
from f8a_jobs_worker.messaging.topology import Names
from f8a_jobs_worker.operations.metrics import Metrics, StateCollector, StoredState
from f8a_jobs_worker.operations.probes import Probe, thread_check
from f8a_jobs_worker.operations.server import OperationsServer
from f8a_jobs_worker.persistence import counts, schema
from f8a_jobs_worker.persistence.database import create_engine
from f8a_jobs_worker.persistence.embedded import SingleWorkerLock
from f8a_jobs_worker.persistence.ledger import RunLedger
from f8a_jobs_worker.persistence.notify import STATE, Listener, listens
from f8a_jobs_worker.persistence.outbox import Outbox
from f8a_jobs_worker.persistence.replicas import Replicas
from f8a_jobs_worker.persistence.runs import RunStore
from f8a_jobs_worker.persistence.state import SchedulerStateStore
from f8a_jobs_worker.persistence.unit_of_work import Transactions
from f8a_jobs_worker.scheduling.backfill import BackfillDriver
from f8a_jobs_worker.scheduling.default_jobs import Report, apply_default_jobs
from f8a_jobs_worker.scheduling.membership import Membership
from f8a_jobs_worker.scheduling.runner import JobRunner
from f8a_jobs_worker.scheduling.runtime import INTERNAL, SchedulerRuntime
from f8a_jobs_worker.scheduling.service import JobService

log = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL = timedelta(minutes=10)


def flow_backend(settings: Settings) -> FlowBackend | None:
    """The flow backend the settings name (None: flow runs stay on the flows exchange)."""
    return load_backend(
        settings.flow_backend,
        Path(settings.selinon_nodes),
        settings.selinon_flow_files,
        settings.celery_task_map,
        settings.celery_queue or None,
    )


class Worker:
    """One worker process's scheduling core, ready to be driven by the messaging layer or the CLI."""

    def __init__(
        self,
        settings: Settings,
        registry: HandlerRegistry | None = None,
        sink: EventSink | None = None,
        load_default_jobs: bool = True,
        messaging: bool = False,
    ) -> None:
        self.settings = settings
        self.registry = registry or HandlerRegistry.discover()
        self.names = Names(
            settings.commands_queue,
            settings.dead_letter_queue,
            settings.events_exchange,
            settings.flows_exchange,
        )
        self.publisher: Publisher | None = None
        relay_publisher: Publisher | None = None
        if messaging:
            self.publisher = Publisher(broker.connection(settings.broker_url, heartbeat=0))
            # the relay retries with the worker's policy itself: a failed send fails at once
            relay_publisher = Publisher(
                broker.connection(settings.broker_url, heartbeat=0), retry_policy=NO_RETRY
            )
        #: who else sees the events the relay has sent: the caller's sink, else (no broker) the log
        observers = [sink] if sink is not None else [] if messaging else [LoggingEventSink()]
        self.sink = SafeEventSink(*observers)
        self.load_default_jobs = load_default_jobs
        self.engine = create_engine(
            settings.database_url, pool_size=settings.threads + 5, lapse=settings.replica_lapse
        )
        #: SQLite serves one worker: a second one on the same file refuses to start
        self.single = SingleWorkerLock.for_engine(self.engine)
        self.replicas = Replicas(lapse=settings.replica_lapse)
        self.transactions = Transactions(self.engine, Outbox(self.replicas.replica_id))
        self.relay = Relay(
            self.transactions, relay_publisher, self.names.events, self.sink if observers else None
        )
        self.transactions.notify = self.relay.wake
        self.runs = RunStore(self.transactions)
        self.metrics = Metrics(frozenset(COMMANDS))
        self.ledger = RunLedger(self.replicas.replica_id)
        self.state = SchedulerStateStore()
        self.filters = self._filter_runner()
        #: who executes flow runs besides the flows exchange (Selinon, Celery); job kwargs checked against it
        self.flow_backend: FlowBackend | None = flow_backend(settings)
        self.registry.flows = self.flow_backend
        relayed = messaging and self.flow_backend is not None
        self.flows = (
            FlowDispatcher(
                settings.broker_url,
                self.names.flows,
                subscribers=(self.names.flows_relay,) if relayed else (),
            )
            if messaging
            else None
        )
        self.flow_relay: FlowRelay | None = None
        if relayed and self.flow_backend is not None:
            self.flow_relay = FlowRelay(
                settings.broker_url,
                settings.effective_celery_broker_url or "",
                self.names,
                self.flow_backend,
                settings.flow_relay_prefetch,
            )
        self.runtime = SchedulerRuntime(
            self.transactions,
            JobRunner(self.registry, self.runs, self.filters, self.flows, self.metrics),
            self.ledger,
            self.replicas,
            self.state,
            settings.threads,
            settings.misfire_grace_time,
            settings.poll_interval,
        )
        self.membership = Membership(
            self.transactions, self.replicas, self.ledger, self.state, self.runtime
        )
        self.listener = (
            Listener(self.engine, self._notified, self._caught_up) if listens(self.engine) else None
        )
        self.service = JobService(
            self.runtime,
            self.transactions,
            self.registry,
            self.runs,
            self.ledger,
            settings.misfire_grace_time,
            self.filters,
        )
        self.runtime.runner.on_failures = self.service.pause_for_failures
        self.runtime.executor.on_buffered_run_done = self.service.start_buffered
        self.backfill = BackfillDriver(self.transactions, self.runtime, self.service.backfills)
        self.service.backfilled = self.backfill.wake
        self.default_jobs: Report | None = None
        self.consumer: CommandConsumer | None = None
        if self.publisher is not None:
            self.consumer = CommandConsumer(
                broker.connection(settings.broker_url),
                CommandApplier(self.service),
                self.publisher,
                self.names,
                settings.prefetch,
                self.metrics,
            )
        self.metrics.add(
            StateCollector(
                self._stored_state, self._in_process, self._counters, self.replicas.replica_id
            )
        )
        self.operations: OperationsServer | None = None

    # -- operations: metrics and probes ------------------------------------------------------------------

    def _stored_state(self) -> StoredState:
        jobs_t = self.runtime.store.jobs_t
        with self.transactions.begin() as uow:
            connection = uow.connection
            totals = counts.totals(connection)
            paused = connection.execute(
                sa.select(sa.func.count()).where(jobs_t.c.next_run_time.is_(None))
            ).scalar_one()
            pending, oldest = uow.outbox.backlog(connection, datetime.now(UTC))
            return StoredState(
                jobs={"user": totals[counts.USER_JOBS], "default": totals[counts.DEFAULT_JOBS]},
                paused_jobs=int(paused),
                failures=totals[counts.FAILURES],
                outbox_pending=pending,
                outbox_oldest_age_s=oldest,
                runs_in_progress=self.ledger.running(connection),
                replicas=len(self.replicas.all(connection)),
                scheduler_paused=self.state.is_paused(connection),
            )

    def _in_process(self) -> dict[str, tuple[str, float]]:
        gauges: dict[str, tuple[str, float]] = {
            "f8a_jobs_threads": ("Runs this replica may run at once.", self.settings.threads),
        }
        if self.consumer is not None:
            gauges["f8a_jobs_consumer_prefetch"] = (
                "Commands this replica may take ahead (the prefetch count).",
                self.settings.prefetch,
            )
            gauges["f8a_jobs_consumer_prefetch_in_use"] = (
                "Commands taken off the queue and not yet answered.",
                self.consumer.in_hand,
            )
        return gauges

    def _counters(self) -> dict[str, tuple[str, float]]:
        found: dict[str, tuple[str, float]] = {}
        if self.flow_relay is not None:
            found["f8a_jobs_flow_runs_relayed"] = (
                "Flow runs this replica's relay handed to the Celery broker (confirmed).",
                self.flow_relay.relayed,
            )
            found["f8a_jobs_flow_runs_dead_lettered"] = (
                "Flow runs this replica's relay could not send (dead-lettered).",
                self.flow_relay.dead_lettered,
            )
        return found

    def liveness(self) -> Probe:
        checks = {
            "scheduler": thread_check(lambda: self.runtime.alive, "scheduler"),
            "heartbeat": thread_check(lambda: self.membership.alive, "replica heartbeat"),
            "backfill": thread_check(lambda: self.backfill.alive, "backfill"),
            "outbox_relay": thread_check(lambda: self.relay.alive, "outbox relay"),
        }
        if self.consumer is not None:
            consumer = self.consumer
            checks["consumer"] = thread_check(lambda: consumer.alive, "command consumer")
        if self.flow_relay is not None:
            flow_relay = self.flow_relay
            checks["flow_relay"] = thread_check(lambda: flow_relay.alive, "flow relay")
        return Probe(checks)

    def readiness(self) -> Probe:
        seen: list[schema.SchemaState] = []

        def store() -> str | None:
            found = schema.state(self.engine)  # a round trip: the store answers
            seen[:] = [found]
            if found.at_head:
                return None
            return (
                f"the store is at schema revision {found.current}, this release needs {found.head}"
            )

        checks = {"store": store}
        facts = {
            "schema": lambda: {
                "store": seen[0].current if seen else None,
                "release": schema.head(),
            }
        }
        if self.consumer is not None:
            consumer = self.consumer
            checks["broker"] = lambda: (
                None if consumer.connected else "not connected to the broker (retrying)"
            )
        return Probe(checks, facts)

    def _filter_runner(self) -> FilterRunner:
        """``$filter`` queries run on the analytics database: its own engine, or the job store's."""
        url = self.settings.effective_analytics_database_url
        self.analytics_engine = (
            self.engine if url == self.settings.database_url else create_engine(url, pool_size=2)
        )
        tables = [t.strip() for t in self.settings.filter_tables.split(",") if t.strip()] or None
        return FilterRunner(
            self.analytics_engine, FilterCompiler(tables), self.settings.filter_timeout
        )

    def start(self) -> None:
        """Start firing jobs. Raises Unavailable when the job store does not answer."""
        log.info("f8a-jobs-worker %s starting: %s", __version__, self.settings.describe())
        log.info("handlers: %s", ", ".join(self.registry))
        if self.single is not None:
            self.single.acquire()
        self.schema = schema.ensure(self.engine, self.settings.schema_upgrade == "auto")
        with self.transactions.begin() as uow:
            self.state.ensure(uow.connection)
            paused = self.state.is_paused(uow.connection)
        self.runtime.start(paused=True)
        self.membership.join(everyone_else_gone=self.single is not None)
        log.info("this replica is %s", self.replicas.replica_id)
        self.relay.start()
        self._recover()
        if self.load_default_jobs:
            self.default_jobs = apply_default_jobs(self.service, self.settings.default_jobs_dir)
        self.runtime.scheduler.add_job(
            self.prune_history,
            "interval",
            seconds=HOUSEKEEPING_INTERVAL.total_seconds(),
            id="housekeeping",
            jobstore=INTERNAL,
            executor=INTERNAL,
            misfire_grace_time=None,
        )
        if paused:
            log.warning(
                "scheduler stays paused, as an operator left it; send scheduler.resume to fire jobs"
            )
        else:
            self.runtime.scheduler.resume()
        self.membership.following = True
        self.membership.start()
        self.backfill.start()
        if self.listener is not None:
            self.listener.start()
        if self.flow_relay is not None:
            self.flow_relay.start()
        if self.consumer is not None:
            self.consumer.start()
        if self.settings.metrics_port is not None:
            self.operations = OperationsServer(
                self.settings.metrics_host,
                self.settings.metrics_port,
                self.metrics,
                self.liveness(),
                self.readiness(),
            )
            self.operations.start()
        log.info("worker ready")

    def _recover(self) -> None:
        """Broken jobs that a deploy made restorable again are scheduled again. (Runs that a gone replica
        left unfinished were taken over when this one joined.)"""
        with self.service.unit_of_work() as uow:
            for job_id in self.runtime.store.restore_repaired(uow.connection):
                log.warning(
                    "job %s can be restored again and is scheduled again",
                    job_id,
                    extra=job_fields(job_id),
                )

    def _notified(self, topic: str) -> None:
        """A notification from any replica (this one's own included)."""
        if topic == STATE:
            self.membership.wake()
        else:
            self.runtime.scheduler.wakeup()

    def _caught_up(self) -> None:
        """The listener (re)connected: whatever was notified meanwhile is looked at now."""
        self.runtime.scheduler.wakeup()
        self.membership.wake()

    def stop(self, wait: bool = True) -> None:
        """Stop firing; with ``wait``, let running handlers finish. Due runs stay stored for the next start."""
        log.info(
            "stopping: %s", "waiting for running jobs" if wait else "not waiting for running jobs"
        )
        if self.consumer is not None:
            self.consumer.stop()  # first: no new command once stopping began
        if self.listener is not None:
            self.listener.stop()
        self.membership.stop()
        self.backfill.stop()
        self.runtime.shutdown(wait=wait)
        self.relay.stop()  # after the runs: their events are sent before the broker connection closes
        if self.flow_relay is not None:
            self.flow_relay.stop()  # what it has not acknowledged goes back to its queue
        self.membership.leave()  # what is left (unsent rows, unfinished runs) the others take at once
        for publisher in (self.publisher, self.relay.publisher):
            if publisher is not None:
                publisher.close()
        self.engine.dispose()
        if self.single is not None:
            self.single.release()
        self.analytics_engine.dispose()
        if self.operations is not None:
            self.operations.stop()
        log.info("stopped")

    def prune_history(self) -> None:
        now = datetime.now(UTC)
        with self.transactions.begin() as uow:
            removed = self.runs.prune(
                uow.connection,
                timedelta(days=self.settings.history_max_age_days),
                self.settings.history_per_job,
                now,
            )
            expired = uow.outbox.prune(
                uow.connection, timedelta(days=self.settings.reply_max_age_days), now
            )
        if removed:
            log.info("history retention removed %d old runs", removed)
        if expired:
            log.info("outbox retention removed %d sent events and old replies", expired)

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
