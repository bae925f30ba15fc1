"""The names of the wire contract's queues and exchanges (docs/messages.md, "Channels").

Every name uses letters, digits and ``_`` only, so the same names are valid SQS queue names. On a broker with
topic exchanges (RabbitMQ) events and flow runs go to exchanges of these names; on the others, to queues of
these names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"^[A-Za-z0-9_]{1,80}$")


def valid_name(name: str) -> bool:
    """A queue or exchange name every broker accepts (SQS is the strictest)."""
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

    @property
    def flows_relay(self) -> str:
        """The durable queue the flow relay reads flow runs from (bound to the flows exchange)."""
        return f"{self.flows}_relay"

    @property
    def flows_dead(self) -> str:
        """Flow runs the relay could not hand to the flow engine, with the reason."""
        return f"{self.flows}_dead"
