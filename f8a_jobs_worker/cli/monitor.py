"""Watching the worker from a shell: ``events watch`` tails events, ``dlq list|replay`` handles dead letters."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import time
from typing import Any

import click
from kombu import Consumer

from f8a_jobs_worker.cli.output import table
from f8a_jobs_worker.cli.publish import names_of
from f8a_jobs_worker.cli.settings import settings_from
from f8a_jobs_worker.messaging import broker
from f8a_jobs_worker.messaging.publisher import Publisher
from f8a_jobs_worker.messaging.topology import durable_queue

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


def _body(message: Any) -> bytes:
    return message.body if isinstance(message.body, bytes) else str(message.body).encode()


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
    names = names_of(settings)
    seen = 0
    stop = False

    def on_signal(*_: Any) -> None:
        nonlocal stop
        stop = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def on_message(message: Any) -> None:
        nonlocal seen
        message.ack()
        event = json.loads(_body(message))
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

    with broker.connection(settings.broker_url) as conn:
        channel = conn.default_channel
        queue = broker.topology(conn).events_queue(names.events, pattern)
        try:
            with Consumer(channel, queues=[queue], on_message=on_message, accept=None):
                click.echo(f"watching {names.events} for {pattern} (Ctrl-C to stop)", err=True)
                while not stop and (count is None or seen < count):
                    with contextlib.suppress(TimeoutError):
                        conn.drain_events(timeout=0.5)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@click.group()
def dlq() -> None:
    """Dead-lettered commands: list them, replay them."""


def _take(conn: Any, queue_name: str, limit: int) -> list[Any]:
    queue = durable_queue(queue_name)(conn.default_channel)
    queue.declare()
    taken: list[Any] = []
    deadline = time.monotonic() + 3.0
    while len(taken) < limit and time.monotonic() < deadline:
        message = queue.get(no_ack=False)
        if message is None:
            if taken or broker.topology(conn).empty_get_is_final:
                break
            time.sleep(0.2)
            continue
        taken.append(message)
    return taken


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
    names = names_of(settings)
    with broker.connection(settings.broker_url) as conn:
        messages = _take(conn, names.flows_dead if flow_runs else names.dead, limit)
        rows = [
            {
                "reason": (m.headers or {}).get("x-f8a-reason"),
                "error": (m.headers or {}).get("x-f8a-error"),
                "dead_at": time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime((m.headers or {}).get("x-f8a-dead-at", 0))
                ),
                "body": _body(m).decode("utf-8", errors="replace")[:200],
            }
            for m in messages
        ]
        for message in messages:
            message.requeue()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(
            table(rows, ["dead_at", "reason", "error", "body"]) if rows else "no dead letters"
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
    names = names_of(settings)
    with broker.connection(settings.broker_url) as conn:
        publisher = Publisher(conn)
        replayed = 0
        source, target = names.dead, names.commands
        if flow_runs:
            source = names.flows_dead
            target = broker.topology(conn).subscription(names.flows, names.flows_relay).name
        for message in _take(conn, source, limit):
            headers = dict(message.headers or {})
            original = headers.pop("x-f8a-original-properties", {}) or {}
            for key in ("x-f8a-reason", "x-f8a-error", "x-f8a-dead-at"):
                headers.pop(key, None)
            properties = {
                k: v
                for k, v in original.items()
                if k in {"reply_to", "correlation_id", "message_id"}
            }
            publisher.to_queue(
                target,
                _body(message),
                headers=headers,
                content_type=message.content_type or "application/json",
                content_encoding=message.content_encoding or "utf-8",
                **properties,
            )
            message.ack()
            replayed += 1
    click.echo(f"replayed {replayed} dead letter(s) to {target}")
