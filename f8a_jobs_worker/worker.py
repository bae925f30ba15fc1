"""The composition root: settings in, a running worker out.

:class:`Worker` builds every part, each given its collaborators in its constructor, and runs them as one
:class:`~f8a_jobs_worker.lifecycle.Lifecycle`: :meth:`Worker.start` starts them in the order of
:meth:`Worker._parts` and :meth:`Worker.stop` stops them in the reverse one (no new commands, no new runs,
running handlers finish, events sent, the replica unregistered, connections closed). docs/architecture.md has
the table of the threads this starts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from types import TracebackType
from typing import Any

from f8a_jobs_worker import __version__
from f8a_jobs_worker.access.control import AccessControl
from f8a_jobs_worker.clock import SYSTEM, Clock
from f8a_jobs_worker.commands.applier import COMMANDS, CommandApplier
from f8a_jobs_worker.commands.consumer import CommandConsumer
from f8a_jobs_worker.config import Settings
from f8a_jobs_worker.events import EventSink, LoggingEventSink, SafeEventSink
from f8a_jobs_worker.filters.compiler import FilterCompiler
from f8a_jobs_worker.filters.query import FilterRunner
from f8a_jobs_worker.flows.fanout import FlowDispatcher
from f8a_jobs_worker.flows.loading import backend_for
from f8a_jobs_worker.handlers import HandlerRegistry
from f8a_jobs_worker.lifecycle import Doorbell, Lifecycle
from f8a_jobs_worker.messaging.connect import transport_for
from f8a_jobs_worker.messaging.port import Transport
from f8a_jobs_worker.operations.metrics import Metrics
from f8a_jobs_worker.operations.server import OperationsServer
from f8a_jobs_worker.operations.watch import Watch
from f8a_jobs_worker.persistence import schema
from f8a_jobs_worker.persistence.backfill_store import BackfillStore
from f8a_jobs_worker.persistence.database import create_engine, ping
from f8a_jobs_worker.persistence.job_repository import JobRepository
from f8a_jobs_worker.persistence.ledger import RunLedger
from f8a_jobs_worker.persistence.notify import STATE, Listener, listens
from f8a_jobs_worker.persistence.outbox import Outbox
from f8a_jobs_worker.persistence.replicas import Replicas
from f8a_jobs_worker.persistence.runs import RunStore
from f8a_jobs_worker.persistence.scheduler_state import SchedulerStateStore
from f8a_jobs_worker.persistence.single_worker import SingleWorkerLock
from f8a_jobs_worker.persistence.unit_of_work import Transactions
from f8a_jobs_worker.relays.flow_relay import FlowRelay, relay_for
from f8a_jobs_worker.relays.outbox_relay import OutboxRelay
from f8a_jobs_worker.scheduling.backfill_runs import BackfillDriver
from f8a_jobs_worker.scheduling.default_jobs import Report, apply_default_jobs
from f8a_jobs_worker.scheduling.executor import RunExecutor
from f8a_jobs_worker.scheduling.facade import JobService
from f8a_jobs_worker.scheduling.firing import Firing
from f8a_jobs_worker.scheduling.housekeeping import Housekeeping
from f8a_jobs_worker.scheduling.job_reads import JobReads
from f8a_jobs_worker.scheduling.job_writes import JobWrites
from f8a_jobs_worker.scheduling.membership import Membership
from f8a_jobs_worker.scheduling.outcomes import Outcomes
from f8a_jobs_worker.scheduling.runner import JobRunner
from f8a_jobs_worker.scheduling.scheduler import Scheduler

log = logging.getLogger(__name__)

Part = tuple[str, Callable[[], Any], Callable[[], Any] | None]
#: makes a connection to the broker (not connected yet), given its heartbeat in seconds (0: none)
Transports = Callable[[int], Transport]


class Worker:
    """One worker process: the scheduling core, and with ``messaging`` the command consumer and broker
    events; ``sink`` sees the events sent (without a broker: the log)."""

    def __init__(
        self,
        settings: Settings,
        registry: HandlerRegistry | None = None,
        sink: EventSink | None = None,
        load_default_jobs: bool = True,
        messaging: bool = False,
        clock: Clock = SYSTEM,
        transports: Transports | None = None,
    ) -> None:
        """``transports`` makes connections to the broker, each given its heartbeat (default: the
        settings' broker URL's adapter); ``clock`` is where the worker reads the time."""
        self.settings = settings
        self.registry = registry or HandlerRegistry.discover()
        self.load_default_jobs = load_default_jobs
        self.names = settings.names()
        self.transports = transports or partial(transport_for, settings.broker_url)
        self.metrics = Metrics(frozenset(COMMANDS))
        self.access = AccessControl.of(
            settings, COMMANDS
        )  # a policy that cannot be used: ConfigError
        self._store(clock)
        self._messaging(messaging, sink)
        self._scheduling()
        self._commands(messaging)
        self.watch = self._watch()
        self.operations: OperationsServer | None = None
        self.default_jobs: Report | None = None
        self.schema: schema.SchemaState | None = None
        self._lifecycle = Lifecycle()
        self._wait = True

    def _store(self, clock: Clock) -> None:
        settings = self.settings
        self.engine = create_engine(
            settings.database_url, pool_size=settings.threads + 5, lapse=settings.replica_lapse
        )
        url = settings.effective_analytics_database_url
        self.analytics_engine = (
            self.engine if url == settings.database_url else create_engine(url, pool_size=2)
        )
        #: SQLite serves one worker: a second one on the same file refuses to start
        self.single = SingleWorkerLock.for_engine(self.engine)
        self.replicas = Replicas(lapse=settings.replica_lapse)
        self.relay_bell = Doorbell()
        outbox = Outbox(self.replicas.replica_id)
        self.transactions = Transactions(self.engine, outbox, clock, self.relay_bell.ring)
        self.jobs = JobRepository(self.replicas.replica_id)
        self.runs = RunStore()
        self.ledger = RunLedger(self.replicas.replica_id)
        self.state = SchedulerStateStore()
        self.backfills = BackfillStore()

    def _messaging(self, messaging: bool, sink: EventSink | None) -> None:
        settings, transports = self.settings, self.transports
        observers = [sink] if sink is not None else [] if messaging else [LoggingEventSink()]
        self.sink = SafeEventSink(*observers)
        self.relay = OutboxRelay(
            self.transactions,
            transports(0) if messaging else None,
            self.names.events,
            self.sink if observers else None,
            self.relay_bell,
        )
        #: who executes flow runs besides the flows exchange (Selinon, Celery); job kwargs checked against it
        self.flow_backend = backend_for(settings)
        relayed = messaging and self.flow_backend is not None
        subscribers = (self.names.flows_relay,) if relayed else ()
        self.flows = (
            FlowDispatcher(partial(transports, 0), self.names.flows, subscribers=subscribers)
            if messaging
            else None
        )
        self.flow_relay: FlowRelay | None = None
        if relayed and self.flow_backend is not None:
            self.flow_relay = relay_for(
                settings, self.flow_backend, transports(30), self.transactions.clock
            )

    def _scheduling(self) -> None:
        settings, transactions = self.settings, self.transactions
        self.turns = threading.Lock()
        self.outcomes = Outcomes(transactions, self.runs, self.jobs, self.ledger, self.metrics)
        self.filters = filters = FilterRunner(
            self.analytics_engine,
            FilterCompiler(
                [t.strip() for t in settings.filter_tables.split(",") if t.strip()] or None
            ),
            settings.filter_timeout,
        )
        runner = JobRunner(self.registry, self.outcomes, transactions.clock, filters, self.flows)
        self.executor = RunExecutor(
            runner, transactions, self.jobs, self.runs, self.ledger, self.replicas, settings.threads
        )
        firing = Firing(
            transactions,
            self.turns,
            self.jobs,
            self.runs,
            self.outcomes,
            self.executor,
            self.replicas,
            self.state,
        )
        self.scheduler = Scheduler(
            firing, transactions.clock, settings.poll_interval, lambda: ping(self.engine)
        )
        state_bell, backfill_bell = Doorbell(), Doorbell()
        self.membership = Membership(
            transactions,
            self.replicas,
            self.ledger,
            self.state,
            self.outcomes,
            self.executor,
            self.scheduler,
            state_bell,
        )
        self.backfill = BackfillDriver(
            transactions, self.jobs, self.backfills, self.executor, self.scheduler, backfill_bell
        )
        self._service(backfill_bell)

    def _service(self, backfill_bell: Doorbell) -> None:
        """The command facade over the scheduling core, and the stored state's upkeep."""
        settings, transactions = self.settings, self.transactions
        writes = JobWrites(
            self.registry,
            self.jobs,
            self.runs,
            self.ledger,
            self.backfills,
            self.executor,
            self.scheduler,
            backfill_bell,
            settings.misfire_grace_time,
            self.flow_backend,
        )
        reads = JobReads(
            self.jobs,
            self.runs,
            self.ledger,
            self.replicas,
            self.state,
            self.filters,
            self.access.describe,
        )
        self.service = JobService(
            transactions, self.turns, writes, reads, self.scheduler, self.state
        )
        self.housekeeping = Housekeeping.of(transactions, self.runs, settings)
        self.listener = (
            Listener(self.engine, self._notified, self._caught_up) if listens(self.engine) else None
        )

    def _commands(self, messaging: bool) -> None:
        self.consumer: CommandConsumer | None = None
        if messaging:
            transport = self.transports(30)
            clock = self.transactions.clock
            gate = self.access.gate(transport.facts.identity, clock, self.metrics.refused)
            self.consumer = CommandConsumer(
                transport,
                CommandApplier(self.service),
                self.names,
                self.settings.prefetch,
                self.metrics,
                clock,
                gate,
                self.settings.batch_wait,
            )

    def _watch(self) -> Watch:
        """The probes and the gauges of stored state and of this process."""
        threads = {
            "scheduler": lambda: self.scheduler.alive,
            "heartbeat": lambda: self.membership.alive,
            "backfill": lambda: self.backfill.alive,
            "outbox relay": lambda: self.relay.alive,
        }
        consumer, flow_relay = self.consumer, self.flow_relay
        if consumer is not None:
            threads["consumer"] = lambda: consumer.alive
        if flow_relay is not None:
            threads["flow relay"] = lambda: flow_relay.alive
        connected = (lambda: consumer.connected) if consumer is not None else None
        watch = Watch(
            self.transactions, self.jobs, self.ledger, self.replicas, self.state, threads, connected
        )
        watch.register(self.metrics, self._gauges, self._counters)
        return watch

    def _gauges(self) -> dict[str, tuple[str, float]]:
        gauges: dict[str, tuple[str, float]] = {
            "f8a_jobs_threads": ("Runs this replica may run at once.", self.settings.threads),
        }
        return gauges | (self.consumer.gauges() if self.consumer is not None else {})

    def _counters(self) -> dict[str, tuple[str, float]]:
        return self.flow_relay.counters() if self.flow_relay is not None else {}

    # -- the lifecycle ----------------------------------------------------------------------------------------

    def _parts(self) -> list[Part]:
        """Every part, in the order it starts; it stops in the reverse one."""
        single, listener, flow_relay, consumer = (
            self.single,
            self.listener,
            self.flow_relay,
            self.consumer,
        )
        parts: list[Part | None] = [
            ("single-worker lock", single.acquire, single.release) if single else None,
            ("engines", _nothing, self._dispose),
            ("schema", self._ensure_schema, None),
            ("replica", self._join, self.membership.leave),
            ("outbox relay", self.relay.start, self.relay.stop),
            ("executor", _nothing, self._stop_executor),
            ("scheduler", lambda: self.scheduler.start(paused=True), self.scheduler.stop),
            ("repaired jobs", self.service.restore_repaired, None),
            ("time-zone rules", self.service.follow_zone_rules, None),
            ("default jobs", self._apply_default_jobs, None),
            ("firing", self.service.start_firing, None),
            ("heartbeat", self.membership.start, self.membership.stop),
            ("housekeeping", self.housekeeping.start, self.housekeeping.stop),
            ("backfills", self.backfill.start, self.backfill.stop),
            ("notifications", listener.start, listener.stop) if listener else None,
            ("flow relay", flow_relay.start, flow_relay.stop) if flow_relay else None,
            ("commands", consumer.start, consumer.stop) if consumer else None,
            ("operations", self._serve_operations, self._stop_operations),
        ]
        return [part for part in parts if part is not None]

    def start(self) -> None:
        """Start every part. Raises Unavailable when the job store does not answer (what was started is
        stopped again)."""
        log.info("f8a-jobs-worker %s starting: %s", __version__, self.settings.describe())
        log.info("handlers: %s", ", ".join(self.registry))
        self.access.log()
        try:
            for name, start, stop in self._parts():
                self._lifecycle.start(name, start, stop)
        except BaseException:
            self._wait = False
            self._lifecycle.close()
            raise
        log.info("worker ready")

    def stop(self, wait: bool = True) -> None:
        """Stop firing; with ``wait``, let running handlers finish. Due runs stay stored for the next start."""
        log.info(
            "stopping: %s", "waiting for running jobs" if wait else "not waiting for running jobs"
        )
        self._wait = wait
        self._lifecycle.close()
        log.info("stopped")

    @property
    def started(self) -> list[str]:
        """The parts started, in order (empty once stopped)."""
        return list(self._lifecycle.started)

    def _ensure_schema(self) -> None:
        self.schema = schema.ensure(self.engine, self.settings.schema_upgrade == "auto")
        with self.transactions.begin() as uow:
            self.state.ensure(uow)

    def _join(self) -> None:
        self.membership.join(everyone_else_gone=self.single is not None)
        log.info("this replica is %s", self.replicas.replica_id)

    def _apply_default_jobs(self) -> None:
        if self.load_default_jobs:
            self.default_jobs = apply_default_jobs(self.service, self.settings.default_jobs_dir)

    def _stop_executor(self) -> None:
        self.outcomes.stopping.set()  # outcomes that cannot be recorded now are left to the ledger
        self.executor.stop(wait=self._wait)

    def _serve_operations(self) -> None:
        if self.settings.metrics_port is not None:
            self.operations = OperationsServer(
                self.settings.metrics_host,
                self.settings.metrics_port,
                self.metrics,
                self.watch.liveness(),
                self.watch.readiness(),
            )
            self.operations.start()

    def _stop_operations(self) -> None:
        if self.operations is not None:
            self.operations.stop()

    def _dispose(self) -> None:
        self.engine.dispose()
        self.analytics_engine.dispose()

    def _notified(self, topic: str) -> None:
        """A notification from any replica (this one's own included)."""
        if topic == STATE:
            self.membership.wake()
        else:
            self.scheduler.wake()

    def _caught_up(self) -> None:
        """The listener (re)connected: whatever was notified meanwhile is looked at now."""
        self.scheduler.wake()
        self.membership.wake()

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


def _nothing() -> None:
    """A part with nothing to do at start (its stop matters)."""
