"""Connections to the three kinds of broker the worker speaks to through kombu.

- ``amqp://`` (RabbitMQ): exchanges, message properties, publisher confirms.
- ``sqs://key:secret@host:port`` (Amazon SQS or an emulator): queues only, no message properties. kombu builds
  the endpoint from the URL's host and port, so an emulator on 127.0.0.1 needs nothing more.
- ``filesystem:///path`` (the embedded default): a directory of message files that any process on the machine
  can share; queues only. With no broker URL the worker uses ``./f8a-jobs-broker``.

"Queues only" transports route by queue name: events and flow runs go to the queue named like the exchange.
Each broker's differences live in its adapter module (``amqp.py``, ``sqs.py``, ``embedded.py``): its kombu
transport, how a URL becomes a connection, how long a delivery may be held, which reply addresses it takes,
its :class:`~f8a_jobs_worker.messaging.topology.Topology` and, where kombu would wrap JSON documents in an
envelope of its own, its ``plain_sender``. Callers ask :func:`topology` rather than which broker this is.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

from kombu import Connection

from f8a_jobs_worker.messaging.topology import Topology

EMBEDDED_DIR = "f8a-jobs-broker"

#: URL scheme -> the module of this package with that broker's kombu transport; imported when first used, so
#: that a worker on RabbitMQ never loads boto3
ADAPTERS = {
    "amqp": "amqp",
    "amqps": "amqp",
    "pyamqp": "amqp",
    "sqs": "sqs",
    "filesystem": "embedded",
}


def embedded_url(directory: Path | str = EMBEDDED_DIR) -> str:
    return f"filesystem://{Path(directory).resolve()}"


def adapter(scheme: str) -> ModuleType:
    """The adapter module for a URL scheme (ValueError for one no adapter serves)."""
    name = ADAPTERS.get(scheme)
    if name is None:
        raise ValueError(
            f"unsupported broker scheme {scheme!r}; expected one of amqp://, amqps://, sqs://, "
            "filesystem://"
        )
    return importlib.import_module(f"f8a_jobs_worker.messaging.{name}")


def check_broker_url(url: str) -> None:
    """ValueError (with no password in it) for a broker URL that cannot work: an unknown scheme, an
    unparseable port, or a transport whose library is missing. An unreachable broker is not checked."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parses the port; raises ValueError for a bad one)
    except ValueError as exc:
        raise ValueError(f"cannot parse the URL: {exc}") from None
    try:
        adapter(parts.scheme)
    except ImportError as exc:
        raise ValueError(f"the {parts.scheme}:// transport cannot be loaded: {exc}") from None


def connection(url: str | None, heartbeat: int = 30) -> Connection:
    """A (lazy) kombu connection for ``url``; None is the embedded transport in ``./f8a-jobs-broker``."""
    url = url or embedded_url(EMBEDDED_DIR)
    made: Connection = adapter(urlsplit(url).scheme).connect(url, heartbeat)
    return made


def topology(conn: Connection) -> Topology:
    """Where messages go on ``conn``'s broker (its adapter's answer)."""
    found: Topology = conn.transport.topology
    return found
