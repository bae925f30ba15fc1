"""Which adapter of the transport port serves a broker URL (and whether a URL can work at all).

- ``amqp://`` (RabbitMQ; ``amqps://`` over TLS): topic exchanges, message properties, publisher confirms.
- ``sqs://key:secret@host:port`` (Amazon SQS, or an emulator on its host and port): queues only.
- ``filesystem:///path`` (the embedded default): a folder of message files the processes of one machine
  share; queues only. With no broker URL the worker uses ``./f8a-jobs-broker``.
- ``memory://name``: in one process, for unit tests.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from f8a_jobs_worker.messaging.port import Transport

EMBEDDED_DIR = "f8a-jobs-broker"

#: URL scheme -> (module of this package, its adapter class); imported when first used, so that a worker on
#: RabbitMQ never loads boto3
ADAPTERS = {
    "amqp": ("rabbitmq", "RabbitMQ"),
    "amqps": ("rabbitmq", "RabbitMQ"),
    "pyamqp": ("rabbitmq", "RabbitMQ"),
    "sqs": ("sqs", "SQS"),
    "filesystem": ("embedded", "Embedded"),
    "memory": ("memory", "MemoryTransport"),
}


def adapter(scheme: str) -> type[Transport]:
    """The adapter class for a URL scheme (ValueError for one no adapter serves)."""
    found = ADAPTERS.get(scheme)
    if found is None:
        raise ValueError(
            f"unsupported broker scheme {scheme!r}; expected one of amqp://, amqps://, sqs://, "
            "filesystem://"
        )
    module = importlib.import_module(f"f8a_jobs_worker.messaging.{found[0]}")
    cls: type[Transport] = getattr(module, found[1])
    return cls


def transport_for(url: str | None, heartbeat: int = 30) -> Transport:
    """A transport (not connected yet) for ``url``; None is the embedded broker in ``./f8a-jobs-broker``."""
    url = url or embedded_url()
    return adapter(urlsplit(url).scheme)(url, heartbeat)


def embedded_url(directory: str = EMBEDDED_DIR) -> str:
    from pathlib import Path

    return f"filesystem://{Path(directory).resolve()}"


def check_broker_url(url: str) -> None:
    """ValueError (with no password in it) for a broker URL that cannot work: an unknown scheme, an
    unparseable port, or an adapter whose library is missing. An unreachable broker is not checked."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parses the port; raises ValueError for a bad one)
    except ValueError as exc:
        raise ValueError(f"cannot parse the URL: {exc}") from None
    try:
        adapter(parts.scheme)
    except ImportError as exc:
        raise ValueError(f"the {parts.scheme}:// transport cannot be loaded: {exc}") from None
