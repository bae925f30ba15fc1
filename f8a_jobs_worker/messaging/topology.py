"""The names of the wire contract and the kombu entities behind them.

On RabbitMQ events and flow runs go to topic exchanges; on queue-only transports to queues of the same name.
Every name uses letters, digits and ``_`` only, so the same names are valid SQS queue names.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from kombu import Exchange, Queue

_NAME = re.compile(r"^[A-Za-z0-9_]{1,80}$")


def valid_name(name: str) -> bool:
    """A queue or exchange name every transport accepts (SQS is the strictest)."""
    return bool(_NAME.match(name))


@dataclass(frozen=True)
class Names:
    commands: str = "f8a_jobs_commands"
    dead: str = "f8a_jobs_commands_dead"
    events: str = "f8a_jobs_events"
    flows: str = "f8a_jobs_flows"

    def __post_init__(self) -> None:
        for name in (self.commands, self.dead, self.events, self.flows):
            if not _NAME.match(name):
                raise ValueError(f"queue name {name!r}: use letters, digits and _ only (max 80)")

    @classmethod
    def with_prefix(cls, prefix: str) -> Names:
        """All four names under another prefix, e.g. for a second deployment on one broker."""
        return cls(
            f"{prefix}_commands", f"{prefix}_commands_dead", f"{prefix}_events", f"{prefix}_flows"
        )


def durable_queue(name: str) -> Queue:
    """A durable queue reached through the default exchange by its own name."""
    return Queue(name, routing_key=name, durable=True, auto_delete=False)


def topic_exchange(name: str) -> Exchange:
    return Exchange(name, type="topic", durable=True)


def private_queue(
    name: str, queue_only: bool, exchange: Exchange | None = None, routing_key: str | None = None
) -> Queue:
    """A queue of one consumer's own (replies, a watcher): exclusive and auto-deleted on RabbitMQ; on
    queue-only transports, which have neither, a durable queue its owner deletes."""
    if queue_only:
        return durable_queue(name)
    return Queue(
        name,
        exchange,
        routing_key=routing_key or name,
        exclusive=True,
        auto_delete=True,
        durable=False,
    )


def events_queue(events: str, queue_only: bool, binding: str = "#") -> Queue:
    """Where a monitor reads events: a private queue bound to the events exchange with ``binding`` on
    RabbitMQ; the one shared events queue elsewhere (so readers there take events off it)."""
    if queue_only:
        return durable_queue(events)
    return private_queue(
        f"{events}_watch_{uuid.uuid4().hex[:8]}", False, topic_exchange(events), binding
    )
