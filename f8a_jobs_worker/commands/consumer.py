"""The command consumer: one kombu consumer on ``f8a_jobs_commands``.

For each message: decode and validate, apply once through the facade (effect and reply in one transaction),
publish the reply to ``reply_to`` with the ``correlation_id``, and only then acknowledge. A command that can
never apply gets an error reply, a ``command.rejected`` event and a copy in the dead-letter queue before it is
acknowledged. A store that is down means the message goes back to the queue after a backoff: never lost,
never acknowledged unapplied. kombu's default decode-error handler (which acks and drops) is never used: the
consumer reads raw bodies and decodes them itself.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kombu import Connection, Consumer, Message
from kombu.exceptions import OperationalError
from kombu.mixins import ConsumerMixin

from f8a_jobs_worker.commands.dispatch import COMMANDS, CommandApplier, error_reply
from f8a_jobs_worker.commands.envelope import Envelope, Rejected, decode
from f8a_jobs_worker.errors import InternalError, JobsError, Unavailable
from f8a_jobs_worker.events import Event, EventSink
from f8a_jobs_worker.events import model as events
from f8a_jobs_worker.messaging.publisher import Publisher
from f8a_jobs_worker.messaging.topology import Names, durable_queue

log = logging.getLogger(__name__)

DEAD_LETTER_CODES = {"invalid_json", "validation_error", "unknown_command", "internal_error"}
MAX_BACKOFF = 30.0


class CommandConsumer(ConsumerMixin):  # type: ignore[misc]
    """Runs in a thread of the worker; :meth:`stop` lets the message in hand finish."""

    def __init__(
        self,
        connection: Connection,
        applier: CommandApplier,
        publisher: Publisher,
        sink: EventSink,
        names: Names,
        prefetch: int = 10,
    ) -> None:
        self.connection = connection
        self.applier = applier
        self.publisher = publisher
        self.sink = sink
        self.names = names
        self.prefetch = prefetch
        self._backoff = 0.0
        self._told_unavailable: set[str] = set()
        self._thread: threading.Thread | None = None

    def get_consumers(self, consumer_cls: type[Consumer], channel: Any) -> list[Consumer]:
        return [
            consumer_cls(
                queues=[durable_queue(self.names.commands)],
                on_message=self.on_message,
                prefetch_count=self.prefetch,
                accept=None,
            )
        ]

    #: one reconnection attempt per round, so that a stop request is noticed between rounds
    connect_max_retries = 1

    def on_connection_error(self, exc: Exception, interval: float) -> None:
        log.debug(
            "broker connection failed (%s); next attempt in %.0fs", type(exc).__name__, interval
        )

    def on_consume_ready(
        self, connection: Connection, channel: Any, consumers: Any, **_: Any
    ) -> None:
        log.info("consuming commands from %s", self.names.commands)

    # -- one message ---------------------------------------------------------------------------------

    def on_message(self, message: Message) -> None:
        body = (
            message.body if isinstance(message.body, bytes) else str(message.body).encode("utf-8")
        )
        properties = dict(message.properties or {})
        try:
            envelope = decode(body, properties, COMMANDS)
        except Rejected as rejected:
            self.reject(message, body, rejected.envelope, rejected.error)
            return
        try:
            reply, duplicate = self.applier.apply(envelope)
        except Unavailable as exc:
            self.retry_later(message, envelope, exc)
            return
        except Exception as exc:
            log.exception(
                "command %s (%s) failed unexpectedly", envelope.command_id, envelope.command
            )
            self.reject(message, body, envelope, InternalError(f"{type(exc).__name__}: {exc}"))
            return
        self._backoff = 0.0
        self._told_unavailable.discard(envelope.command_id)
        log.info(
            "command %s %s: %s%s",
            envelope.command,
            envelope.command_id,
            "ok" if reply["ok"] else reply["error"]["code"],
            " (already applied, stored reply sent again)" if duplicate else "",
        )
        self.answer(envelope, reply)
        message.ack()

    def answer(self, envelope: Envelope, reply: dict[str, Any]) -> None:
        if envelope.reply_to:
            self.publisher.to_reply_queue(
                envelope.reply_to, reply, correlation_id=envelope.correlation_id
            )

    def reject(self, message: Message, body: bytes, envelope: Envelope, error: JobsError) -> None:
        """Dead-letter (for the codes that never apply), answer, announce, then acknowledge."""
        log.warning(
            "command %s (%s) rejected: %s: %s",
            envelope.command_id,
            envelope.command,
            error.code,
            error.message,
        )
        if error.code in DEAD_LETTER_CODES:
            self.publisher.to_queue(
                self.names.dead,
                body,
                headers=self._dead_headers(message, error),
                content_type=message.content_type or "application/octet-stream",
                content_encoding=message.content_encoding or "binary",
            )
        reply = error_reply(envelope, error)
        self.answer(envelope, reply)
        self.sink.emit(
            Event(
                events.COMMAND_REJECTED,
                None,
                {
                    "command_id": envelope.command_id,
                    "command": envelope.command,
                    "error": reply["error"],
                },
            )
        )
        message.ack()

    def _dead_headers(self, message: Message, error: JobsError) -> dict[str, Any]:
        properties = {
            k: v
            for k, v in (message.properties or {}).items()
            if k in {"reply_to", "correlation_id", "message_id", "content_type"}
        }
        return {
            **(message.headers or {}),
            "x-f8a-reason": error.code,
            "x-f8a-error": error.message[:1000],
            "x-f8a-original-properties": properties,
            "x-f8a-dead-at": time.time(),
        }

    def retry_later(self, message: Message, envelope: Envelope, exc: Unavailable) -> None:
        """Not applied: tell the publisher once, wait (backoff), and put the command back on the queue."""
        self._backoff = min(MAX_BACKOFF, max(1.0, self._backoff * 2))
        log.warning(
            "command %s (%s) not applied: %s; retrying in %.0fs",
            envelope.command_id,
            envelope.command,
            exc.message,
            self._backoff,
        )
        if envelope.command_id not in self._told_unavailable:
            self._told_unavailable.add(envelope.command_id)
            try:
                self.answer(envelope, error_reply(envelope, exc))
            except Exception:
                log.exception("could not tell %s that it will be retried", envelope.reply_to)
        self._sleep(self._backoff)
        message.requeue()

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run_forever, name="f8a-commands", daemon=True)
        self._thread.start()

    def _run_forever(self) -> None:
        """Consume until stopped, whatever happens: a broker that cannot be reached is retried with backoff
        (checking for stop in between), anything else is logged and the loop restarted, so that the consumer
        never dies quietly while the process lives on."""
        delay = 1.0
        while not self.should_stop:
            try:
                self.run()
                delay = 1.0
            except OperationalError as exc:
                log.warning(
                    "broker unavailable (%s); retrying in %.0fs; jobs keep firing meanwhile",
                    exc,
                    delay,
                )
                self._sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
            except Exception:
                log.exception("command consumer failed; restarting it in 1s")
                self._sleep(1.0)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.should_stop and time.monotonic() < deadline:
            time.sleep(0.1)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        self.should_stop = True
        if self._thread is not None:
            self._thread.join(timeout)
