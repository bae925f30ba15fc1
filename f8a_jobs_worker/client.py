"""A client for pipelines and the CLI: send job commands, wait for replies, raise typed errors.

    with Client("amqp://guest:guest@127.0.0.1:5672//") as client:
        job = client.call("job.get", job_id="nightly")["job"]
        client.send("job.run_now", {"job_id": "nightly"})      # fire and forget

It needs nothing but the wire contract: it publishes envelopes to ``f8a_jobs_commands`` and reads replies from a
queue of its own (exclusive and auto-deleted on RabbitMQ; created and deleted by the client elsewhere), through
the same transport port as the worker. On RabbitMQ every message carries the connection's user as ``user_id``
(the broker checks it: the worker's policy sees who sent it); with a ``signing_key`` each command is signed
as it is sent (a retry is signed afresh); a trusted forwarder names the person it acts for
(``on_behalf_of``).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

from f8a_jobs_worker.access.gate import ON_BEHALF_OF
from f8a_jobs_worker.access.signing import Key, sign
from f8a_jobs_worker.errors import (
    ERRORS_BY_CODE,
    BrokerUnavailable,
    InternalError,
    ReplyTimeout,
    Unavailable,
)
from f8a_jobs_worker.messaging.codec import dumps
from f8a_jobs_worker.messaging.connect import transport_for
from f8a_jobs_worker.messaging.names import Names
from f8a_jobs_worker.messaging.port import Outgoing


def raise_for(reply: dict[str, Any]) -> dict[str, Any]:
    """The result of a reply, or its error raised as the JobsError subclass of its code."""
    if reply.get("ok"):
        result: dict[str, Any] = reply["result"]
        return result
    error = reply.get("error") or {}
    cls = ERRORS_BY_CODE.get(error.get("code", ""), InternalError)
    raise cls(error.get("message", ""), error.get("details") or [])


class Client:
    def __init__(
        self,
        broker_url: str | None = None,
        names: Names | None = None,
        timeout: float = 30.0,
        signing_key: Key | None = None,
        on_behalf_of: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``signing_key`` signs every command; ``on_behalf_of`` names the person a trusted forwarder acts
        for; ``clock`` gives the time signatures are made at (Unix seconds)."""
        self.names = names or Names()
        self.timeout = timeout
        self.signing_key = signing_key
        self.on_behalf_of = on_behalf_of
        self.clock = clock
        self.transport = transport_for(broker_url)
        self.transport.connect()
        self._declared = False
        self._reply_queue: str | None = None
        self._replies: dict[str, dict[str, Any]] = {}

    # -- sending -------------------------------------------------------------------------------------

    def send(
        self,
        command: str,
        args: dict[str, Any] | None = None,
        *,
        command_id: str | None = None,
        reply_to: str | None = None,
    ) -> str:
        """Publish a command; return its ``command_id``. No reply unless ``reply_to`` is given."""
        command_id = command_id or str(uuid.uuid4())
        envelope: dict[str, Any] = {"command": command, "command_id": command_id}
        if args:
            envelope["args"] = args
        if reply_to:  # in the body too: readable on a broker that has no message properties
            envelope["reply_to"], envelope["correlation_id"] = reply_to, command_id
        if not self._declared:
            self.transport.declare_queue(self.names.commands)
            self._declared = True
        body = dumps(envelope)
        headers = {ON_BEHALF_OF: self.on_behalf_of} if self.on_behalf_of else {}
        if self.signing_key is not None:
            headers.update(sign(self.signing_key, command_id, body, self.clock()))
        message = Outgoing(
            body,
            queue=self.names.commands,
            message_id=command_id,
            correlation_id=command_id,
            reply_to=reply_to,
            headers=headers,
        )
        self.transport.send([message])
        return command_id

    def call(
        self,
        command: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        command_id: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Send a command and wait for its reply; return the result or raise its typed error.

        Keyword arguments are merged into ``args``: ``call("job.get", job_id="x")``.
        """
        reply = self.request(
            command, {**(args or {}), **kwargs}, timeout=timeout, command_id=command_id
        )
        return raise_for(reply)

    def request(
        self,
        command: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """Send a command and return its whole reply (``ok``, ``result`` or ``error``)."""
        command_id = self.send(command, args, command_id=command_id, reply_to=self.reply_queue())
        return self.wait_reply(command_id, timeout)

    def wait_reply(self, correlation_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the final reply to ``correlation_id``.

        An ``unavailable`` reply means the worker will retry the command: keep waiting for the final
        reply, and raise Unavailable only if none comes in time.
        """
        self.reply_queue()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        interim: dict[str, Any] | None = None
        while True:
            reply = self._replies.pop(correlation_id, None)
            if reply is not None:
                if reply.get("ok") is False and reply["error"]["code"] == Unavailable.code:
                    interim = reply
                else:
                    return reply
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if interim is not None:
                    raise_for(interim)
                raise ReplyTimeout(f"no reply to {correlation_id} within the timeout")
            self._read_replies(min(remaining, 1.0))

    # -- replies -------------------------------------------------------------------------------------

    def reply_queue(self) -> str:
        """The queue of this client's own that replies come to (made on first use)."""
        if self._reply_queue is None:
            name = self.transport.private_queue(f"f8a_jobs_reply_{uuid.uuid4().hex}")
            self.transport.consume(name, 100)
            self._reply_queue = name
        return self._reply_queue

    def _read_replies(self, timeout: float) -> None:
        deliveries = self.transport.receive(timeout, 100)
        self.transport.ack(deliveries)
        for delivery in deliveries:
            try:
                reply = json.loads(delivery.body)
            except ValueError:
                continue
            if not isinstance(reply, dict):
                continue
            correlation = delivery.text("correlation_id") or reply.get("command_id")
            self._replies[str(correlation)] = reply

    def close(self) -> None:
        if self._reply_queue is not None:
            with contextlib.suppress(BrokerUnavailable):
                self.transport.release(self._reply_queue)
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
