"""Which facade method serves which command, and applying commands exactly once per ``command_id``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import sqlalchemy as sa

from f8a_jobs_worker.commands.answers import error_reply, ok_reply
from f8a_jobs_worker.commands.envelope import Envelope
from f8a_jobs_worker.errors import JobsError, Unavailable, Untrusted
from f8a_jobs_worker.events import Event
from f8a_jobs_worker.messaging.codec import encode_reply
from f8a_jobs_worker.persistence.audit import AuditLog, audit_row
from f8a_jobs_worker.persistence.database import ping
from f8a_jobs_worker.persistence.run_summary import summary as runs_summary
from f8a_jobs_worker.persistence.signatures import SeenSignatures
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork
from f8a_jobs_worker.scheduling.facade import JobService

log = logging.getLogger(__name__)

Apply = Callable[[JobService, dict[str, Any], UnitOfWork], dict[str, Any]]

COMMANDS: dict[str, Apply] = {
    "job.create": lambda service, args, uow: service.create_job(**args, uow=uow),
    "job.get": lambda service, args, uow: service.get_job(**args, uow=uow),
    "schedule.preview": lambda service, args, uow: service.preview_schedule(**args, uow=uow),
    "job.list": lambda service, args, uow: service.list_jobs(**args, uow=uow),
    "job.pause": lambda service, args, uow: service.pause_job(args["job_id"], uow=uow),
    "job.resume": lambda service, args, uow: service.resume_job(args["job_id"], uow=uow),
    "job.delete": lambda service, args, uow: service.delete_job(args["job_id"], uow=uow),
    "job.run_now": lambda service, args, uow: service.run_job_now(args["job_id"], uow=uow),
    "job.backfill": lambda service, args, uow: service.backfill_job(**args, uow=uow),
    "job.history": lambda service, args, uow: service.job_history(**args, uow=uow),
    "jobs.clean_failed": lambda service, _, uow: service.clean_failed(uow=uow),
    "filter.expand": lambda service, args, uow: service.filter_expand(
        args["$filter"],
        args.get("limit"),
        {k: v for k, v in args.items() if k not in ("$filter", "limit")},
        uow=uow,
    ),
    "filter.sql": lambda service, args, uow: service.filter_sql(args["$filter"], uow=uow),
    "scheduler.state": lambda service, _, uow: service.scheduler_state(uow=uow),
    "report.analyses": lambda service, args, uow: service.analyses_report(**args, uow=uow),
    "scheduler.pause": lambda service, _, uow: service.pause_scheduler(uow=uow),
    "scheduler.resume": lambda service, _, uow: service.resume_scheduler(uow=uow),
    "audit.list": lambda service, args, uow: AuditLog.page(uow, **{"limit": 100, **args}),
    "runs.summary": lambda service, args, uow: runs_summary(uow, int(args.get("window_s", 3600))),
}

#: commands that never change the job store: a batch of only these runs without the job-store lock, and its
#: replies are sent directly rather than through the outbox (a read has no effect to keep them atomic with)
READ_ONLY = frozenset(
    {
        "job.get",
        "schedule.preview",
        "job.list",
        "job.history",
        "filter.expand",
        "filter.sql",
        "scheduler.state",
        "report.analyses",
        "audit.list",
        "runs.summary",
    }
)


def _change_jobs(
    command: str, service: JobService, args: list[dict[str, Any]], uow: UnitOfWork
) -> list[dict[str, Any] | JobsError]:
    return service.change_jobs(command, [a["job_id"] for a in args], uow=uow)


#: commands applied together, with set-based statements, when two or more follow one another in a batch
Many = Callable[[JobService, list[dict[str, Any]], UnitOfWork], list[dict[str, Any] | JobsError]]

SET_BASED: dict[str, Many] = {
    "job.get": lambda service, args, uow: service.get_jobs([a["job_id"] for a in args], uow=uow),
    "job.create": lambda service, args, uow: service.create_jobs(args, uow=uow),
    **{
        command: partial(_change_jobs, command)
        for command in ("job.pause", "job.resume", "job.delete")
    },
}
#: set-based kinds whose run stops at a job named twice (the second command must see the first's effect)
ONCE_PER_JOB = frozenset({"job.pause", "job.resume", "job.delete"})


def _set_based(envelope: Envelope) -> str | None:
    """The kind of set-based run ``envelope`` can join (``replace`` is a create of its own, a ``job.get``
    with ``next_runs`` a read of its own)."""
    if envelope.command == "job.create" and envelope.args.get("replace"):
        return None
    if envelope.command == "job.get" and "next_runs" in envelope.args:
        return None
    return envelope.command if envelope.command in SET_BASED else None


@dataclass(frozen=True)
class Applied:
    """What became of one command of a batch: its reply, whether that reply was stored before (a
    redelivered or re-sent command), or the unexpected error that rolled the command back alone."""

    reply: dict[str, Any] | None
    duplicate: bool = False
    error: Exception | None = None
    #: the reply as sent, where it was encoded to be stored (so it is encoded once)
    body: bytes | None = None
    #: a refusal found while applying that also keeps the message as a dead letter (a replayed signature)
    dead_letter: bool = False


class CommandApplier:
    """Applies valid commands, their replies stored in the same transaction as their effects.

    A batch of commands is one unit of work (one commit, one write of the outbox with the stored replies:
    group commit). Commands of the same kind that follow one another (see :data:`SET_BASED`) are applied
    together with set-based statements; on PostgreSQL every other command that writes runs in a
    savepoint of its own, so a command that fails rolls back alone. SQLite gets batches of one (see
    :attr:`batches`). The replies are sent by the consumer once the batch committed; a stored reply is what
    makes a command idempotent, and what is sent again if the command comes back.
    """

    def __init__(self, service: JobService) -> None:
        self.service = service
        self.clock = service.transactions.clock
        #: savepoints, hence batches of several commands, where the driver handles them (not pysqlite)
        self.batches = service.transactions.engine.dialect.name != "sqlite"

    def probe(self) -> None:
        """Raise :class:`Unavailable` unless the store answers."""
        ping(self.service.transactions.engine)

    def announce(self, event: Event, audit: dict[str, Any] | None = None) -> None:
        """An event of the consumer's own (``command.rejected``), through the outbox, with its audit row."""
        with self.service.transactions.begin() as uow:
            uow.emit(event)
            if audit is not None:
                AuditLog.record(uow, audit)

    def apply_many(self, envelopes: list[Envelope]) -> list[Applied]:
        """Apply ``envelopes`` in order, in one unit of work; one :class:`Applied` per envelope.

        Raises :class:`Unavailable` when the store is down (nothing applied). An error reply
        (``job_not_found``...) is stored like a result: the same command gets the same answer. Any other
        exception is a bug: a command in a savepoint reports it in its ``Applied``; outside one (a batch of
        one, a read-only command, a set-based run) it ends the whole batch, which the caller may retry one
        by one. Nothing with an effect outside the database happens unless the batch committed.

        Stored replies are looked up only when a batch's replies cannot be stored: a command seen before
        is rare (a redelivery, a publisher's retry), and its stored reply's unique ``command_id`` refuses
        the batch's insert, so the batch is rolled back and applied again, replies looked up first. A batch
        that writes saves a round trip to the database that way. Reads store no reply: a read sent again
        is answered afresh.
        """
        writes = any(
            envelope.command not in READ_ONLY or envelope.seal is not None for envelope in envelopes
        )
        if writes:
            try:
                return self._apply(envelopes, writes, look_up=False)
            except sa.exc.IntegrityError:
                log.debug("a reply of the batch is stored already: applying it again, looked up")
        return self._apply(envelopes, writes, look_up=writes)

    def _apply(self, envelopes: list[Envelope], writes: bool, look_up: bool) -> list[Applied]:
        isolate = self.batches and len(envelopes) > 1
        results: list[Applied] = []
        with self.service.unit_of_work(writes) as uow:
            known = (
                uow.outbox.stored_replies(
                    uow.connection, [envelope.command_id for envelope in envelopes]
                )
                if look_up
                else {}
            )
            replayed = self._replays(uow, envelopes)
            position = 0
            while position < len(envelopes):
                envelope = envelopes[position]
                uow.actor = envelope.principal
                stored = known.get(envelope.command_id)
                if envelope.command_id in replayed:
                    results.append(self._replayed(uow, envelope))
                    position += 1
                    continue
                if stored is not None:
                    results.append(Applied(stored, duplicate=True))
                    position += 1
                    continue
                together = _run_of(envelopes, position, known)
                if len(together) > 1:
                    outcomes = SET_BASED[together[0].command or ""](
                        self.service, [e.args for e in together], uow
                    )
                    for member, outcome in zip(together, outcomes, strict=True):
                        reply = _reply(member, outcome)
                        body = self._keep(uow, member, reply, known, writes)
                        results.append(Applied(reply, body=body))
                    position += len(together)
                    continue
                position += 1
                savepoint = isolate and envelope.command not in READ_ONLY
                try:
                    with uow.savepoint(savepoint):
                        result = COMMANDS[envelope.command or ""](self.service, envelope.args, uow)
                    reply = ok_reply(envelope, result)
                except Unavailable:
                    raise
                except JobsError as exc:
                    reply = error_reply(envelope, exc, under_args=True)
                except Exception as exc:
                    if not savepoint:
                        raise
                    results.append(Applied(None, error=exc))
                    continue
                body = self._keep(uow, envelope, reply, known, writes)
                results.append(Applied(reply, body=body))
            uow.actor = None
        return results

    @staticmethod
    def _replays(uow: UnitOfWork, envelopes: list[Envelope]) -> set[str]:
        """The command ids of signed commands whose signature was applied before and that the broker did
        not give back (a redelivery is no replay); the others' signatures are remembered."""
        sealed = [e for e in envelopes if e.seal is not None]
        seen = SeenSignatures.seen(uow, [e.seal for e in sealed if e.seal is not None])
        replayed = set()
        for envelope in sealed:
            assert envelope.seal is not None
            if envelope.seal.signature not in seen:
                SeenSignatures.remember(uow, envelope.seal)
                seen.add(envelope.seal.signature)
            elif not envelope.redelivered:
                replayed.add(envelope.command_id)
        return replayed

    @staticmethod
    def _replayed(uow: UnitOfWork, envelope: Envelope) -> Applied:
        """A replayed signed command: refused, its refusal audited here (the consumer announces it)."""
        error = Untrusted("signature refused: this signed message was applied before (a replay)")
        reply = error_reply(envelope, error)
        AuditLog.record(uow, audit_of(envelope, reply["error"], uow.now()))
        return Applied(reply, dead_letter=True)

    @staticmethod
    def _keep(
        uow: UnitOfWork,
        envelope: Envelope,
        reply: dict[str, Any],
        known: dict[str, dict[str, Any]],
        writes: bool,
    ) -> bytes | None:
        """Remember a reply for the same ``command_id`` later in the batch, and store it with the batch
        when the batch writes (a read changes nothing: its reply is not kept); the stored body, if any.
        A command that writes is audited with its outcome."""
        known[envelope.command_id] = reply
        if not writes:
            return None
        if envelope.command not in READ_ONLY:
            AuditLog.record(uow, audit_of(envelope, reply.get("error"), uow.now()))
        body = encode_reply(reply)
        uow.store_reply(
            envelope.command_id,
            envelope.command or "",
            body.decode("utf-8"),
            envelope.reply_to,
            envelope.correlation_id,
        )
        return body


def audit_of(envelope: Envelope, error: dict[str, Any] | None, at: datetime) -> dict[str, Any]:
    """The audit row of a command's outcome: its reply's ``error``, or None where it was applied."""
    return audit_row(
        envelope.principal,
        envelope.command,
        envelope.command_id,
        envelope.args,
        error["code"] if error else "ok",
        error["message"] if error else None,
        at,
    )


def _run_of(
    envelopes: list[Envelope], start: int, known: dict[str, dict[str, Any]]
) -> list[Envelope]:
    """The commands from ``start`` on that are applied together: of the same set-based kind, each new
    (neither stored nor repeated in the run)."""
    kind = _set_based(envelopes[start])
    if kind is None:
        return envelopes[start : start + 1]
    run: list[Envelope] = []
    seen: set[str] = set()
    for envelope in envelopes[start:]:
        if _set_based(envelope) != kind or envelope.command_id in known:
            break
        if envelope.principal != envelopes[start].principal:
            break  # the events of a run say one ``by``
        job = f"job:{envelope.args.get('job_id')}" if kind in ONCE_PER_JOB else None
        if envelope.command_id in seen or job in seen:
            break
        seen.update(filter(None, (envelope.command_id, job)))
        run.append(envelope)
    return run


def _reply(envelope: Envelope, outcome: dict[str, Any] | JobsError) -> dict[str, Any]:
    if isinstance(outcome, JobsError):
        return error_reply(envelope, outcome, under_args=True)
    return ok_reply(envelope, outcome)
