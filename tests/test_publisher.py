"""The publisher on RabbitMQ: events from many threads share their confirm waits, each call returns once its
own message is confirmed, and a dropped connection is re-established under the retry policy."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from kombu import Connection, Exchange, Queue

from f8a_jobs_worker.messaging import broker
from f8a_jobs_worker.messaging.publisher import Publisher
from tests.messaging import read_queue


@pytest.fixture
def bound(rabbitmq_url: str) -> Iterator[tuple[str, str]]:
    """An exchange and a queue bound to it, both of the test's own, deleted afterwards."""
    exchange, queue = f"pub_events_{uuid.uuid4().hex[:8]}", f"pub_{uuid.uuid4().hex[:8]}"
    with Connection(rabbitmq_url) as conn:
        Queue(queue, Exchange(exchange, type="topic", durable=True), routing_key="#")(
            conn.channel()
        ).declare()
    yield exchange, queue
    with Connection(rabbitmq_url) as conn:
        channel = conn.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(exchange)


def test_events_from_many_threads_each_arrive_once(
    rabbitmq_url: str, bound: tuple[str, str]
) -> None:
    exchange, queue = bound
    publisher = Publisher(broker.connection(rabbitmq_url, heartbeat=0))
    returned: list[int] = []

    def publish(thread: int) -> None:
        for n in range(50):
            publisher.to_topic(exchange, "job.executed", {"thread": thread, "n": n})
            returned.append(1)

    threads = [threading.Thread(target=publish, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    publisher.close()
    assert len(returned) == 400
    bodies = [json.loads(m.body) for m in read_queue(rabbitmq_url, queue, 400)]
    assert Counter((b["thread"], b["n"]) for b in bodies) == {
        (t, n): 1 for t in range(8) for n in range(50)
    }


def test_a_dropped_connection_is_reopened_and_the_event_published(
    rabbitmq_url: str, bound: tuple[str, str]
) -> None:
    exchange, queue = bound
    publisher = Publisher(broker.connection(rabbitmq_url, heartbeat=0))
    publisher.to_topic(exchange, "job.created", {"n": 1})
    publisher.conn.connection.sock.shutdown(socket.SHUT_RDWR)  # the network drops under it
    publisher.to_topic(exchange, "job.created", {"n": 2})
    publisher.close()
    bodies = [json.loads(m.body) for m in read_queue(rabbitmq_url, queue, 2)]
    assert [b["n"] for b in bodies] == [1, 2]


def test_events_handed_over_together_arrive_in_order(
    rabbitmq_url: str, bound: tuple[str, str]
) -> None:
    """A batch of commands hands its events over in one call: one confirm wait, the order kept."""
    from f8a_jobs_worker.events import Event
    from f8a_jobs_worker.events.broker import BrokerEventSink

    exchange, queue = bound
    publisher = Publisher(broker.connection(rabbitmq_url, heartbeat=0))
    BrokerEventSink(publisher, exchange).emit_many(
        [Event("job.created", f"j{n}", {"n": n}, datetime.now(UTC)) for n in range(30)]
    )
    publisher.close()
    bodies = [json.loads(m.body) for m in read_queue(rabbitmq_url, queue, 30)]
    assert [b["job_id"] for b in bodies] == [f"j{n}" for n in range(30)]
    assert {b["event"] for b in bodies} == {"job.created"}


def test_a_corked_batch_is_one_socket_write_and_arrives_whole_in_order(
    rabbitmq_url: str, bound: tuple[str, str]
) -> None:
    """The replies of a batch go to the socket at once; every message arrives, confirmed, in order."""
    from f8a_jobs_worker.messaging.confirms import ConfirmedChannel

    exchange, queue = bound
    with broker.connection(rabbitmq_url, heartbeat=0) as conn:
        conn.ensure_connection(max_retries=1)
        confirms = ConfirmedChannel(conn)
        cork = conn.connection.cork
        writes: list[int] = []
        write = cork.transport.write
        cork.transport.write = lambda data: (writes.append(len(data)), write(data))
        with confirms.corked():
            for n in range(100):
                confirms.publish(json.dumps({"n": n}).encode(), exchange, "job.created")
            assert writes == []  # nothing written before the block ends
        assert len(writes) == 1
        confirms.wait()
        assert confirms.confirmed == 100
        confirms.publish(b'{"n": 100}', exchange, "job.created")  # not corked: written at once
        assert len(writes) == 2
        confirms.wait()
    bodies = [json.loads(m.body) for m in read_queue(rabbitmq_url, queue, 101)]
    assert [b["n"] for b in bodies] == list(range(101))


def test_corked_frames_are_written_even_when_the_block_raises(
    rabbitmq_url: str, bound: tuple[str, str]
) -> None:
    """Frames already made are whole: they go out (and were counted as published) whatever follows."""
    from f8a_jobs_worker.messaging.confirms import ConfirmedChannel

    exchange, queue = bound
    with broker.connection(rabbitmq_url, heartbeat=0) as conn:
        confirms = ConfirmedChannel(conn)
        with pytest.raises(RuntimeError), confirms.corked():
            confirms.publish(b'{"n": 0}', exchange, "job.created")
            raise RuntimeError("a bug between two publishes")
        confirms.wait()
        assert confirms.confirmed == 1
    assert [json.loads(m.body)["n"] for m in read_queue(rabbitmq_url, queue, 1)] == [0]
