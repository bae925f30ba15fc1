"""Watching the worker from a shell: ``events watch`` tails events, ``dlq list|replay`` handles dead letters."""

from __future__ import annotations

import json
import re
import signal
import uuid
from typing import Any

import click

from f8a_jobs_worker.cli.output import EX_UNAVAILABLE, table
from f8a_jobs_worker.cli.settings import settings_from
from f8a_jobs_worker.errors import BrokerUnavailable
from f8a_jobs_worker.messaging.connect import transport_for
from f8a_jobs_worker.messaging.dead_letters import describe, peek, take
from f8a_jobs_worker.messaging.port import Delivery, Outgoing, Transport

#: how long a dead-letter queue is given to yield its first message (SQS cannot say at once it is empty)

broker_option = click.option(
    "--broker-url", metavar="URL", help="Broker [env F8A_JOBS_BROKER_URL]."
)


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is one word, ``#`` zero or more (``job.*``, ``#.failed``)."""
    parts = []
    for word in pattern.split("."):
        parts.append(r"[^.]+" if word == "*" else r".*" if word == "#" else re.escape(word))
    regex = r"\.".join(parts).replace(r".*\.", r"(?:.*\.)?").replace(r"\..*", r"(?:\..*)?")
    return re.fullmatch(regex, key) is not None


@click.group()
def events() -> None:
    """Watch what happens to jobs."""


@events.command("watch")
@click.option(
    "--filter",
    "pattern",
    default="#",
    show_default=True,
    help="Routing-key pattern: job.*, job.failed, #.",
)
@click.option("--count", type=click.IntRange(min=1), help="Exit after this many events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document per line.")
@broker_option
@click.pass_context
def watch(
    ctx: click.Context, pattern: str, count: int | None, as_json: bool, broker_url: str | None
) -> None:
    """Tail events until Ctrl-C.

    On RabbitMQ a queue of this watcher's own is bound to the events exchange. On SQS and the embedded broker
    events sit in one queue, so watching takes them off it: run one watcher per events queue there.
    """
    settings = settings_from(ctx, broker_url=broker_url)
    names = settings.names()
    seen = 0
    stop = False

    def on_signal(*_: Any) -> None:
        nonlocal stop
        stop = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def on_message(body: bytes) -> None:
        nonlocal seen
        event = json.loads(body)
        if not topic_matches(pattern, str(event.get("event", ""))):
            return
        seen += 1
        if as_json:
            click.echo(json.dumps(event))
        else:
            fields = " ".join(
                f"{k}={json.dumps(v)}"
                for k, v in event.items()
                if k not in {"event", "at", "job_id", "traceback", "job"}
            )
            click.echo(
                f"{event.get('at', '')}  {event.get('event', ''):<18} "
                f"{event.get('job_id', '-')}  {fields}".rstrip()
            )

    transport = _connected(settings.broker_url)
    try:
        queue = transport.private_queue(
            f"{names.events}_watch_{uuid.uuid4().hex[:8]}", names.events, pattern
        )
        transport.consume(queue, 100)
        click.echo(f"watching {names.events} for {pattern} (Ctrl-C to stop)", err=True)
        while not stop and (count is None or seen < count):
            deliveries = transport.receive(0.5, 100)
            transport.ack(deliveries)
            for delivery in deliveries:
                on_message(delivery.body)
    finally:
        transport.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _connected(url: str | None) -> Transport:
    transport = transport_for(url)
    try:
        transport.connect()
    except BrokerUnavailable as exc:
        click.echo(f"error: {exc.message}", err=True)
        raise SystemExit(EX_UNAVAILABLE) from None
    return transport


@click.group()
def dlq() -> None:
    """Dead-lettered commands: list them, replay them."""


flows_option = click.option(
    "--flows",
    "flow_runs",
    is_flag=True,
    help="Flow runs the flow relay could not send (<flows>_dead) instead of commands.",
)


@dlq.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@flows_option
@broker_option
@click.pass_context
def dlq_list(
    ctx: click.Context, limit: int, as_json: bool, flow_runs: bool, broker_url: str | None
) -> None:
    """Show dead letters without removing them."""
    settings = settings_from(ctx, broker_url=broker_url)
    names = settings.names()
    transport = _connected(settings.broker_url)
    try:
        messages = peek(transport, names.flows_dead if flow_runs else names.dead, limit)
        rows = [describe(m) for m in messages]
    finally:
        transport.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(
            table(rows, ["dead_at", "reason", "by", "error", "body"]) if rows else "no dead letters"
        )


@dlq.command("replay")
@click.option(
    "--limit",
    type=click.IntRange(1, 10000),
    default=1,
    show_default=True,
    help="How many dead letters to send back.",
)
@flows_option
@broker_option
@click.pass_context
def replay(ctx: click.Context, limit: int, flow_runs: bool, broker_url: str | None) -> None:
    """Send dead letters back as they were (after fixing what made them fail): commands to the commands
    queue; with --flows, flow runs to the flow relay's queue (not the exchange: other readers had them)."""
    settings = settings_from(ctx, broker_url=broker_url)
    names = settings.names()
    transport = _connected(settings.broker_url)
    try:
        source, target = names.dead, names.commands
        if flow_runs:
            source = names.flows_dead
            target = transport.subscribe(names.flows, names.flows_relay)
        transport.declare_queue(target)
        replayed = 0
        for message in take(transport, source, limit):
            transport.send([_replayed(message, target)])
            transport.ack([message])
            replayed += 1
    finally:
        transport.close()
    click.echo(f"replayed {replayed} dead letter(s) to {target}")


def _replayed(message: Delivery, queue: str) -> Outgoing:
    """A dead letter as it was sent: the body, its headers without the worker's, its properties."""
    headers = dict(message.headers)
    original = headers.pop("x-f8a-original-properties", {}) or {}
    for key in (
        "x-f8a-reason",
        "x-f8a-error",
        "x-f8a-dead-at",
        "x-f8a-raw-properties",
        "x-f8a-principal",
    ):
        headers.pop(key, None)
    text = {k: v for k, v in original.items() if isinstance(v, str) and v}
    return Outgoing(
        message.body,
        queue=queue,
        headers=headers,
        reply_to=text.get("reply_to"),
        correlation_id=text.get("correlation_id"),
        message_id=text.get("message_id"),
        content_type=message.properties.get("content_type") or "application/json",
        content_encoding=message.properties.get("content_encoding") or "utf-8",
    )
