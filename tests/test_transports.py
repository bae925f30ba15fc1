"""The transport port: one contract, kept by each adapter (RabbitMQ, SQS through moto's server, the embedded
broker, and the in-memory one the unit tests use); what only RabbitMQ's adapter does (confirmed, corked
batches; properties py-amqp cannot decode); and the shape around it: nothing outside messaging/ imports
kombu or py-amqp, or asks which broker it is."""

from __future__ import annotations

import json
import re
import socket
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import amqp
import pytest

from f8a_jobs_worker.errors import BrokerUnavailable
from f8a_jobs_worker.messaging.connect import transport_for
from f8a_jobs_worker.messaging.memory import broker_named
from f8a_jobs_worker.messaging.port import Delivery, Outgoing, Transport
from f8a_jobs_worker.messaging.rabbitmq import RabbitMQ
from tests.hostile import frame_properties

PACKAGE = Path(__file__).resolve().parent.parent / "f8a_jobs_worker"
MESSAGING = PACKAGE / "messaging"


@pytest.fixture(params=["rabbitmq", "sqs", "embedded", "memory"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "rabbitmq":
        return str(request.getfixturevalue("rabbitmq_url"))
    if request.param == "sqs":
        return str(request.getfixturevalue("sqs_url"))
    if request.param == "embedded":
        return f"filesystem://{tmp_path / 'broker'}"
    return f"memory://{uuid.uuid4().hex}"


@pytest.fixture
def transport(url: str) -> Iterator[Transport]:
    made = transport_for(url)
    made.connect()
    yield made
    made.close()


def queue_name() -> str:
    return f"port_{uuid.uuid4().hex[:10]}"


def take(transport: Transport, count: int, timeout: float = 10.0) -> list[Delivery]:
    taken: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(taken) < count and time.monotonic() < deadline:
        taken += transport.receive(1.0, count - len(taken))
    return taken


def test_messages_arrive_in_order_byte_for_byte_with_their_properties(
    transport: Transport,
) -> None:
    queue = queue_name()
    transport.declare_queue(queue)
    bodies = [json.dumps({"n": n}).encode() for n in range(5)] + [b"\xff\x00 not text"]
    sent = transport.send(
        Outgoing(
            body,
            queue=queue,
            correlation_id=f"c{n}",
            reply_to="replies",
            message_id=f"m{n}",
            headers={"x-n": n} if n % 2 else {},
        )
        for n, body in enumerate(bodies)
    )
    assert sent == len(bodies)
    transport.consume(queue, 10)
    got = take(transport, len(bodies))
    transport.ack(got)
    assert [d.body for d in got] == bodies
    assert [d.text("correlation_id") for d in got] == [f"c{n}" for n in range(len(bodies))]
    assert {d.text("reply_to") for d in got} == {"replies"}
    assert [d.headers.get("x-n") for d in got] == [None, 1, None, 3, None, 5]
    assert all(d.problem is None for d in got)
    assert transport.get(queue) is None


def test_what_is_given_back_or_left_unacknowledged_comes_back(
    url: str, transport: Transport
) -> None:
    queue = queue_name()
    transport.declare_queue(queue)
    transport.send([Outgoing(b"one", queue=queue), Outgoing(b"two", queue=queue)])
    transport.consume(queue, 10)
    first = take(transport, 2)
    transport.requeue(first[:1])
    again = take(transport, 1)
    assert [d.body for d in again] == [b"one"]
    transport.ack(again)
    transport.close()  # "two" unacknowledged: back to the queue for the next reader
    other = transport_for(url)
    other.connect()
    try:
        other.consume(queue, 10)
        assert [d.body for d in take(other, 1)] == [b"two"]
    finally:
        other.close()


def test_a_receive_from_an_empty_queue_returns_and_takes_no_more_than_asked(
    transport: Transport,
) -> None:
    queue = queue_name()
    transport.declare_queue(queue)
    transport.consume(queue, 10)
    assert transport.receive(transport.facts.receive_wait, 5) == []
    transport.send(Outgoing(b"%d" % n, queue=queue) for n in range(3))
    got = take(transport, 3)
    assert len(got) == 3 and all(len(transport.receive(0.2, 1)) == 0 for _ in range(1))


def test_a_topic_reaches_its_readers(transport: Transport) -> None:
    """Every reader's own queue on a broker that routes (RabbitMQ, memory); the topic's one queue on the
    others: either way a reader of the topic gets what is sent to it, by routing key where there is one."""
    topic = queue_name()
    queue = transport.private_queue(f"{topic}_reader", topic, "job.*")
    transport.send(
        [
            Outgoing(b'{"event": "job.x"}', topic=topic, routing_key="job.x"),
            Outgoing(b'{"event": "job.y"}', topic=topic, routing_key="job.y"),
        ]
    )
    found = [transport.get(queue, wait=3.0) for _ in range(2)]
    assert sorted(d.body for d in found if d) == [b'{"event": "job.x"}', b'{"event": "job.y"}']
    transport.ack([d for d in found if d])
    transport.release(queue)


def test_a_topic_nobody_declared_yet_takes_what_is_sent(transport: Transport) -> None:
    """The sender declares what it sends to (a batch that meets a new topic half way included)."""
    queue = queue_name()
    transport.declare_queue(queue)
    messages = [
        Outgoing(b"1", queue=queue),
        Outgoing(b'{"event": "job.x"}', topic=queue_name(), routing_key="job.x"),
        Outgoing(b"2", queue=queue),
    ]
    assert transport.send(messages) == 3
    transport.consume(queue, 10)
    got = take(transport, 2)
    transport.ack(got)
    assert [d.body for d in got] == [b"1", b"2"]


def test_each_adapter_says_what_callers_must_know(url: str, transport: Transport) -> None:
    facts = transport.facts
    assert facts.max_hold > 0
    assert facts.batches is url.startswith(("amqp", "memory"))
    assert transport.reply_to_problem("replies_1") is None
    long_name = "r" * 300
    assert transport.reply_to_problem(long_name) is not None or url.startswith("memory")


def test_a_broker_that_does_not_answer_is_broker_unavailable(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(BrokerUnavailable):
        transport_for(f"amqp://guest:guest@127.0.0.1:{port}//").connect()
    memory = f"memory://{uuid.uuid4().hex}"
    down = transport_for(memory)
    down.connect()
    broker_named(memory.removeprefix("memory://")).down = True
    with pytest.raises(BrokerUnavailable) as caught:
        down.send([Outgoing(b"x", queue="q")])
    assert caught.value.sent == 0


# -- RabbitMQ's adapter ------------------------------------------------------------------------------------


def test_a_batch_is_one_socket_write_confirmed_once(rabbitmq_url: str) -> None:
    transport = RabbitMQ(rabbitmq_url, heartbeat=0)
    transport.connect()
    queue = queue_name()
    try:
        transport.declare_queue(queue)
        transport.send([Outgoing(b'{"n": -1}', queue=queue)])  # (opens the confirm-mode channel)
        cork = transport._cork  # what py-amqp writes to (the test counts the socket writes)
        writes: list[int] = []
        write = cork.transport.write
        cork.transport.write = lambda data: (writes.append(len(data)), write(data))
        transport.send(Outgoing(json.dumps({"n": n}).encode(), queue=queue) for n in range(100))
        assert len(writes) == 1  # then the acks were read: confirmed
        transport.consume(queue, 200)
        got = take(transport, 101)
        writes.clear()
        transport.ack(got)
        assert [json.loads(d.body)["n"] for d in got] == list(range(-1, 100))
        assert len(writes) == 1  # a hundred and one acks, one write
    finally:
        transport.close()


def test_a_stream_goes_out_in_a_window_and_is_all_confirmed(rabbitmq_url: str) -> None:
    transport = RabbitMQ(rabbitmq_url, heartbeat=0)
    transport.connect()
    queue = queue_name()
    try:
        transport.declare_queue(queue)
        sent = transport.send((Outgoing(b"%d" % n, queue=queue) for n in range(3000)), window=100)
        assert sent == 3000
        transport.consume(queue, 3000)
        got = take(transport, 3000, timeout=30)
        transport.ack(got)
        assert [int(d.body) for d in got] == list(range(3000))
    finally:
        transport.close()


def test_properties_py_amqp_cannot_decode_are_kept_raw_with_the_reason(rabbitmq_url: str) -> None:
    """Published with py-amqp itself, content headers no decoder of py-amqp takes: each arrives, its body
    as sent, what could be decoded decoded, what could not kept raw (a property that is not UTF-8 among
    good ones: the good ones kept; a correlation id that is not UTF-8: its bytes)."""
    transport = RabbitMQ(rabbitmq_url, heartbeat=0)
    transport.connect()
    queue = queue_name()
    transport.declare_queue(queue)
    raw = amqp.Connection("127.0.0.1:5672", userid="guest", password="guest")
    raw.connect()
    try:
        channel = raw.channel()
        cases = frame_properties("a-reply-queue")
        for name, properties in cases.items():
            message = amqp.Message(name.encode())
            message._serialize_properties = lambda properties=properties: properties
            channel.basic_publish(message, exchange="", routing_key=queue)
        transport.consume(queue, 50)
        got = {d.body.decode(): d for d in take(transport, len(cases))}
        transport.ack(got.values())
    finally:
        raw.close()
        transport.close()
    assert set(got) == set(cases)
    for name in ("content_type_not_utf8", "reply_to_not_utf8", "header_nested_3000_deep"):
        assert got[name].problem and got[name].raw_properties == cases[name], name
    assert "header_timestamp_beyond_9999" in got and got["header_timestamp_beyond_9999"].problem
    assert got["header_bytes"].problem is None
    assert got["header_bytes"].headers == {"blob": b"\x00\x01\xff"}
    timestamp = got["property_timestamp_beyond_9999"]
    assert timestamp.problem is None
    assert timestamp.properties == {"reply_to": "a-reply-queue", "timestamp": 2**64 - 1}
    correlation = got["property_correlation_id_not_utf8"]
    assert correlation.raw_correlation_id == b"frame-\xff\xfe"
    assert correlation.text("reply_to") == "a-reply-queue"
    assert correlation.problem and "correlation_id is not UTF-8" in correlation.problem


def test_a_header_frame_cut_short_is_a_problem_not_a_failure() -> None:
    from f8a_jobs_worker.messaging.amqp_frames import read_properties

    cut = struct.pack(">H", 0x0200) + bytes([40]) + b"short"
    found = read_properties(cut, 0)
    assert found.problem and "malformed" in found.problem and found.raw == cut


# -- the shape around the port -----------------------------------------------------------------------------


def _sources() -> Iterator[tuple[Path, str]]:
    for path in PACKAGE.rglob("*.py"):
        yield path, path.read_text()


def test_nothing_outside_messaging_imports_kombu_or_py_amqp() -> None:
    importing = re.compile(r"^\s*(from|import)\s+(kombu|amqp)\b", re.MULTILINE)
    found = [
        str(path.relative_to(PACKAGE))
        for path, text in _sources()
        if MESSAGING not in path.parents and importing.search(text)
    ]
    assert not found, found


def test_no_branch_on_the_broker_outside_the_adapters() -> None:
    asked = re.compile(
        r"startswith\(\"(amqp|sqs|filesystem)|scheme ==|isinstance\([^)]*(RabbitMQ|SQS|Embedded)"
    )
    found = [
        f"{path.relative_to(PACKAGE)}:{n}"
        for path, text in _sources()
        if MESSAGING not in path.parents
        for n, line in enumerate(text.splitlines(), 1)
        if asked.search(line)
    ]
    assert not found, found
