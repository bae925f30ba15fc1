"""The command consumer: one kombu consumer on ``f8a_jobs_commands``, in a thread of its own.

For each message: decode and validate, apply once through the facade (effect and reply in one transaction),
publish the reply to ``reply_to`` with the ``correlation_id``, and only then acknowledge. On RabbitMQ the
messages that have already arrived (up to the prefetch count) are applied as one batch: one transaction, one
commit, in arrival order (group commit); elsewhere one at a time.

Every message ends in exactly one outcome, whatever its bytes: applied and answered, or answered with a client
error code, announced (``command.rejected``) and dead-lettered byte for byte. The transports hand over bodies
as they arrived and report what they could not decode (:mod:`f8a_jobs_worker.messaging.inbound`), so nothing
is dropped by kombu's decode-error handler. A store that is down means the batch is held, the store probed
about once a second, and the batch applied as soon as it answers. The restart loop is the last resort: it is
counted and logged, and the messages that were in hand when it ran are handled alone when they come back,
so that none of them can stop the consumer twice.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import select
import threading
import time
from collections import OrderedDict
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from kombu import Connection, Consumer, Message
from kombu.exceptions import OperationalError

from f8a_jobs_worker import retry
from f8a_jobs_worker.commands.dispatch import COMMANDS, Applied, CommandApplier, error_reply
from f8a_jobs_worker.commands.envelope import Envelope, Rejected, decode
from f8a_jobs_worker.errors import ERRORS_BY_CODE, InternalError, JobsError, Unavailable
from f8a_jobs_worker.events import Event
from f8a_jobs_worker.events import model as events
from f8a_jobs_worker.logs import command_fields
from f8a_jobs_worker.messaging.confirms import ConfirmedChannel
from f8a_jobs_worker.messaging.inbound import safe_headers, safe_text
from f8a_jobs_worker.messaging.publisher import Publisher, encode_reply
from f8a_jobs_worker.messaging.topology import Names, durable_queue
from f8a_jobs_worker.operations.metrics import Metrics

log = logging.getLogger(__name__)

DEAD_LETTER_CODES = {"invalid_json", "validation_error", "unknown_command", "internal_error"}
GATHER_TIMEOUT = 0.1  # for the rest of a frame whose start is already readable
RESTART_DELAY = 1.0
MAX_SUSPECTS = 1000

Command = tuple[Message, Envelope]


class CommandConsumer:
    """Runs in a thread of the worker; :meth:`stop` lets the batch in hand finish."""

    def __init__(
        self,
        connection: Connection,
        applier: CommandApplier,
        publisher: Publisher,
        names: Names,
        prefetch: int = 10,
        metrics: Metrics | None = None,
    ) -> None:
        self.connection = connection
        self.metrics = metrics or Metrics(frozenset(COMMANDS))
        self.applier = applier
        self.publisher = publisher
        self.names = names
        self.prefetch = prefetch
        self.transport = connection.transport  # this package's adapter of the broker (messaging/)
        self.confirmed_batches = self.transport.topology.confirmed_batches
        #: commands applied in one transaction: what RabbitMQ has already delivered, up to the prefetch
        self.batch_size = max(1, prefetch) if self.confirmed_batches and applier.batches else 1
        #: times the consume loop was restarted after an unexpected error (the last resort)
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._batch: list[Message] = []
        self._in_hand: list[Message] = []
        self._suspects: OrderedDict[str, None] = OrderedDict()
        self._told_unavailable: set[str] = set()
        self._broker = retry.Outage("broker", log)
        self._store = retry.Outage("job store", log)
        self._conn: Connection | None = None
        #: when the batch in hand was taken off the queue (command latency is measured from there)
        self._taken_at = time.monotonic()
        #: on RabbitMQ, replies go out on a confirm-mode channel of the consumer's own connection and are
        #: confirmed once per batch; elsewhere through the publisher, one by one
        self._replies: ConfirmedChannel | None = None

    # -- the loop --------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run_forever, name="f8a-commands", daemon=True)
        self._thread.start()

    def _run_forever(self) -> None:
        """Consume until stopped, whatever happens: a broker that cannot be reached is probed about once a
        second; anything else is logged and the loop restarted (the messages in hand become suspects)."""
        errors = self._connection_errors()
        while not self._stopping.is_set():
            try:
                retry.until_available(self._consume, errors, self._broker, self._stopping)
            except Exception:
                self.restarts += 1
                for message in self._in_hand:
                    self._suspects[_digest(message)] = None
                while len(self._suspects) > MAX_SUSPECTS:
                    self._suspects.popitem(last=False)
                log.exception(
                    "command consumer failed (restart %d); the %d messages in hand will be handled "
                    "one by one when they come back",
                    self.restarts,
                    len(self._in_hand),
                )
                self._stopping.wait(RESTART_DELAY)
            finally:
                self._batch.clear()  # unacknowledged: the broker delivers them again after a reconnect
                self._in_hand = []
                self._conn = None

    @property
    def connected(self) -> bool:
        """Consuming from the broker now (readiness)."""
        return self._conn is not None and not self._broker.down

    @property
    def in_hand(self) -> int:
        """Commands taken off the queue and not yet answered (of at most the prefetch)."""
        return len(self._batch) + len(self._in_hand)

    def _connection_errors(self) -> tuple[type[BaseException], ...]:
        conn = self.connection
        return (OperationalError, *conn.connection_errors, *conn.channel_errors)

    def _consume(self) -> None:
        """One connection's life: consume, gather batches, apply them, until stopped or the broker fails."""
        with self.connection.clone() as conn:
            conn.ensure_connection(max_retries=0)  # one attempt: the retry policy is retry.py's
            self._conn = conn
            self._broker.recovered()
            consumer = Consumer(
                conn.default_channel,
                queues=[durable_queue(self.names.commands)],
                on_message=self._received,
                on_decode_error=self._undecodable,
                prefetch_count=self.prefetch,
                accept=None,
            )
            with consumer:
                self._replies = ConfirmedChannel(conn) if self.confirmed_batches else None
                log.info("consuming commands from %s", self.names.commands)
                while not self._stopping.is_set():
                    self._gather(conn)
                    self.flush()

    def _gather(self, conn: Connection) -> None:
        """Wait up to a second for a delivery, then take whatever else is already readable (never
        waiting for more), up to the batch size."""
        try:
            if not self._batch:  # (deliveries may arrive while replies are confirmed)
                conn.drain_events(timeout=1.0)
            while 0 < len(self._batch) < self.batch_size and _readable(conn):
                conn.drain_events(timeout=GATHER_TIMEOUT)
        except TimeoutError:
            conn.heartbeat_check()

    def _received(self, message: Message) -> None:
        self._batch.append(message)

    def _undecodable(self, message: Any, exc: Exception) -> None:
        """kombu could not build its message (the transports' messages make this unlikely): the message
        is still handled, as one the broker client could not decode, never acknowledged and dropped."""
        if not hasattr(message, "ack"):
            raise exc
        message.problem = f"the message cannot be decoded ({type(exc).__name__}: {exc})"[:500]
        self._batch.append(message)

    # -- batches ---------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Handle the gathered messages (deliveries that arrive meanwhile wait for the next flush)."""
        messages, self._batch = self._batch, []
        self._taken_at = time.monotonic()
        self._in_hand = messages
        self._handle(messages)
        self._in_hand = []

    def _handle(self, messages: list[Message]) -> None:
        """Suspects alone, rejections one by one, valid commands as one batch."""
        commands: list[Command] = []
        for message in messages:
            if self._suspects and _digest(message) in self._suspects:
                self._alone(message)
                continue
            try:
                commands.append((message, self._decode(message)))
            except Rejected as rejected:
                self.reject(message, rejected.envelope, rejected.error)
        if commands:
            self.apply(commands)

    def _decode(self, message: Message) -> Envelope:
        try:
            return decode(
                message.body,
                message.properties or {},
                COMMANDS,
                problem=getattr(message, "problem", None),
                reply_to_problem=self.transport.reply_to_problem,
            )
        except Rejected:
            raise
        except Exception as exc:  # a bug in decoding: still one answer and one dead letter
            log.exception("command could not be decoded")
            raise Rejected(
                Envelope(command_id=_digest(message)[:32], reply_to=None, correlation_id=""),
                InternalError(f"the command could not be decoded: {type(exc).__name__}"),
            ) from None

    def _alone(self, message: Message) -> None:
        """A message that was in hand when the loop failed: handled alone, and if it fails again it is
        dead-lettered (or, where even that fails, logged whole and acknowledged) instead of restarting."""
        self._suspects.pop(_digest(message), None)
        log.warning("handling alone a message that was in hand when the consumer failed")
        try:
            self._handle([message])
        except self._connection_errors():
            raise
        except Exception as exc:
            log.exception("the message failed again; dead-lettering it")
            error = InternalError(
                f"the consumer failed on this message twice: {type(exc).__name__}"
            )
            self._last_resort(message, error)

    def apply(self, commands: list[Command]) -> None:
        """Apply valid commands (held while the store is down), then answer and acknowledge them."""
        started = time.monotonic()
        while True:
            try:
                results = self.applier.apply_many([envelope for _, envelope in commands])
                break
            except Unavailable as exc:
                self._tell_unavailable(commands, exc)
                if not self._wait_for_store(started):
                    self._requeue(commands)
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
                break
        self._answer_all(commands, results)

    def _wait_for_store(self, since: float) -> bool:
        """Probe the store until it answers (True) or the batch was held too long or stop began (False)."""
        deadline = since + self.transport.max_hold
        give_up = threading.Event()

        def attempt() -> None:
            if time.monotonic() > deadline:
                give_up.set()
                return
            self.applier.probe()

        retry.until_available(attempt, Unavailable, self._store, self._stopping, sleep=self._idle)
        return not give_up.is_set() and not self._stopping.is_set()

    def _idle(self, seconds: float) -> None:
        """Wait while holding deliveries: keep the broker connection's heartbeats going."""
        deadline = time.monotonic() + seconds
        while not self._stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            if self._conn is not None:
                self._conn.heartbeat_check()
            self._stopping.wait(min(left, 0.2))

    def _tell_unavailable(self, commands: list[Command], exc: Unavailable) -> None:
        """Tell each publisher once that its command waits for the store."""
        for _message, envelope in commands:
            if envelope.command_id in self._told_unavailable:
                continue
            self._told_unavailable.add(envelope.command_id)
            log.warning(
                "command %s (%s) waits: %s",
                envelope.command_id,
                envelope.command,
                exc.message,
                extra=command_fields(envelope.command_id, envelope.command),
            )
            self._answer_quietly(envelope, error_reply(envelope, exc))

    def _requeue(self, commands: list[Command]) -> None:
        log.warning("the job store is still down; %d commands go back to the queue", len(commands))
        for message, _envelope in commands:
            message.requeue()

    def _answer_all(self, commands: list[Command], results: list[Applied]) -> None:
        """After the commit: the replies are sent, then the messages acknowledged once the broker has the
        replies (a reply lost meanwhile is sent again, from its stored copy, when the command comes back)."""
        answered: list[Message] = []  # acknowledged once the broker confirmed the replies sent here
        with self._corked():
            for (message, envelope), applied in zip(commands, results, strict=True):
                if self._answer_one(message, envelope, applied):
                    answered.append(message)
        if self._replies is not None and self._replies.outstanding:
            self._replies.wait()
        with self._corked():
            for message in answered:
                message.ack()

    def _corked(self) -> AbstractContextManager[None]:
        """A batch's replies, then its acknowledgements, each written to the broker at once (RabbitMQ)."""
        return nullcontext() if self._replies is None else self._replies.corked()

    def _answer_one(self, message: Message, envelope: Envelope, applied: Applied) -> bool:
        """Answer one applied command; whether it is to be acknowledged once its reply is confirmed (a
        command that failed unexpectedly is rejected, and acknowledged, here)."""
        if applied.reply is None:
            log.error(
                "command %s (%s) failed unexpectedly",
                envelope.command_id,
                envelope.command,
                exc_info=applied.error,
                extra=command_fields(envelope.command_id, envelope.command),
            )
            error = applied.error
            self.reject(message, envelope, InternalError(f"{type(error).__name__}: {error}"))
            return False
        self._told_unavailable.discard(envelope.command_id)
        reply = applied.reply
        refused = None if reply["ok"] else reply["error"]
        if refused and refused["code"] in DEAD_LETTER_CODES and not applied.duplicate:
            # refused by the facade (a handler's kwargs): kept and announced like any rejection
            self.dead_letter(message, ERRORS_BY_CODE[refused["code"]](refused["message"]))
            self._announce(envelope, refused)
        outcome = "ok" if reply["ok"] else reply["error"]["code"]
        self.metrics.command(envelope.command, outcome, time.monotonic() - self._taken_at)
        log.info(
            "command %s %s: %s%s",
            envelope.command,
            envelope.command_id,
            outcome,
            " (already applied, stored reply sent again)" if applied.duplicate else "",
            extra=command_fields(envelope.command_id, envelope.command),
        )
        if envelope.reply_to:
            body = applied.body or encode_reply(reply)  # encoded once: stored or not
            if self._replies is None:
                self.answer(envelope, reply, body)
            else:
                self._replies.publish(
                    body, "", envelope.reply_to, correlation_id=envelope.correlation_id
                )
        return True

    # -- answers, rejections, dead letters ------------------------------------------------------------

    def answer(self, envelope: Envelope, reply: dict[str, Any], body: bytes | None = None) -> None:
        """Send ``reply`` (``body``: its bytes, where they were made already)."""
        if envelope.reply_to:
            self.publisher.to_reply_queue(
                envelope.reply_to,
                body or encode_reply(reply),
                correlation_id=envelope.correlation_id,
            )

    def _answer_quietly(self, envelope: Envelope, reply: dict[str, Any]) -> None:
        """An answer whose loss is logged, not raised (the reply is stored, or the command is refused)."""
        try:
            self.answer(envelope, reply)
        except Exception as exc:
            log.warning(
                "could not answer %s on %s: %s", envelope.command_id, envelope.reply_to, exc
            )

    def reject(self, message: Message, envelope: Envelope, error: JobsError) -> None:
        """Dead-letter (for the codes that never apply), answer, announce, then acknowledge."""
        log.warning(
            "command %s (%s) rejected: %s: %s",
            envelope.command_id,
            envelope.command,
            error.code,
            error.message,
            extra=command_fields(envelope.command_id, envelope.command),
        )
        if error.code in DEAD_LETTER_CODES:
            self.dead_letter(message, error)
        self.metrics.command(envelope.command, error.code, time.monotonic() - self._taken_at)
        reply = error_reply(envelope, error)
        self._answer_quietly(envelope, reply)
        self._announce(envelope, reply["error"])
        message.ack()

    def _announce(self, envelope: Envelope, error: dict[str, Any]) -> None:
        """``command.rejected``, through the outbox; with the store down, straight to the broker (which
        raises if it cannot take it: the message is then not acknowledged and comes back)."""
        event = Event(
            events.COMMAND_REJECTED,
            None,
            {"command_id": envelope.command_id, "command": envelope.command, "error": error},
        )
        try:
            self.applier.announce(event)
        except Unavailable:
            stamped = event.stamped(self.applier.clock.now())
            self.publisher.to_topic(
                self.names.events, event.name, stamped.to_dict(), message_id=event.event_id
            )

    def dead_letter(self, message: Message, error: JobsError) -> None:
        """A copy in the dead-letter queue: the body byte for byte, the headers as far as they can be
        published again, and why."""
        self.publisher.to_queue(
            self.names.dead,
            message.body,
            headers=self._dead_headers(message, error),
            content_type=safe_text(message.content_type or "application/octet-stream", 255),
            content_encoding=safe_text(message.content_encoding or "binary", 255),
        )

    def _dead_headers(self, message: Message, error: JobsError) -> dict[str, Any]:
        kept = {"reply_to", "correlation_id", "message_id", "content_type", "content_encoding"}
        properties = {
            key: safe_text(value, 255)
            for key, value in (message.properties or {}).items()
            if key in kept and value is not None
        }
        headers = {
            **safe_headers(message.headers),
            "x-f8a-reason": error.code,
            "x-f8a-error": safe_text(error.message, 1000),
            "x-f8a-original-properties": properties,
            "x-f8a-dead-at": time.time(),
        }
        raw = getattr(message, "raw_properties", None)
        if raw:
            headers["x-f8a-raw-properties"] = base64.b64encode(raw).decode("ascii")
        return headers

    def _last_resort(self, message: Message, error: JobsError) -> None:
        """Dead-letter raw; where even that fails, log the message whole, announce it and acknowledge it."""
        try:
            self.dead_letter(message, error)
        except self._connection_errors():
            raise
        except Exception:
            log.exception(
                "could not dead-letter a message; acknowledging it, its body was (base64): %s",
                base64.b64encode(message.body).decode("ascii"),
            )
        envelope = Envelope(command_id=_digest(message)[:32], reply_to=None, correlation_id="")
        self._announce(envelope, error.to_dict())
        message.ack()

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def should_stop(self) -> bool:
        return self._stopping.is_set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)


def _digest(message: Message) -> str:
    """What identifies a message across redeliveries: its body and what of it could not be decoded."""
    seen = hashlib.sha256(message.body if isinstance(message.body, bytes) else b"")
    seen.update(str(getattr(message, "problem", None)).encode())
    return seen.hexdigest()


def _readable(conn: Connection) -> bool:
    """Whether the broker connection's socket has bytes waiting (so draining them will not block)."""
    sock = getattr(conn.connection, "sock", None)
    if sock is None:
        return False
    return bool(select.select([sock], [], [], 0)[0])
