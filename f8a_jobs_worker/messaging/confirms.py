"""Publisher confirms on one AMQP channel: which of the messages published on it the broker has taken.

RabbitMQ numbers a confirm channel's messages from 1 and acknowledges them, singly or up to a tag, in any
order; :class:`ConfirmedTags` keeps the highest tag below which every message is acknowledged, and the
refused ones. The RabbitMQ transport and the Celery flow target both publish with confirms.
"""

from __future__ import annotations

from typing import Any


class ConfirmedTags:
    def __init__(self) -> None:
        self.published = 0
        #: every delivery tag up to this one is acknowledged
        self.confirmed = 0
        #: delivery tags the broker refused (basic.nack), oldest first
        self.nacked: list[int] = []
        self._acked: set[int] = set()

    def watch(self, channel: Any) -> None:
        """Count from nothing, and follow ``channel``'s acks and nacks (a new confirm channel)."""
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        self.reset()

    def reset(self) -> None:
        self.published = self.confirmed = 0
        self._acked.clear()
        self.nacked.clear()

    def sent(self) -> None:
        """One more message published on the channel."""
        self.published += 1

    @property
    def unconfirmed(self) -> int:
        return self.published - self.confirmed

    def _on_ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self.confirmed = max(self.confirmed, tag)
        else:
            self._acked.add(tag)
        while self.confirmed + 1 in self._acked:
            self.confirmed += 1
            self._acked.discard(self.confirmed)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self.nacked.append(tag)
