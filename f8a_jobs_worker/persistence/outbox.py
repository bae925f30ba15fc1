"""The outbox: every event and every reply, written in the same transaction as the change that caused it.

Nothing is published from inside a transaction; the relay (:mod:`f8a_jobs_worker.relays.outbox_relay`) reads the
rows not yet published, in order, and marks them (:meth:`Outbox.take`), then sends them before the marks
commit. A reply's row is the stored reply that makes a
command idempotent (by ``command_id``); it is written as sent, since the consumer sends the reply itself after
the commit (and sends it again from here if the command comes back).
Published events are kept :data:`EVENT_RETENTION` (for an operator to look at), replies as long as replies
are kept for idempotency. Each row names the replica whose relay sends it (the one that wrote it), so replicas'
relays never send the same rows; a replica that is gone has its unsent rows adopted by another
(:meth:`Replicas.adopt_outbox`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from f8a_jobs_worker.events.model import Event
from f8a_jobs_worker.ids import random_id
from f8a_jobs_worker.messaging.codec import dumps_text
from f8a_jobs_worker.persistence.bulk import insert_rows
from f8a_jobs_worker.persistence.database import as_utc
from f8a_jobs_worker.persistence.tables import outbox

EVENT_RETENTION = timedelta(hours=1)

_MARK = (
    outbox.update()
    .where(outbox.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(published_at=sa.bindparam("now"))
)
_STORED = sa.select(outbox.c.command_id, outbox.c.body).where(
    outbox.c.command_id.in_(sa.bindparam("ids", expanding=True))
)
_UNPUBLISHED = (
    sa.select(
        outbox.c.id,
        outbox.c.kind,
        outbox.c.name,
        outbox.c.message_id,
        outbox.c.reply_to,
        outbox.c.correlation_id,
        outbox.c.body,
        outbox.c.created_at,
    )
    .where(outbox.c.published_at.is_(None))
    .order_by(outbox.c.id)
    .limit(sa.bindparam("limit"))
)
#: the rows a replica's relay sends: written by that replica, or by none (an outbox without a replica)
_PENDING = {
    True: _UNPUBLISHED.where(outbox.c.replica == sa.bindparam("written_by")),
    False: _UNPUBLISHED.where(outbox.c.replica.is_(None)),
}
#: the same rows marked published, in one statement
_TAKE = {
    mine: outbox.update()
    .where(outbox.c.id.in_(pending.with_only_columns(outbox.c.id).scalar_subquery()))
    .values(published_at=sa.bindparam("now"))
    .returning(*pending.selected_columns)
    for mine, pending in _PENDING.items()
}


@dataclass(frozen=True)
class OutboxRow:
    """One row of the outbox as the relay reads it."""

    id: int
    kind: str
    name: str
    message_id: str
    reply_to: str | None
    correlation_id: str | None
    body: str
    created_at: datetime


def event_row(event: Event, now: datetime) -> dict[str, Any]:
    """An event's row (stamped ``now`` unless it has a time)."""
    event = event.stamped(now)
    return {
        "kind": "event",
        "name": event.name,
        "message_id": event.event_id,
        "command_id": None,
        "reply_to": None,
        "correlation_id": None,
        "body": dumps_text(event.to_dict()),
        "created_at": now,
        "published_at": None,
    }


def reply_row(
    command_id: str,
    command: str,
    body: str,
    reply_to: str | None,
    correlation_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """A stored reply: the command's idempotency record. It is stored as sent: the consumer sends it once
    the command's transaction committed, and acknowledges the command only after the broker has it, so a
    reply lost to a crash or an outage is sent again (from here) when the command comes back."""
    return {
        "kind": "reply",
        "name": command,
        "message_id": random_id(),
        "command_id": command_id,
        "reply_to": reply_to,
        "correlation_id": correlation_id,
        "body": body,
        "created_at": now,
        "published_at": now,
    }


class Outbox:
    """The ``f8a_outbox`` table as one replica (``replica``) writes and sends it; every method works on the
    caller's connection."""

    def __init__(self, replica: str | None = None) -> None:
        self.replica = replica

    def add(self, connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            insert_rows(connection, outbox, [row | {"replica": self.replica} for row in rows])

    def stored_replies(
        self, connection: sa.Connection, command_ids: list[str]
    ) -> dict[str, dict[str, Any]]:
        """The replies already stored for ``command_ids`` (one query for a batch)."""
        found = connection.execute(_STORED, {"ids": command_ids})
        return {row.command_id: json.loads(row.body) for row in found}

    def pending(self, connection: sa.Connection, limit: int) -> list[OutboxRow]:
        """The oldest rows not yet published, in the order they were written."""
        query = _PENDING[self.replica is not None]
        found = connection.execute(query, {"written_by": self.replica, "limit": limit})
        return [OutboxRow(*row) for row in found]

    def take(self, connection: sa.Connection, limit: int, now: datetime) -> list[OutboxRow]:
        """:meth:`pending` and :meth:`mark_published` in one statement: the rows come back marked, in the
        order they were written; a transaction rolled back (a send that failed) unmarks them."""
        if not connection.dialect.update_returning:
            rows = self.pending(connection, limit)
            if rows:
                self.mark_published(connection, [row.id for row in rows], now)
            return rows
        _not_worth_an_fsync(connection)
        query = _TAKE[self.replica is not None]
        found = connection.execute(query, {"written_by": self.replica, "limit": limit, "now": now})
        return sorted((OutboxRow(*row) for row in found), key=lambda row: row.id)

    def mark_published(self, connection: sa.Connection, ids: list[int], now: datetime) -> None:
        """Mark rows sent. Not worth an fsync on PostgreSQL: a mark lost in a crash only sends the rows
        again, which the contract allows (the same ``event_id``)."""
        _not_worth_an_fsync(connection)
        connection.execute(_MARK, {"ids": ids, "now": now})

    def backlog(self, connection: sa.Connection, now: datetime) -> tuple[int, float]:
        """How many rows wait to be published, and the age in seconds of the oldest."""
        query = sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(
            outbox.c.published_at.is_(None)
        )
        count, oldest = connection.execute(query).one()
        oldest = as_utc(oldest)
        return int(count), (now - oldest).total_seconds() if oldest else 0.0

    def prune(self, connection: sa.Connection, reply_max_age: timedelta, now: datetime) -> int:
        """Published events older than :data:`EVENT_RETENTION`, replies older than ``reply_max_age``."""
        published = outbox.c.published_at.is_not(None)
        events = connection.execute(
            outbox.delete().where(
                published, outbox.c.kind == "event", outbox.c.created_at < now - EVENT_RETENTION
            )
        )
        replies = connection.execute(
            outbox.delete().where(
                published, outbox.c.kind == "reply", outbox.c.created_at < now - reply_max_age
            )
        )
        return int(events.rowcount or 0) + int(replies.rowcount or 0)


def _not_worth_an_fsync(connection: sa.Connection) -> None:
    """This transaction's commit need not wait for the disk (PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SET LOCAL synchronous_commit = off"))
