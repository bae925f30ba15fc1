"""The transport port: each adapter names its topology; nothing outside the adapters asks which broker it is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from f8a_jobs_worker.messaging import broker
from f8a_jobs_worker.messaging.topology import ExchangeTopology, QueueTopology

PACKAGE = Path(__file__).resolve().parent.parent / "f8a_jobs_worker"
ADAPTERS = {"amqp.py", "sqs.py", "embedded.py"}


@pytest.mark.parametrize(
    ("url", "kind", "plain"),
    [
        ("amqp://guest:guest@127.0.0.1:5672//", ExchangeTopology, False),
        ("amqps://guest:guest@127.0.0.1:5671//", ExchangeTopology, False),
        ("sqs://key:secret@127.0.0.1:4566", QueueTopology, True),
        ("filesystem:///tmp/f8a-broker-test", QueueTopology, False),
    ],
)
def test_each_adapter_names_its_topology(url: str, kind: type, plain: bool) -> None:
    conn = broker.connection(url)
    try:
        assert isinstance(broker.topology(conn), kind)
        assert (getattr(conn.transport, "plain_sender", None) is not None) is plain
        assert conn.transport.max_hold > 0
    finally:
        conn.release()


def test_no_branch_on_the_transport_outside_the_adapters() -> None:
    asked = re.compile(
        r"driver_type|driver_name|queue_only|transport ==|isinstance\([^)]*Transport"
    )
    found = [
        f"{path.relative_to(PACKAGE)}:{n}"
        for path in PACKAGE.rglob("*.py")
        if path.name not in ADAPTERS
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if asked.search(line)
    ]
    assert not found, found
