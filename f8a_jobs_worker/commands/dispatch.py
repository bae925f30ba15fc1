"""Which facade method serves which command, and applying a command exactly once per ``command_id``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from f8a_jobs_worker.commands.envelope import Envelope
from f8a_jobs_worker.errors import JobsError, Unavailable
from f8a_jobs_worker.persistence.database import ping
from f8a_jobs_worker.persistence.replies import ReplyStore
from f8a_jobs_worker.scheduling.service import JobService

log = logging.getLogger(__name__)

Apply = Callable[[JobService, dict[str, Any]], dict[str, Any]]

COMMANDS: dict[str, Apply] = {
    "job.create": lambda service, args: service.create_job(**args),
    "job.get": lambda service, args: service.get_job(args["job_id"]),
    "job.list": lambda service, args: service.list_jobs(**args),
    "job.pause": lambda service, args: service.pause_job(args["job_id"]),
    "job.resume": lambda service, args: service.resume_job(args["job_id"]),
    "job.delete": lambda service, args: service.delete_job(args["job_id"]),
    "job.run_now": lambda service, args: service.run_job_now(args["job_id"]),
    "job.history": lambda service, args: service.job_history(**args),
    "jobs.clean_failed": lambda service, _: service.clean_failed(),
    "filter.expand": lambda service, args: service.filter_expand(
        args["$filter"], args.get("limit")
    ),
    "filter.sql": lambda service, args: service.filter_sql(args["$filter"]),
    "scheduler.state": lambda service, _: service.scheduler_state(),
    "scheduler.pause": lambda service, _: service.pause_scheduler(),
    "scheduler.resume": lambda service, _: service.resume_scheduler(),
}

#: commands that never change the job store: no scheduler wake-up after them (it would only contend for the
#: job-store lock with the next command)
READ_ONLY = frozenset(
    {"job.get", "job.list", "job.history", "filter.expand", "filter.sql", "scheduler.state"}
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
    redelivered or re-sent command), or the unexpected error that rolled it back alone."""

    reply: dict[str, Any] | None
    duplicate: bool = False
    error: Exception | None = None


class CommandApplier:
    """Applies valid commands and stores their replies in the same transaction.

    A batch of commands shares one transaction (one commit, one read and one write of stored replies: group
    commit); on PostgreSQL each command that writes runs in a savepoint of its own, so a command that fails
    rolls back alone. SQLite gets batches of one (see :attr:`batches`).
    """

    def __init__(self, service: JobService, replies: ReplyStore) -> None:
        self.service = service
        self.replies = replies
        #: savepoints, hence batches of several commands, where the driver handles them (not pysqlite)
        self.batches = replies.engine.dialect.name != "sqlite"

    def probe(self) -> None:
        """Raise :class:`Unavailable` unless the store answers."""
        ping(self.replies.engine)

    def apply_many(self, envelopes: list[Envelope]) -> list[Applied]:
        """Apply ``envelopes`` in order, in one transaction; one :class:`Applied` per envelope.

        Raises :class:`Unavailable` when the store is down (nothing applied). An error reply
        (``job_not_found``...) is stored like a result: the same command gets the same answer. Any other
        exception is a bug: a command in a savepoint reports it in its ``Applied``; outside one (a batch of
        one, a read-only command) it ends the whole batch, which the caller may retry one by one.
        """
        writes = any(envelope.command not in READ_ONLY for envelope in envelopes)
        isolate = self.batches and len(envelopes) > 1
        results: list[Applied] = []
        with self.service.unit_of_work(wake=writes) as connection:
            known = self.replies.get_many([envelope.command_id for envelope in envelopes])
            fresh: list[tuple[str, str, dict[str, Any]]] = []
            for envelope in envelopes:
                assert envelope.command is not None
                stored = known.get(envelope.command_id)
                if stored is not None:
                    results.append(Applied(stored, duplicate=True))
                    continue
                savepoint = isolate and envelope.command not in READ_ONLY
                try:
                    with self.service.isolated(connection, savepoint):
                        result = COMMANDS[envelope.command](self.service, envelope.args)
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
                fresh.append((envelope.command_id, envelope.command, reply))
                results.append(Applied(reply))
            self.replies.save_many(fresh)
        return results
