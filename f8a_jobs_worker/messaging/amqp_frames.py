"""py-amqp's frames on the worker's own connections: content headers read in full whatever a publisher put in
them, and a batch's frames written to the socket at once.

**Reading.** py-amqp decodes a message's properties in its frame handler and raises there on what it cannot
decode (a property that is not UTF-8, a header of a type it does not know, a header timestamp beyond year
9999, tables nested thousands deep): the connection would fail, and the message come back after every
reconnect, stopping every command behind it. Here each content header is decoded by :func:`read_properties`
(AMQP 0-9-1's basic properties; header tables by py-amqp's own ``loads``), which keeps what it cannot decode
as raw bytes with the reason, and py-amqp is handed the header without properties (so it decodes nothing, a
body included, whatever ``content_encoding`` says). Both are py-amqp's public hooks: the ``frame_handler``
and ``frame_writer`` parameters of its ``Connection``, on this package's connections only.

**Writing** can be *corked* (:meth:`Cork.corked`): the frames of a batch (a batch of commands' replies, then
their acks; a batch of events) go to the socket in one ``sendall`` instead of one each. Each socket call lets
go of the GIL, and a thread that does so under load waits up to the switch interval to get it back.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from amqp import method_framing
from amqp.serialization import loads

#: the basic properties in the order of their flag bits (AMQP 0-9-1): name, kind
BASIC_PROPERTIES = (
    ("content_type", "shortstr"),
    ("content_encoding", "shortstr"),
    ("application_headers", "table"),
    ("delivery_mode", "octet"),
    ("priority", "octet"),
    ("correlation_id", "shortstr"),
    ("reply_to", "shortstr"),
    ("expiration", "shortstr"),
    ("message_id", "shortstr"),
    ("timestamp", "timestamp"),
    ("type", "shortstr"),
    ("user_id", "shortstr"),
    ("app_id", "shortstr"),
    ("cluster_id", "shortstr"),
)


@dataclass
class Properties:
    """A content header's properties: ``values`` as decoded, what could not be and why."""

    values: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    raw: bytes | None = None
    #: the correlation id as it arrived, where it is not UTF-8
    raw_correlation_id: bytes | None = None

    @property
    def problem(self) -> str | None:
        if not self.problems:
            return None
        return f"message properties cannot be decoded ({'; '.join(self.problems)})"[:500]


def read_properties(buf: bytes | memoryview, offset: int) -> Properties:
    """The basic properties at ``offset`` of a content header (the property flags, then the list). Never
    raises: a property that cannot be read is left out and named in ``problems``."""
    found = Properties()
    data = bytes(buf[offset:])
    try:
        (flags,) = struct.unpack_from(">H", data, 0)
        position = 2
        for bit, (name, kind) in enumerate(BASIC_PROPERTIES):
            if flags & (0x8000 >> bit):
                position = _read_one(found, name, kind, data, position)
    except (struct.error, IndexError, ValueError) as exc:
        found.problems.append(f"a malformed content header: {exc}")
    if found.problems:
        found.raw = data
    return found


def _read_one(found: Properties, name: str, kind: str, data: bytes, position: int) -> int:
    """Read one property at ``position`` into ``found``; the position after it."""
    if kind == "octet":
        found.values[name] = data[position]
        return position + 1
    if kind == "timestamp":
        (found.values[name],) = struct.unpack_from(">Q", data, position)
        return position + 8
    if kind == "table":
        (length,) = struct.unpack_from(">I", data, position)
        end = position + 4 + int(length)
        if end > len(data):
            raise ValueError("a header table longer than the header")
        try:
            (found.values[name],), _ = loads("F", data[position:end], 0)
        except Exception as exc:  # whatever a publisher put in a table
            found.problems.append(f"headers: {type(exc).__name__}: {exc}"[:200])
        return end
    length = data[position]
    raw = data[position + 1 : position + 1 + length]
    if len(raw) < length:
        raise ValueError(f"{name} longer than the header")
    try:
        found.values[name] = raw.decode("utf-8")
    except UnicodeDecodeError:
        found.problems.append(f"{name} is not UTF-8")
        if name == "correlation_id":
            found.raw_correlation_id = raw
    return position + 1 + length


class Frames:
    """The frame handler of one connection (py-amqp's ``frame_handler``, with content headers read here):
    the properties of the message being received on each channel wait in :meth:`take`."""

    def __init__(self) -> None:
        self._pending: dict[int, Properties] = {}

    def handler(self, connection: Any, callback: Callable[..., Any]) -> Callable[[Any], Any]:
        on_frame = method_framing.frame_handler(connection, callback)

        def read(frame: tuple[int, int, Any]) -> Any:
            frame_type, channel, buf = frame
            if frame_type == 2:  # a content header: the properties read here, none left to py-amqp
                class_id, body_size = struct.unpack_from(">HxxQ", buf, 0)
                self._pending[channel] = read_properties(buf, 12)
                frame = (2, channel, struct.pack(">HHQH", class_id, 0, body_size, 0))
            return on_frame(frame)

        return read

    def take(self, channel: int) -> Properties:
        """The properties of the message just completed on ``channel``."""
        return self._pending.pop(channel, Properties())


class Cork:
    """What py-amqp's frame writer writes to: the socket, or while corked a buffer written at once later."""

    def __init__(self) -> None:
        self.transport: Any = None
        self._buffer: bytearray | None = None

    def writer(self, connection: Any, transport: Any) -> Any:
        """py-amqp's frame writer over this cork (the ``frame_writer`` of a connection; a new socket each
        time it connects)."""
        self.transport = transport
        self._buffer = None
        return method_framing.frame_writer(connection, self)

    def write(self, data: Any) -> None:
        if self._buffer is None:
            self.transport.write(data)
        else:
            self._buffer += data  # a copy: py-amqp reuses its frame buffer

    def flush(self) -> None:
        """Write what is buffered now."""
        if self._buffer:
            data, self._buffer = bytes(self._buffer), bytearray()
            self.transport.write(data)

    @contextmanager
    def released(self) -> Iterator[None]:
        """Inside a corked block: what was buffered written now, and frames written at once while the
        block runs (a declaration, whose answer is waited for inside it)."""
        buffer = self._buffer
        if buffer is None:
            yield
            return
        self.flush()
        self._buffer = None
        try:
            yield
        finally:
            self._buffer = bytearray()

    @contextmanager
    def corked(self) -> Iterator[None]:
        if self._buffer is not None:  # nested: the outer one writes
            yield
            return
        self._buffer = bytearray()
        try:
            yield
            self.flush()
        finally:
            self._buffer = None
