"""What the worker's RabbitMQ adapter costs per message in its own process: CPU time (this process's) and
rate of a confirmed send in a window of confirms (as a fan-out sends), then of receiving and acknowledging
them in batches of the default prefetch (as the command consumer does). No worker, no database: the cost of
py-amqp and of the adapter's own framing, for a change to either to be measured on its own.

    python -m bench.amqpcost                 # 50,000 messages
    python -m bench.amqpcost --count 200000

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from kombu import Connection

from bench.harness import RABBITMQ_URL, unique_prefix
from f8a_jobs_worker.messaging.port import Outgoing
from f8a_jobs_worker.messaging.rabbitmq import RabbitMQ

#: a flow run's body, as the fan-out sends it
BODY = json.dumps(
    {
        "flow_name": "bayesianFlow",
        "node_args": {"ecosystem": "npm", "name": "left-pad", "version": "1.3.0"},
    }
).encode()
WINDOW = 5000  # flows/fanout.py's
PREFETCH = 50


def measure(count: int) -> dict[str, Any]:
    queue = f"{unique_prefix()}_amqpcost"
    sender, receiver = RabbitMQ(RABBITMQ_URL), RabbitMQ(RABBITMQ_URL)
    try:
        sender.connect()
        sender.declare_queue(queue)
        messages = [
            Outgoing(BODY, queue=queue, message_id=f"m{n}", correlation_id=f"c{n}")
            for n in range(count)
        ]
        cpu, wall = time.process_time(), time.perf_counter()
        sent = sender.send(iter(messages), window=WINDOW)
        send_cpu, send_wall = time.process_time() - cpu, time.perf_counter() - wall
        assert sent == count
        receiver.connect()
        receiver.consume(queue, PREFETCH)
        received = 0
        cpu, wall = time.process_time(), time.perf_counter()
        while received < count:
            batch = receiver.receive(1.0, PREFETCH)
            receiver.ack(batch)
            received += len(batch)
        receive_cpu, receive_wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        sender.close()
        receiver.close()
        with Connection(RABBITMQ_URL) as connection:
            connection.default_channel.queue_delete(queue)
    return {
        "messages": count,
        "send, confirmed in a window: CPU us per message": 1e6 * send_cpu / count,
        "send, confirmed in a window: messages/s": count / send_wall,
        "receive and ack: CPU us per message": 1e6 * receive_cpu / count,
        "receive and ack: messages/s": count / receive_wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.amqpcost", description=__doc__)
    parser.add_argument("--count", type=int, default=50_000)
    print(json.dumps(measure(parser.parse_args().count), indent=1))


if __name__ == "__main__":
    main()
