"""The command consumer: one kombu consumer on ``f8a_jobs_commands``.

For each message: decode and validate, apply once through the facade (effect and reply in one transaction),
publish the reply to ``reply_to`` with the ``correlation_id``, and only then acknowledge. On RabbitMQ the
messages that have already arrived (up to the prefetch count) are applied as one batch: one transaction, one
commit, in arrival order (group commit); elsewhere one at a time. A command that can never apply gets an error
reply, a ``command.rejected`` event and a copy in the dead-letter queue before it is acknowledged. A store that
is down means the messages go back to the queue after a backoff: never lost, never acknowledged unapplied.
kombu's default decode-error handler (which acks and drops) is never used: the consumer reads raw bodies and
decodes them itself.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Iterator
from typing import Any

from kombu import Connection, Consumer, Message
from kombu.exceptions import OperationalError
from kombu.mixins import ConsumerMixin

from f8a_jobs_worker.commands.dispatch import COMMANDS, Applied, CommandApplier, error_reply
from f8a_jobs_worker.commands.envelope import Envelope, Rejected, decode
from f8a_jobs_worker.errors import InternalError, JobsError, Unavailable
from f8a_jobs_worker.events import Event, EventSink
from f8a_jobs_worker.events import model as events
from f8a_jobs_worker.messaging.confirms import ConfirmedChannel
from f8a_jobs_worker.messaging.publisher import Publisher, dumps
from f8a_jobs_worker.messaging.topology import Names, durable_queue

log = logging.getLogger(__name__)

DEAD_LETTER_CODES = {"invalid_json", "validation_error", "unknown_command", "internal_error"}
MAX_BACKOFF = 30.0
GATHER_TIMEOUT = 0.1  # for the rest of a frame whose start is already readable

Command = tuple[Message, bytes, Envelope]


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
        self._batch: list[Message] = []
        self.amqp = connection.transport.driver_type == "amqp"
        #: commands applied in one transaction: what RabbitMQ has already delivered, up to the prefetch
        self.batch_size = max(1, prefetch) if self.amqp and applier.batches else 1
        #: on RabbitMQ, replies go out on a confirm-mode channel of the consumer's own connection and are
        #: confirmed once per batch; elsewhere through the publisher, one by one
        self._replies: ConfirmedChannel | None = None

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
        if self.amqp:
            self._replies = ConfirmedChannel(connection)
        log.info("consuming commands from %s", self.names.commands)

    # -- batches -------------------------------------------------------------------------------------

    def consume(
        self,
        limit: int | None = None,
        timeout: float | None = None,
        safety_interval: float = 1,
        **kw: Any,
    ) -> Iterator[None]:
        """kombu's loop, gathering a batch: after a delivery, whatever is already readable on the socket is
        drained too (never waiting for more), then the batch is applied."""
        with self.consumer_context(**kw) as (conn, _channel, _consumers):
            try:
                while not self.should_stop:
                    try:
                        if not self._batch:  # (deliveries may arrive while replies are confirmed)
                            conn.drain_events(timeout=safety_interval)
                        while 0 < len(self._batch) < self.batch_size and _readable(conn):
                            conn.drain_events(timeout=GATHER_TIMEOUT)
                    except TimeoutError:
                        conn.heartbeat_check()
                    except OSError:
                        if not self.should_stop:
                            raise
                    self.flush()
                    yield
            finally:
                self._batch.clear()  # unacknowledged: the broker delivers them again after a reconnect

    def on_message(self, message: Message) -> None:
        self._batch.append(message)

    def flush(self) -> None:
        """Apply the gathered messages: rejections one by one, valid commands as one batch."""
        messages, self._batch = self._batch, []
        commands: list[Command] = []
        for message in messages:
            body = (
                message.body
                if isinstance(message.body, bytes)
                else str(message.body).encode("utf-8")
            )
            try:
                commands.append(
                    (message, body, decode(body, dict(message.properties or {}), COMMANDS))
                )
            except Rejected as rejected:
                self.reject(message, body, rejected.envelope, rejected.error)
        if commands:
            self.apply(commands)

    def apply(self, commands: list[Command]) -> None:
        try:
            results = self.applier.apply_many([envelope for _, _, envelope in commands])
        except Unavailable as exc:
            self.retry_later(commands, exc)
            return
        except Exception as exc:
            if len(commands) > 1:  # find the culprit: each command on its own
                log.warning(
                    "a batch of %d commands failed (%s); applying them one by one",
                    len(commands),
                    exc,
                )
                for command in commands:
                    self.apply([command])
                return
            results = [Applied(None, error=exc)]
        self._backoff = 0.0
        answered: list[Message] = []  # acknowledged once the broker confirms their replies
        for (message, body, envelope), applied in zip(commands, results, strict=True):
            if applied.reply is None:
                error = applied.error
                log.error(
                    "command %s (%s) failed unexpectedly",
                    envelope.command_id,
                    envelope.command,
                    exc_info=error,
                )
                self.reject(
                    message, body, envelope, InternalError(f"{type(error).__name__}: {error}")
                )
                continue
            self._told_unavailable.discard(envelope.command_id)
            reply = applied.reply
            log.info(
                "command %s %s: %s%s",
                envelope.command,
                envelope.command_id,
                "ok" if reply["ok"] else reply["error"]["code"],
                " (already applied, stored reply sent again)" if applied.duplicate else "",
            )
            if self._replies is None:
                self.answer(envelope, reply)
                message.ack()
                continue
            if envelope.reply_to:
                self._replies.publish(
                    dumps(reply), "", envelope.reply_to, correlation_id=envelope.correlation_id
                )
            answered.append(message)
        if answered and self._replies is not None:
            self._replies.wait()
            for message in answered:
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

    def retry_later(self, commands: list[Command], exc: Unavailable) -> None:
        """Not applied: tell each publisher once, wait (backoff), and put the commands back on the queue."""
        self._backoff = min(MAX_BACKOFF, max(1.0, self._backoff * 2))
        for _message, _body, envelope in commands:
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
        for message, _body, _envelope in commands:
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


def _readable(conn: Connection) -> bool:
    """Whether the broker connection's socket has bytes waiting (so draining them will not block)."""
    sock = getattr(conn.connection, "sock", None)
    if sock is None:
        return False
    return bool(select.select([sock], [], [], 0)[0])
