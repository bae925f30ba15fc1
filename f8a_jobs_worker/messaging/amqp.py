"""The RabbitMQ adapter's kombu transport: every message arrives, byte for byte, whatever its properties.

Two things of py-amqp and kombu stand between a publisher's bytes and the consumer, and both are undone here:

- py-amqp decodes a body whose ``content_encoding`` names a codec (``auto_decode``), and raises out of the
  connection's frame handler when it cannot decode a content header (a ``timestamp`` beyond year 9999, a
  property that is not UTF-8, a header field type it does not know, tables nested thousands deep). Such a
  message would come back after every reconnect and stop every command behind it. Here decoding is turned
  off for bodies, and properties that cannot be decoded are kept as raw bytes (:data:`RAW_PROPERTIES`) with
  the reason (:data:`UNDECODABLE`), so the consumer can dead-letter the message instead.
- kombu's message decompresses a body with a ``compression`` header; here the body stays as it arrived
  (bodies are UTF-8 JSON by contract, so a compressed one is rejected and dead-lettered as sent).

The property patch is a private part of py-amqp (``GenericContent._load_properties``), checked against the
release series in :mod:`f8a_jobs_worker.compat`.

Writes can be *corked* (:func:`corked`): the frames of a batch (a batch of commands' replies, then their
acks; a batch of events the outbox relay publishes) go to the socket in one ``sendall`` instead of one each.
Each socket call lets go of the GIL, and a thread that lets go of it under load waits up to the switch
interval to get it back: the consumer spent a quarter of its time in those waits. The frames are py-amqp's own
(its ``frame_writer``, a parameter of py-amqp's Connection), only their write is deferred.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import amqp
from amqp.method_framing import frame_writer
from amqp.serialization import GenericContent
from kombu import Connection as KombuConnection
from kombu.transport import pyamqp
from kombu.utils.url import parse_url

from f8a_jobs_worker.messaging.inbound import UNDECODABLE
from f8a_jobs_worker.messaging.topology import ExchangeTopology

log = logging.getLogger(__name__)

#: the raw property bytes of a message whose properties py-amqp could not decode
RAW_PROPERTIES = "x-f8a-raw-properties"

_load_properties = GenericContent._load_properties


def _load_properties_or_keep_raw(self: Any, class_id: int, buf: Any, offset: int) -> int:
    """py-amqp's property decoding, made total: what cannot be decoded is kept raw with the reason."""
    try:
        result: int = _load_properties(self, class_id, buf, offset)
        return result
    except Exception as exc:  # anything a publisher can put in a content header
        self.properties = {
            UNDECODABLE: f"message properties cannot be decoded ({type(exc).__name__}: {exc})"[
                :500
            ],
            RAW_PROPERTIES: bytes(buf[offset:]),
        }
        return len(buf)


GenericContent._load_properties = _load_properties_or_keep_raw


class Message(pyamqp.Message):  # type: ignore[misc]
    """kombu's AMQP message with the body as it arrived and what could not be decoded in ``problem``."""

    def __init__(self, msg: amqp.Message, channel: Any = None, **kwargs: Any) -> None:
        problem = msg.properties.pop(UNDECODABLE, None)
        raw_properties = msg.properties.pop(RAW_PROPERTIES, None)
        super().__init__(msg, channel=channel, **kwargs)
        body = msg.body
        self.body = body if isinstance(body, bytes) else bytes(body or b"")
        self.errors: list[Any] = []  # kombu's decompression is not part of the contract
        self.problem: str | None = problem
        self.raw_properties: bytes | None = raw_properties


class Channel(pyamqp.Channel):  # type: ignore[misc]
    Message = Message

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auto_decode = False  # bodies stay bytes, whatever content_encoding says


class _Cork:
    """What py-amqp's frame writer writes to: the socket, or while corked a buffer written at once later."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.buffer: bytearray | None = None

    def write(self, data: Any) -> None:
        if self.buffer is None:
            self.transport.write(data)
        else:
            self.buffer += data  # a copy: py-amqp reuses its frame buffer

    @contextmanager
    def corked(self) -> Iterator[None]:
        if self.buffer is not None:  # nested: the outer one writes
            yield
            return
        self.buffer = bytearray()
        try:
            yield
        finally:
            data, self.buffer = self.buffer, None
            if data:
                self.transport.write(bytes(data))


class Connection(pyamqp.Connection):  # type: ignore[misc]
    Channel = Channel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.cork: _Cork | None = None
        kwargs.setdefault("on_blocked", _blocked)
        kwargs.setdefault("on_unblocked", _unblocked)
        super().__init__(*args, frame_writer=self._frame_writer_for, **kwargs)

    def _frame_writer_for(self, connection: Any, transport: Any) -> Any:
        """py-amqp's frame writer over a cork (a new one for each socket the connection opens)."""
        self.cork = _Cork(transport)
        return frame_writer(connection, self.cork)


def _blocked(reason: str) -> None:
    log.warning("RabbitMQ blocks publishing on a connection of this worker: %s", reason)


def _unblocked() -> None:
    log.warning("RabbitMQ no longer blocks publishing on a connection of this worker")


@contextmanager
def corked(connection: KombuConnection) -> Iterator[None]:
    """Frames written on ``connection`` inside the block go to the socket together when it ends (on another
    transport, as they come). Nothing inside may wait for the broker's answer to a frame written inside."""
    cork = getattr(connection.connection, "cork", None)
    if cork is None:
        yield
        return
    with cork.corked():
        yield


def reply_to_problem(name: str) -> str | None:
    """A routing key is an AMQP short string: at most 255 bytes."""
    return None if len(name.encode("utf-8")) <= 255 else "longer than 255 bytes"


class Transport(pyamqp.Transport):  # type: ignore[misc]
    Connection = Connection
    driver_name = "f8a-amqp"
    #: how long the consumer may hold a delivery while the job store is down, before requeueing it
    #: (RabbitMQ closes a channel that holds one longer than its consumer_timeout, 30 min by default)
    max_hold = 300.0
    reply_to_problem = staticmethod(reply_to_problem)
    topology = ExchangeTopology()


class SSLTransport(pyamqp.SSLTransport):  # type: ignore[misc]
    Connection = Connection
    driver_name = "f8a-amqp"
    max_hold = Transport.max_hold
    reply_to_problem = staticmethod(reply_to_problem)
    topology = Transport.topology


def connect(url: str, heartbeat: int = 30) -> KombuConnection:
    """``amqp://`` or ``amqps://`` (TLS), with publisher confirms; a ``heartbeat`` in the URL wins."""
    params = parse_url(url)
    scheme = params.pop("transport")
    params.setdefault("heartbeat", heartbeat)
    transport = SSLTransport if scheme == "amqps" else Transport
    made: KombuConnection = KombuConnection(
        transport=transport, transport_options={"confirm_publish": True}, **params
    )
    return made
