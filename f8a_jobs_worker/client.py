"""A client for pipelines and the CLI: send job commands, wait for replies, raise typed errors.

    with Client("amqp://guest:guest@127.0.0.1:5672//") as client:
        job = client.call("job.get", job_id="nightly")["job"]
        client.send("job.run_now", {"job_id": "nightly"})      # fire and forget

It needs nothing but the wire contract: it publishes envelopes to ``f8a_jobs_commands`` and reads replies from a
queue of its own (exclusive and auto-deleted on RabbitMQ; created and deleted by the client elsewhere).
"""

from __future__ import annotations

import json
import time
import uuid
from types import TracebackType
from typing import Any

from kombu import Consumer, Queue

from f8a_jobs_worker.errors import (
    ERRORS_BY_CODE,
    InternalError,
    JobsError,
    ReplyTimeout,
    Unavailable,
)
from f8a_jobs_worker.messaging import broker
from f8a_jobs_worker.messaging.publisher import Publisher
from f8a_jobs_worker.messaging.topology import Names


def raise_for(reply: dict[str, Any]) -> dict[str, Any]:
    """The result of a reply, or its error raised as the JobsError subclass of its code."""
    if reply.get("ok"):
        result: dict[str, Any] = reply["result"]
        return result
    error = reply.get("error") or {}
    cls = ERRORS_BY_CODE.get(error.get("code", ""), InternalError)
    exc = JobsError.__new__(cls)
    JobsError.__init__(exc, error.get("message", ""), error.get("details") or [])
    raise exc


class Client:
    def __init__(
        self, broker_url: str | None = None, names: Names | None = None, timeout: float = 30.0
    ) -> None:
        self.names = names or Names()
        self.timeout = timeout
        self.conn = broker.connection(broker_url)
        self.publisher = Publisher(self.conn)
        self._reply_queue: Queue | None = None
        self._consumer: Consumer | None = None
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
        properties: dict[str, Any] = {"message_id": command_id, "correlation_id": command_id}
        if reply_to:
            properties["reply_to"] = reply_to
            if not self.publisher.topology.exchanges:  # readable without the broker's envelope
                envelope["reply_to"], envelope["correlation_id"] = reply_to, command_id
        self.publisher.to_queue(self.names.commands, envelope, **properties)
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
        queue = self._ensure_reply_queue()
        command_id = self.send(command, args, command_id=command_id, reply_to=queue.name)
        return self.wait_reply(command_id, timeout)

    def wait_reply(self, correlation_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the final reply to ``correlation_id``.

        An ``unavailable`` reply means the worker will retry the command: keep waiting for the final
        reply, and raise Unavailable only if none comes in time.
        """
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
            try:
                self.conn.drain_events(timeout=min(remaining, 1.0))
            except TimeoutError:
                continue

    # -- replies -------------------------------------------------------------------------------------

    def _ensure_reply_queue(self) -> Queue:
        if self._reply_queue is not None:
            return self._reply_queue
        queue = self.publisher.topology.private_queue(f"f8a_jobs_reply_{uuid.uuid4().hex}")
        channel = self.conn.default_channel
        queue = queue(channel)
        queue.declare()
        self._consumer = Consumer(channel, queues=[queue], on_message=self._on_reply, accept=None)
        self._consumer.consume()
        self._reply_queue = queue
        return queue

    def _on_reply(self, message: Any) -> None:
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        message.ack()
        try:
            reply = json.loads(body)
        except ValueError:
            return
        correlation = (message.properties or {}).get("correlation_id") or reply.get("command_id")
        self._replies[str(correlation)] = reply

    def close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.cancel()
                if self._reply_queue is not None:
                    self.publisher.topology.release(self._reply_queue)
            except Exception:  # noqa: S110 - best effort: an unreachable broker drops the queue itself
                pass
        self.conn.release()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
