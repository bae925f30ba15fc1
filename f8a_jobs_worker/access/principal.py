"""Who sent a command, as the broker (or a signature) vouches for it, and whom a trusted forwarder acted for.

A principal is never read from a command's JSON body. Its ``source`` says what vouched for ``name``:
``rabbitmq`` (the message's broker-validated ``user_id``), ``sqs`` (the ``SenderId`` attribute, the IAM
principal), ``embedded`` (the local user, or the configured name), ``signature`` (the key that signed it),
``none`` (nothing: no policy asked for it). The worker itself is ``schedule`` (a run the schedule started) or
``worker`` (a default job, a job paused after failures).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SOURCES = ("rabbitmq", "sqs", "embedded", "memory", "signature", "none", "schedule", "worker")


@dataclass(frozen=True)
class Principal:
    """A name and what vouches for it; ``on_behalf_of``: the person a trusted forwarder acted for."""

    name: str
    source: str
    on_behalf_of: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """As the wire has it (``by``, ``started_by``, ``created_by``: schemas/principal.json)."""
        found: dict[str, Any] = {"principal": self.name, "source": self.source}
        if self.on_behalf_of is not None:
            found["on_behalf_of"] = self.on_behalf_of
        return found

    @classmethod
    def of(cls, value: Any) -> Principal | None:
        """A principal from its wire form (a stored row), or None for anything else."""
        if not isinstance(value, dict) or not isinstance(value.get("principal"), str):
            return None
        return cls(
            str(value["principal"]), str(value.get("source", "none")), value.get("on_behalf_of")
        )

    def __str__(self) -> str:
        acting = f" for {self.on_behalf_of}" if self.on_behalf_of else ""
        return f"{self.name} ({self.source}){acting}"


def who(wire: Mapping[str, Any] | None) -> str | None:
    """A principal's wire form in words, as tables and pages show it: its name, and whom it acted for."""
    if not wire:
        return None
    acting = f" for {wire['on_behalf_of']}" if wire.get("on_behalf_of") else ""
    return f"{wire['principal']}{acting}"


#: who a command came from when nothing vouches for its sender and no policy asks
ANONYMOUS = Principal("anonymous", "none")
#: the schedule's own runs
SCHEDULE = Principal("schedule", "schedule")
#: what the worker does on its own (default jobs, a job paused after failures)
WORKER = Principal("worker", "worker")
