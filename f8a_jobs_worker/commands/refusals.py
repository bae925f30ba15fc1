"""What a refused command leaves behind: its dead letter (the message byte for byte, why, and who sent it as
far as anything vouched for it) and its announcement (``command.rejected`` with its audit row)."""

from __future__ import annotations

from typing import Any

from f8a_jobs_worker.clock import Clock
from f8a_jobs_worker.commands.answers import dead_letter
from f8a_jobs_worker.commands.applier import CommandApplier, audit_of
from f8a_jobs_worker.commands.envelope import Envelope
from f8a_jobs_worker.errors import JobsError, Unavailable
from f8a_jobs_worker.events import Event
from f8a_jobs_worker.events import model as events
from f8a_jobs_worker.messaging.codec import dumps
from f8a_jobs_worker.messaging.names import Names
from f8a_jobs_worker.messaging.port import Delivery, Outgoing, Transport


class Refusals:
    """Dead letters and announcements, on the consumer's transport and store."""

    def __init__(
        self, transport: Transport, applier: CommandApplier, names: Names, clock: Clock
    ) -> None:
        self.transport = transport
        self.applier = applier
        self.names = names
        self.clock = clock

    def dead_letter(
        self, delivery: Delivery, error: JobsError, envelope: Envelope | None = None
    ) -> None:
        message = dead_letter(delivery, error, self.names.dead, self.clock.now())
        if envelope is not None:  # who sent it, as far as anything vouched for it
            message.headers["x-f8a-principal"] = envelope.principal.to_dict()
        self.transport.send([message])

    def announce(self, envelope: Envelope, error: dict[str, Any], audit: bool = True) -> None:
        """``command.rejected`` naming the principal, through the outbox with its audit row (``audit``:
        unless the refusal was audited where it was made); with the store down, straight to the broker
        (which raises if it cannot take it: the message is then not acknowledged and comes back)."""
        fields = {
            "command_id": envelope.command_id,
            "command": envelope.command,
            "error": error,
            "by": envelope.principal.to_dict(),
        }
        event = Event(events.COMMAND_REJECTED, None, fields)
        row = audit_of(envelope, error, self.clock.now())
        try:
            self.applier.announce(event, row if audit else None)
        except Unavailable:
            stamped = event.stamped(self.clock.now())
            message = Outgoing(
                dumps(stamped.to_dict()),
                topic=self.names.events,
                routing_key=event.name,
                message_id=event.event_id,
            )
            self.transport.send([message])
