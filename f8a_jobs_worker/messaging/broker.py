"""Connections to the three kinds of broker the worker speaks to through kombu.

- ``amqp://`` (RabbitMQ): exchanges, message properties, publisher confirms.
- ``sqs://key:secret@host:port`` (Amazon SQS or an emulator): queues only, no message properties. kombu builds
  the endpoint from the URL's host and port, so an emulator on 127.0.0.1 needs nothing more.
- ``filesystem:///path`` (the embedded default): a directory of message files that any process on the machine
  can share; queues only. With no broker URL the worker uses ``./f8a-jobs-broker``.

"Queues only" transports route by queue name: events and flow runs go to the queue named like the exchange.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from kombu import Connection
from kombu.utils.url import parse_url

from f8a_jobs_worker.messaging import amqp, embedded, sqs

EMBEDDED_DIR = "f8a-jobs-broker"


def embedded_url(directory: Path | str = EMBEDDED_DIR) -> str:
    return f"filesystem://{Path(directory).resolve()}"


SCHEMES = {
    "amqp": "kombu.transport.pyamqp",
    "amqps": "kombu.transport.pyamqp",
    "pyamqp": "kombu.transport.pyamqp",
    "sqs": "boto3",
    "filesystem": "kombu.transport.filesystem",
}


def check_broker_url(url: str) -> None:
    """ValueError (with no password in it) for a broker URL that cannot work: an unknown scheme, an
    unparseable port, or a transport whose library is missing. An unreachable broker is not checked."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parses the port; raises ValueError for a bad one)
    except ValueError as exc:
        raise ValueError(f"cannot parse the URL: {exc}") from None
    module = SCHEMES.get(parts.scheme)
    if module is None:
        raise ValueError(
            f"unsupported broker scheme {parts.scheme!r}; expected one of amqp://, amqps://, sqs://, "
            "filesystem://"
        )
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"the {parts.scheme}:// transport cannot be loaded: {exc}") from None


def connection(url: str | None, heartbeat: int = 30) -> Connection:
    """A (lazy) kombu connection for ``url``; None is the embedded transport in ``./f8a-jobs-broker``."""
    url = url or embedded_url()
    scheme = urlsplit(url).scheme
    if scheme == "filesystem":
        folder = Path(unquote(urlsplit(url).path) or EMBEDDED_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "polling_interval": 0.05,
        }
        return Connection(
            transport=embedded.Transport, hostname="localhost", transport_options=options
        )
    params = parse_url(url)
    del params["transport"]
    if scheme == "sqs":
        options = {"region": "us-east-1", "wait_time_seconds": 1, "visibility_timeout": 60}
        if params.get("hostname") in {"127.0.0.1", "localhost", "::1"}:
            options["is_secure"] = False
        return Connection(transport=sqs.Transport, transport_options=options, **params)
    transport = amqp.SSLTransport if scheme == "amqps" else amqp.Transport
    params.setdefault("heartbeat", heartbeat)
    return Connection(transport=transport, transport_options={"confirm_publish": True}, **params)


def queue_only(conn: Connection) -> bool:
    """True for transports without exchanges and message properties (SQS, embedded)."""
    return conn.transport.driver_type in {"sqs", "filesystem"}
