"""The command consumer: a thread that takes commands off ``f8a_jobs_commands``, applies them and answers.

For each message: decode and validate, apply once through the facade (effect and stored reply in one
transaction), send the reply to ``reply_to`` with the ``correlation_id``, and only then acknowledge. Where the
broker confirms batches (RabbitMQ) the messages that have already arrived, up to the prefetch count, are
applied as one batch: one transaction, one commit, in arrival order, their replies confirmed together.

Every message ends in exactly one outcome, whatever its bytes: applied and answered, or answered with a client
error code, announced (``command.rejected``) and dead-lettered byte for byte. A store that is down means the
batch is held, the store probed about once a second, and the batch applied as soon as it answers (held longer
than the broker allows, it goes back on the queue). The restart of the loop is the last resort: it is counted
and logged, and the messages that were in hand are handled alone when they come back, so that none of them
can stop the consumer twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict

from f8a_jobs_worker import retry
from f8a_jobs_worker.access.gate import Gate
from f8a_jobs_worker.clock import Clock
from f8a_jobs_worker.commands.answers import (
    DEAD_LETTER_CODES,
    error_message,
    error_reply,
    reply_of,
)
from f8a_jobs_worker.commands.applier import COMMANDS, READ_ONLY, Applied, CommandApplier
from f8a_jobs_worker.commands.envelope import Envelope, decode
from f8a_jobs_worker.commands.refusals import Refusals
from f8a_jobs_worker.errors import (
    ERRORS_BY_CODE,
    BrokerUnavailable,
    InternalError,
    JobsError,
    Unavailable,
    Untrusted,
)
from f8a_jobs_worker.lifecycle import Daemon
from f8a_jobs_worker.logs import command_fields
from f8a_jobs_worker.messaging.codec import encode_reply
from f8a_jobs_worker.messaging.names import Names
from f8a_jobs_worker.messaging.port import Delivery, Outgoing, Transport
from f8a_jobs_worker.operations.metrics import Metrics

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0
MAX_SUSPECTS = 1000

Command = tuple[Delivery, Envelope]


class CommandConsumer(Daemon):
    """Runs in a thread of the worker; :meth:`stop` lets the batch in hand finish."""

    def __init__(
        self,
        transport: Transport,
        applier: CommandApplier,
        names: Names,
        prefetch: int,
        metrics: Metrics,
        clock: Clock,
        gate: Gate | None = None,
        batch_wait: float = 0.0,
    ) -> None:
        """``gate``: identity, signature and policy checks (None: every command is anonymous and allowed,
        as in a unit test). ``batch_wait``: seconds to wait for more commands once one arrived, to apply
        them in one batch (0: only those already delivered)."""
        super().__init__("f8a-commands", stop_timeout=30.0)
        self.transport = transport
        self.applier = applier
        self.names = names
        self.prefetch = prefetch
        self.metrics = metrics
        self.clock = clock
        self.gate = gate
        self.refusals = Refusals(transport, applier, names, clock)
        #: commands applied in one transaction: what the broker has already delivered, up to the prefetch
        batches = transport.facts.batches and applier.batches
        self.batch_size = max(1, prefetch) if batches else 1
        self.batch_wait = batch_wait
        #: times the loop was restarted after an unexpected error (the last resort)
        self.restarts = 0
        self.connected = False
        self._in_hand: list[Delivery] = []
        self._suspects: OrderedDict[str, None] = OrderedDict()
        self._told_unavailable: set[str] = set()
        self._broker = retry.Outage("broker", log)
        self._store = retry.Outage("job store", log)
        #: when the batch in hand was taken off the queue (command latency is measured from there)
        self._taken_at = time.monotonic()

    # -- the loop --------------------------------------------------------------------------------------

    def _run(self) -> None:
        """Consume until stopped, whatever happens: a broker that cannot be reached is probed about once a
        second; anything else is logged and the loop restarted (the messages in hand become suspects)."""
        while not self._stopping.is_set():
            try:
                retry.until_available(
                    self._session, BrokerUnavailable, self._broker, self._stopping
                )
            except Exception:
                self.restarts += 1
                for delivery in self._in_hand:
                    self._suspects[_digest(delivery)] = None
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
                self._in_hand = []  # unacknowledged: the broker delivers them again
                self.connected = False
                self.transport.close()

    @property
    def in_hand(self) -> int:
        """Commands taken off the queue and not yet answered (of at most the prefetch)."""
        return len(self._in_hand)

    def gauges(self) -> dict[str, tuple[str, float]]:
        """Its state, as the metrics show it (name: help, value)."""
        return {
            "f8a_jobs_consumer_prefetch": (
                "Commands this replica may take ahead (the prefetch count).",
                self.prefetch,
            ),
            "f8a_jobs_consumer_prefetch_in_use": (
                "Commands taken off the queue and not yet answered.",
                self.in_hand,
            ),
        }

    def _session(self) -> None:
        """One connection's life: consume, take batches, apply them, until stopped or the broker fails."""
        transport = self.transport
        try:
            transport.connect()
            transport.declare_queue(self.names.commands)
            transport.declare_queue(self.names.dead)
            transport.consume(self.names.commands, self.prefetch)
            self.connected = True
            self._broker.recovered()
            log.info("consuming commands from %s", self.names.commands)
            while not self._stopping.is_set():
                batch = transport.receive(transport.facts.receive_wait, self.batch_size)
                if batch:
                    self.handle(self._filled(transport, batch))
        finally:
            self.connected = False  # readiness says so while the broker is retried

    # -- batches ---------------------------------------------------------------------------------------

    def _filled(self, transport: Transport, batch: list[Delivery]) -> list[Delivery]:
        """``batch`` and what arrives within ``batch_wait`` seconds of it, up to the batch size."""
        deadline = time.monotonic() + self.batch_wait
        while len(batch) < self.batch_size and (left := deadline - time.monotonic()) > 0:
            batch += transport.receive(left, self.batch_size - len(batch))
        return batch

    def handle(self, deliveries: list[Delivery]) -> None:
        """Suspects alone, refusals one by one, valid commands as one batch."""
        self._taken_at = time.monotonic()
        self._in_hand = deliveries
        commands: list[Command] = []
        for delivery in deliveries:
            if self._suspects and _digest(delivery) in self._suspects:
                self._alone(delivery)
                continue
            envelope = self._decode(delivery)
            if envelope.refusal is not None:
                self.reject(delivery, envelope, envelope.refusal)
            else:
                commands.append((delivery, envelope))
        if commands:
            self.apply(commands)
        self._in_hand = []

    def _decode(self, delivery: Delivery) -> Envelope:
        try:
            return decode(delivery, COMMANDS, self.transport.reply_to_problem, self.gate)
        except Exception as exc:  # a bug in decoding: still one answer and one dead letter
            log.exception("command could not be decoded")
            return Envelope(
                command_id=_digest(delivery)[:32],
                reply_to=None,
                correlation_id="",
                refusal=InternalError(f"the command could not be decoded: {type(exc).__name__}"),
            )

    def _alone(self, delivery: Delivery) -> None:
        """A message that was in hand when the loop failed: handled alone, and if it fails again it is
        dead-lettered (or, where even that fails, logged whole and acknowledged) instead of restarting."""
        self._suspects.pop(_digest(delivery), None)
        log.warning("handling alone a message that was in hand when the consumer failed")
        try:
            self.handle([delivery])
        except BrokerUnavailable:
            raise
        except Exception as exc:
            log.exception("the message failed again; dead-lettering it")
            error = InternalError(
                f"the consumer failed on this message twice: {type(exc).__name__}"
            )
            self._last_resort(delivery, error)

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
                    self.transport.requeue(delivery for delivery, _ in commands)
                    log.warning("the job store is still down; %d commands go back", len(commands))
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
        deadline = since + self.transport.facts.max_hold
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
            self.transport.heartbeat()
            self._stopping.wait(min(left, 0.2))

    def _tell_unavailable(self, commands: list[Command], exc: Unavailable) -> None:
        """Tell each publisher once that its command waits for the store."""
        replies = []
        for _delivery, envelope in commands:
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
            replies.append(error_message(envelope, exc))
        self.transport.send([reply for reply in replies if reply is not None])

    def _answer_all(self, commands: list[Command], results: list[Applied]) -> None:
        """After the commit: the replies are sent (confirmed, together where the broker confirms
        batches), then the commands acknowledged. A reply lost meanwhile is sent again, from its stored
        copy, when its command comes back."""
        replies: list[Outgoing] = []
        answered: list[Delivery] = []
        for (delivery, envelope), applied in zip(commands, results, strict=True):
            if applied.reply is None:
                self._failed(delivery, envelope, applied.error)
                continue
            answered.append(delivery)
            reply = self._answered(delivery, envelope, applied)
            if reply is not None:
                replies.append(reply)
        self.transport.send(replies)
        self.transport.ack(answered)

    def _answered(
        self, delivery: Delivery, envelope: Envelope, applied: Applied
    ) -> Outgoing | None:
        """Count and log one applied command; its reply message."""
        assert applied.reply is not None
        self._told_unavailable.discard(envelope.command_id)
        reply = applied.reply
        refused = None if reply["ok"] else reply["error"]
        kept = refused and refused["code"] in DEAD_LETTER_CODES and not applied.duplicate
        if refused and (kept or applied.dead_letter):
            # refused while applied (a handler's kwargs, a replay): kept and announced like any refusal,
            # audited with the batch already
            error = ERRORS_BY_CODE[refused["code"]](refused["message"])
            self.refusals.dead_letter(delivery, error, envelope)
            self.refusals.announce(envelope, refused, audit=False)
        outcome = "ok" if reply["ok"] else reply["error"]["code"]
        self.metrics.command(envelope.command, outcome, time.monotonic() - self._taken_at)
        # a read that was answered changed nothing: at DEBUG, or a dashboard's polling fills the log
        quiet = reply["ok"] and envelope.command in READ_ONLY
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "command %s %s: %s%s",
            envelope.command,
            envelope.command_id,
            outcome,
            " (already applied, stored reply sent again)" if applied.duplicate else "",
            extra=command_fields(envelope.command_id, envelope.command),
        )
        return reply_of(envelope, applied.body or encode_reply(reply))

    def _failed(self, delivery: Delivery, envelope: Envelope, error: Exception | None) -> None:
        """A command that failed unexpectedly (rolled back alone): refused as ``internal_error``."""
        log.error(
            "command %s (%s) failed unexpectedly",
            envelope.command_id,
            envelope.command,
            exc_info=error,
            extra=command_fields(envelope.command_id, envelope.command),
        )
        self.reject(delivery, envelope, InternalError(f"{type(error).__name__}: {error}"))

    # -- refusals, dead letters --------------------------------------------------------------------------

    def reject(self, delivery: Delivery, envelope: Envelope, error: JobsError) -> None:
        """Dead-letter (for the codes that never apply), answer, announce, then acknowledge."""
        log.warning(
            "command %s (%s) from %s rejected: %s: %s",
            envelope.command_id,
            envelope.command,
            envelope.principal,
            error.code,
            error.message,
            extra=command_fields(envelope.command_id, envelope.command),
        )
        if error.code in DEAD_LETTER_CODES or isinstance(error, Untrusted):
            self.refusals.dead_letter(delivery, error, envelope)
        self.metrics.command(envelope.command, error.code, time.monotonic() - self._taken_at)
        reply = error_message(envelope, error)
        if reply is not None:
            self.transport.send([reply])
        self.refusals.announce(envelope, error_reply(envelope, error)["error"])
        self.transport.ack([delivery])

    def _last_resort(self, delivery: Delivery, error: JobsError) -> None:
        """Dead-letter; where even that fails, log the message whole, announce it and acknowledge it."""
        try:
            self.refusals.dead_letter(delivery, error)
        except BrokerUnavailable:
            raise
        except Exception:
            log.exception(
                "could not dead-letter a message; acknowledging it, its body was: %r", delivery.body
            )
        envelope = Envelope(command_id=_digest(delivery)[:32], reply_to=None, correlation_id="")
        self.refusals.announce(envelope, error.to_dict())
        self.transport.ack([delivery])


def _digest(delivery: Delivery) -> str:
    """What identifies a message across redeliveries: its body and what of it could not be decoded."""
    seen = hashlib.sha256(delivery.body)
    seen.update(str(delivery.problem).encode())
    return seen.hexdigest()
