"""The worker's Prometheus metrics (names and labels per Prometheus conventions; docs/operations.md).

Counters and histograms are fed where things happen (the command consumer, the job runner); gauges of stored
state (jobs, outbox, replicas) are read from the job store when scraped, in one read-only transaction. Each
worker has a registry of its own, so several workers in one process (tests) never share counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from f8a_jobs_worker.persistence.runs import RunRecord

#: seconds: commands are answered in milliseconds, runs may take hours
COMMAND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RUN_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0)

#: the label of a command name that is not one of the contract's (bounded label values)
OTHER_COMMAND = "other"
#: principals counted by name in refusals; the ones after are counted as ``other`` (bounded label values)
MAX_PRINCIPALS = 100


class Metrics:
    """Counters and histograms of what this worker did since it started."""

    def __init__(self, commands: frozenset[str] = frozenset()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.known_commands = commands
        self.commands = Counter(
            "f8a_jobs_commands",
            "Commands answered, by command and outcome (ok, or the error code of the reply).",
            ["command", "outcome"],
            registry=self.registry,
        )
        self.command_seconds = Histogram(
            "f8a_jobs_command_duration_seconds",
            "From taking a command off the queue to its answer.",
            ["command"],
            buckets=COMMAND_BUCKETS,
            registry=self.registry,
        )
        self.runs = Counter(
            "f8a_jobs_runs",
            "Runs recorded by this worker, by handler and outcome (executed, failed, missed, "
            "interrupted).",
            ["handler", "outcome"],
            registry=self.registry,
        )
        self.run_seconds = Histogram(
            "f8a_jobs_run_duration_seconds",
            "How long handlers ran (executed and failed runs).",
            ["handler"],
            buckets=RUN_BUCKETS,
            registry=self.registry,
        )
        self.run_lateness = Histogram(
            "f8a_jobs_run_lateness_seconds",
            "How late runs started after their scheduled time.",
            ["handler"],
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.refusals = Counter(
            "f8a_jobs_commands_refused",
            "Commands the policy refused (mode enforce) or would have refused (mode log_only), by "
            "principal and command.",
            ["principal", "command", "mode"],
            registry=self.registry,
        )
        self._principals: set[str] = set()
        # the labelled children, looked up once per label values: ``labels()`` validates and locks on
        # every call, a cost paid per command and per run otherwise (label values are bounded: command
        # names, outcomes, handlers)
        self._children: dict[tuple[str, ...], tuple[Any, Any, Any]] = {}

    def _for(
        self, key: tuple[str, ...], make: Callable[[], tuple[Any, Any, Any]]
    ) -> tuple[Any, ...]:
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = make()
        return found

    def command(self, name: str | None, outcome: str, seconds: float) -> None:
        label = name if name in self.known_commands else OTHER_COMMAND
        count, duration, _ = self._for(
            ("command", label, outcome),
            lambda: (
                self.commands.labels(label, outcome),
                self.command_seconds.labels(label),
                None,
            ),
        )
        count.inc()
        duration.observe(max(seconds, 0.0))

    def refused(self, principal: str, command: str, mode: str) -> None:
        """A command the policy refused, or would have in ``log_only`` mode."""
        if principal not in self._principals and len(self._principals) < MAX_PRINCIPALS:
            self._principals.add(principal)
        label = principal if principal in self._principals else OTHER_COMMAND
        command = command if command in self.known_commands else OTHER_COMMAND
        self.refusals.labels(label, command, mode).inc()

    def run(self, record: RunRecord) -> None:
        handler = record.handler
        count, duration, lateness = self._for(
            ("run", handler, record.outcome),
            lambda: (
                self.runs.labels(handler, record.outcome),
                self.run_seconds.labels(handler),
                self.run_lateness.labels(handler),
            ),
        )
        count.inc()
        if record.duration_s is not None:
            duration.observe(max(record.duration_s, 0.0))
        if record.started_at is not None and record.scheduled_at is not None:
            late = (record.started_at - record.scheduled_at).total_seconds()
            lateness.observe(max(late, 0.0))

    def add(self, collector: Collector) -> None:
        self.registry.register(collector)


@dataclass(frozen=True)
class StoredState:
    """What the job store says when scraped."""

    jobs: dict[str, int]  # by kind: user, default
    paused_jobs: int
    failures: int
    outbox_pending: int
    outbox_oldest_age_s: float
    runs_in_progress: int
    replicas: int
    scheduler_paused: bool


class StateCollector(Collector):
    """Gauges read at scrape time: the store's (through ``read_state``; absent while it does not answer)
    and this process's own (``in_process`` gives name -> (help, value))."""

    def __init__(
        self,
        read_state: Callable[[], StoredState],
        in_process: Callable[[], dict[str, tuple[str, float]]],
        counters: Callable[[], dict[str, tuple[str, float]]],
        replica: str,
    ) -> None:
        self.read_state = read_state
        self.in_process = in_process
        self.counters = counters
        self.replica = replica

    def describe(self) -> list[Metric]:
        return []  # read at collect time: the store may not answer at registration

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "f8a_jobs_replica_info", "This replica's id (value 1).", labels=["replica"]
        )
        info.add_metric([self.replica], 1)
        yield info
        for name, (text, value) in self.in_process().items():
            yield GaugeMetricFamily(name, text, value=value)
        for name, (text, value) in self.counters().items():
            yield CounterMetricFamily(name, text, value=value)
        up = GaugeMetricFamily("f8a_jobs_store_up", "1 when the job store answered this scrape.")
        try:
            state = self.read_state()
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily("f8a_jobs_jobs", "Jobs stored, by kind.", labels=["kind"])
        for kind, count in sorted(state.jobs.items()):
            jobs.add_metric([kind], count)
        yield jobs
        gauges = {
            "f8a_jobs_jobs_paused": ("Jobs stored without a next run (paused).", state.paused_jobs),
            "f8a_jobs_failures": ("Failure records stored.", state.failures),
            "f8a_jobs_outbox_pending": (
                "Events and replies written but not yet sent.",
                state.outbox_pending,
            ),
            "f8a_jobs_outbox_oldest_age_seconds": (
                "How long the oldest unsent event or reply has waited.",
                state.outbox_oldest_age_s,
            ),
            "f8a_jobs_runs_in_progress": (
                "Runs started and not finished, on every replica.",
                state.runs_in_progress,
            ),
            "f8a_jobs_replicas": ("Replicas sharing the job store.", state.replicas),
            "f8a_jobs_scheduler_paused": (
                "1 while the scheduler is paused (scheduler.pause).",
                int(state.scheduler_paused),
            ),
        }
        for name, (text, value) in gauges.items():
            yield GaugeMetricFamily(name, text, value=value)
