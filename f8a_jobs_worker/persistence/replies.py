"""Stored replies: a command is applied at most once per ``command_id``.

The reply is inserted in the same transaction as the command's effect (:func:`database.transaction`), so a
redelivered or re-sent command finds either nothing (and is applied) or the reply (and gets it again).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from f8a_jobs_worker.persistence.database import connect, store_errors
from f8a_jobs_worker.persistence.tables import command_replies


class ReplyStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get_many(self, command_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored replies among ``command_ids``, by command_id (one query for a batch)."""
        query = sa.select(command_replies.c.command_id, command_replies.c.reply).where(
            command_replies.c.command_id.in_(command_ids)
        )
        with store_errors("reply store"), connect(self.engine) as connection:
            return {row.command_id: row.reply for row in connection.execute(query)}

    def save_many(self, replies: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Store ``(command_id, command, reply)`` rows in one statement."""
        if not replies:
            return
        now = datetime.now(UTC)
        rows = [
            {"command_id": command_id, "command": command, "reply": reply, "created_at": now}
            for command_id, command, reply in replies
        ]
        with store_errors("reply store"), connect(self.engine) as connection:
            connection.execute(command_replies.insert(), rows)

    def prune(self, max_age: timedelta, now: datetime | None = None) -> int:
        cutoff = (now or datetime.now(UTC)) - max_age
        with store_errors("reply store"), connect(self.engine) as connection:
            deleted = connection.execute(
                command_replies.delete().where(command_replies.c.created_at < cutoff)
            )
        return int(deleted.rowcount or 0)
