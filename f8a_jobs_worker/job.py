"""A job as the worker stores and runs it: a handler, its kwargs, a schedule and the options of its runs.

The schedule is an APScheduler 3 trigger (cron, interval or date), used through its public API: its next fire
time after a given one, jitter included. A job's row keeps the state dict of APScheduler 3's
``Job.__getstate__`` (version 1), pickled, as every release has: stores written earlier read as they are, and
a replica of 0.1.0 reads the rows this one writes during a rolling deploy. Of that dict ``func`` names a
function no one calls (0.1.0 imports it when it restores a row) and ``executor`` is the alias 0.1.0 runs its
jobs in; ``args`` is ``(handler, meta)``, where ``meta`` keeps what the trigger cannot: whether the job came
from ``default_jobs/``, its cron line as written, the definition last applied, and its options.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from f8a_jobs_worker.errors import JobBroken
from f8a_jobs_worker.zones import DEFAULT_ZONE

#: what 0.1.0 replicas import for ``func`` when they restore a row (the function exists in 0.1.0)
RUNNER_REF = "f8a_jobs_worker.scheduling.runner:run_job"
#: the executor alias 0.1.0 runs stored jobs in
EXECUTOR = "default"
#: a job late by several run times runs once (APScheduler's ``coalesce``), for every job
COALESCE = True

ON_INTERRUPT = ("report", "retry")
OVERLAP = ("skip", "buffer_one", "allow")
DEFAULT_OVERLAP_LIMIT = 10


@dataclass(frozen=True)
class JobOptions:
    """How a job's runs behave beyond its schedule; kept in the job's meta, shown in the job view.

    ``overlap`` (as Temporal's overlap policies): a run due while the previous one still runs is ``skip``ped
    (recorded missed), kept as the one ``buffer_one`` run that starts when the running one ends, or started
    beside it (``allow``, at most ``overlap_limit`` at once).
    """

    on_interrupt: str = "report"
    pause_after_failures: int | None = None
    overlap: str = "skip"
    overlap_limit: int | None = None

    @property
    def max_instances(self) -> int:
        """Runs of the job that may be in progress at once, on all replicas together."""
        return self.overlap_limit or DEFAULT_OVERLAP_LIMIT if self.overlap == "allow" else 1

    @classmethod
    def of(cls, meta: Mapping[str, Any]) -> JobOptions:
        """The options stored in a job's meta (jobs stored before an option existed get its default)."""
        return cls(
            meta.get("on_interrupt", "report"),
            meta.get("pause_after_failures"),
            meta.get("overlap", "skip"),
            meta.get("overlap_limit"),
        )

    def meta(self) -> dict[str, Any]:
        return {
            "on_interrupt": self.on_interrupt,
            "pause_after_failures": self.pause_after_failures,
            "overlap": self.overlap,
            "overlap_limit": self.overlap_limit,
        }


@dataclass(frozen=True)
class Job:
    """One stored job. Immutable: a change is a new value (:meth:`moved`, ``dataclasses.replace``)."""

    job_id: str
    handler: str
    kwargs: dict[str, Any]
    trigger: BaseTrigger
    meta: dict[str, Any]
    misfire_grace_time: int | None
    #: UTC; None while the job is paused
    next_run_time: datetime | None
    coalesce: bool = COALESCE
    options: JobOptions = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", JobOptions.of(self.meta))

    @property
    def max_instances(self) -> int:
        return self.options.max_instances

    @property
    def timezone(self) -> str:
        """The IANA zone its schedule is read in (jobs stored before zones existed: UTC)."""
        return str(self.meta.get("timezone") or DEFAULT_ZONE)

    @property
    def default(self) -> bool:
        """Whether the job came from ``default_jobs/``."""
        return bool(self.meta.get("default"))

    def due_times(self, now: datetime) -> list[datetime]:
        """The run times from the next one up to ``now`` (inclusive), in order: several after an outage."""
        times: list[datetime] = []
        moment = self.next_run_time
        while moment is not None and moment <= now:
            times.append(moment)
            moment = self.trigger.get_next_fire_time(moment, now)
        return times

    def following(self, previous: datetime | None, now: datetime) -> datetime | None:
        """The schedule's next run time after ``previous`` (None: the first from ``now``), or None at its
        end."""
        found: datetime | None = self.trigger.get_next_fire_time(previous, now)
        return None if found is None else found.astimezone(UTC)

    def moved(self, next_run_time: datetime | None) -> Job:
        return replace(self, next_run_time=next_run_time)

    def state_changed(self, by: Mapping[str, Any] | None, at: datetime) -> Job:
        """The job with who paused or resumed it, and when, kept in its meta (shown in the job view)."""
        if by is None:
            return self
        return replace(
            self,
            meta={**self.meta, "state_changed_by": dict(by), "state_changed_at": at.isoformat()},
        )

    def to_state(self) -> dict[str, Any]:
        """The row's state: the dict of APScheduler 3's ``Job.__getstate__`` (version 1)."""
        return {
            "version": 1,
            "id": self.job_id,
            "func": RUNNER_REF,
            "trigger": self.trigger,
            "executor": EXECUTOR,
            "args": (self.handler, self.meta),
            "kwargs": self.kwargs,
            "name": self.handler,
            "misfire_grace_time": self.misfire_grace_time,
            "coalesce": self.coalesce,
            "max_instances": self.max_instances,
            "next_run_time": self.next_run_time,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Job:
        """A job from a row's state; ValueError for a state no release wrote."""
        if state.get("version", 1) != 1:
            raise ValueError(f"job state version {state.get('version')!r} (expected 1)")
        args = tuple(state["args"])
        moment = state["next_run_time"]
        return cls(
            job_id=str(state["id"]),
            handler=str(args[0]),
            kwargs=dict(state["kwargs"]),
            trigger=state["trigger"],
            meta=dict(args[1]) if len(args) > 1 else {},
            misfire_grace_time=state["misfire_grace_time"],
            next_run_time=None if moment is None else moment.astimezone(UTC),
            coalesce=bool(state["coalesce"]),
        )


def encode(job: Job) -> bytes:
    return pickle.dumps(job.to_state(), pickle.HIGHEST_PROTOCOL)


def decode(data: bytes) -> Job:
    """The job in a row; whatever unpickling an old state raises propagates (the row is then broken)."""
    state = pickle.loads(data)  # noqa: S301 - rows of the worker's own store, written by the worker
    if not isinstance(state, dict):
        raise ValueError(f"a job state is a dict, got {type(state).__name__}")
    return Job.from_state(state)


@dataclass(frozen=True)
class BrokenJob:
    """A stored job whose state cannot be restored, as far as its columns tell."""

    job_id: str
    handler: str
    default: bool
    reason: str

    def refusal(self) -> JobBroken:
        """The error for what a broken job cannot do: be paused, resumed or run."""
        return JobBroken(
            f"job {self.job_id!r} is stored but cannot be restored ({self.reason}); delete it, or "
            "create it again with replace: true",
            [{"path": "$.job_id", "message": "the stored job cannot be restored"}],
        )
