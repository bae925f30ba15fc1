"""Which facade method serves which command, and applying a command exactly once per ``command_id``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from f8a_jobs_worker.commands.envelope import Envelope
from f8a_jobs_worker.errors import JobsError, Unavailable
from f8a_jobs_worker.events import Event
from f8a_jobs_worker.messaging.publisher import encode_reply
from f8a_jobs_worker.persistence.database import ping
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork
from f8a_jobs_worker.scheduling.service import JobService

log = logging.getLogger(__name__)

Apply = Callable[[JobService, dict[str, Any], UnitOfWork], dict[str, Any]]

COMMANDS: dict[str, Apply] = {
    "job.create": lambda service, args, uow: service.create_job(**args, uow=uow),
    "job.get": lambda service, args, uow: service.get_job(args["job_id"], uow=uow),
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
}

#: commands that never change the job store: a batch of only these runs without the job-store lock, and its
#: replies are sent directly rather than through the outbox (a read has no effect to keep them atomic with)
READ_ONLY = frozenset(
    {
        "job.get",
        "job.list",
        "job.history",
        "filter.expand",
        "filter.sql",
        "scheduler.state",
        "report.analyses",
    }
)


def ok_reply(envelope: Envelope, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "command_id": envelope.command_id,
        "command": envelope.command,
        "ok": True,
        "result": result,
    }


def error_reply(envelope: Envelope, error: JobsError, under_args: bool = False) -> dict[str, Any]:
    """An error reply; ``under_args`` moves the facade's paths (``$.kwargs.x``) under ``$.args``."""
    body = error.to_dict()
    if under_args:
        body["details"] = [_under_args(detail) for detail in body["details"]]
    return {
        "command_id": envelope.command_id,
        "command": envelope.command,
        "ok": False,
        "error": body,
    }


def _under_args(detail: dict[str, Any]) -> dict[str, Any]:
    """The facade names fields from its arguments (``$.kwargs.x``); on the wire they sit under ``$.args``."""
    path = str(detail.get("path", "$"))
    if path.startswith("$.") and not path.startswith("$.args"):
        return {**detail, "path": "$.args" + path[1:]}
    return detail


@dataclass(frozen=True)
class Applied:
    """What became of one command of a batch: its reply, whether that reply was stored before (a
    redelivered or re-sent command), whether the outbox sends it (it was stored with the command's
    effect), or the unexpected error that rolled the command back alone."""

    reply: dict[str, Any] | None
    duplicate: bool = False
    error: Exception | None = None
    in_outbox: bool = False


class CommandApplier:
    """Applies valid commands, their replies stored and queued in the same transaction.

    A batch of commands is one unit of work (one commit, one read of stored replies, one write of the outbox:
    group commit); on PostgreSQL each command that writes runs in a savepoint of its own, so a command that
    fails rolls back alone. SQLite gets batches of one (see :attr:`batches`).
    """

    def __init__(self, service: JobService) -> None:
        self.service = service
        #: savepoints, hence batches of several commands, where the driver handles them (not pysqlite)
        self.batches = service.transactions.engine.dialect.name != "sqlite"

    def probe(self) -> None:
        """Raise :class:`Unavailable` unless the store answers."""
        ping(self.service.transactions.engine)

    def announce(self, event: Event) -> None:
        """An event of the consumer's own (``command.rejected``), through the outbox."""
        with self.service.transactions.begin() as uow:
            uow.emit(event)

    def apply_many(self, envelopes: list[Envelope]) -> list[Applied]:
        """Apply ``envelopes`` in order, in one unit of work; one :class:`Applied` per envelope.

        Raises :class:`Unavailable` when the store is down (nothing applied). An error reply
        (``job_not_found``...) is stored like a result: the same command gets the same answer. Any other
        exception is a bug: a command in a savepoint reports it in its ``Applied``; outside one (a batch of
        one, a read-only command) it ends the whole batch, which the caller may retry one by one. Nothing
        with an effect outside the database happens unless the batch committed.
        """
        writes = any(envelope.command not in READ_ONLY for envelope in envelopes)
        isolate = self.batches and len(envelopes) > 1
        results: list[Applied] = []
        with self.service.unit_of_work(writes) as uow:
            known = uow.outbox.stored_replies(
                uow.connection, [envelope.command_id for envelope in envelopes]
            )
            for envelope in envelopes:
                assert envelope.command is not None
                stored = known.get(envelope.command_id)
                if stored is not None:
                    results.append(Applied(stored, duplicate=True))
                    continue
                savepoint = isolate and envelope.command not in READ_ONLY
                try:
                    with uow.savepoint(savepoint):
                        result = COMMANDS[envelope.command](self.service, envelope.args, uow)
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
                known[envelope.command_id] = reply  # the same command_id later in the batch
                if writes:
                    uow.store_reply(
                        envelope.command_id,
                        envelope.command,
                        encode_reply(reply).decode("utf-8"),
                        envelope.reply_to,
                        envelope.correlation_id,
                    )
                results.append(Applied(reply, in_outbox=writes))
        return results
