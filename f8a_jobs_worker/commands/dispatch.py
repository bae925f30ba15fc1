"""Which facade method serves which command, and applying a command exactly once per ``command_id``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from f8a_jobs_worker.commands.envelope import Envelope
from f8a_jobs_worker.errors import JobsError, Unavailable
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


class CommandApplier:
    """Applies a valid command and stores its reply in the same transaction."""

    def __init__(self, service: JobService, replies: ReplyStore) -> None:
        self.service = service
        self.replies = replies

    def apply(self, envelope: Envelope) -> tuple[dict[str, Any], bool]:
        """The reply, and whether it is a stored one (the command was applied before).

        Raises :class:`Unavailable` when the store is down (nothing applied); any other exception is a bug.
        An error reply (``job_not_found``...) is stored like a result: the same command gets the same answer.
        """
        assert envelope.command is not None
        with self.service.unit_of_work(wake=envelope.command not in READ_ONLY):
            stored = self.replies.get(envelope.command_id)
            if stored is not None:
                return stored, True
            try:
                reply = ok_reply(envelope, COMMANDS[envelope.command](self.service, envelope.args))
            except Unavailable:
                raise
            except JobsError as exc:
                reply = error_reply(envelope, exc, under_args=True)
            self.replies.save(envelope.command_id, envelope.command, reply)
        return reply, False
