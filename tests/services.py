"""Finding the real services the tests use: environment variable, then the local port, then testcontainers.

A service that cannot be found fails the tests that need it; nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from contextlib import closing
from typing import Any

_containers: list[Any] = []


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


def _discover(name: str, env: str, port: int, local_url: str, container: Callable[[], str]) -> str:
    """The order every service is found in: the environment variable, the local port, testcontainers."""
    url = os.environ.get(env)
    if url:
        return url
    if port_open("127.0.0.1", port):
        return local_url
    if docker_available():
        return container()
    raise RuntimeError(
        f"no {name} for the tests: set {env}, start one on 127.0.0.1:{port} "
        "(scripts/services start), or make a Docker engine available for testcontainers"
    )


def _started(container: Any) -> Any:
    container.start()
    _containers.append(container)
    return container


def postgres_url() -> str:
    """An admin URL of a PostgreSQL server the tests may create schemas in."""

    def container() -> str:
        from testcontainers.postgres import PostgresContainer

        started = _started(PostgresContainer("postgres:15-alpine", driver="psycopg"))
        return str(started.get_connection_url())

    return _discover(
        "PostgreSQL",
        "F8A_TEST_DATABASE_URL",
        5432,
        "postgresql://postgres@127.0.0.1:5432/postgres",
        container,
    )


def rabbitmq_url() -> str:
    """A RabbitMQ URL."""

    def container() -> str:
        from testcontainers.rabbitmq import RabbitMqContainer

        started = _started(RabbitMqContainer("rabbitmq:3.13-alpine"))
        host, port = started.get_container_host_ip(), started.get_exposed_port(5672)
        return f"amqp://guest:guest@{host}:{port}//"

    return _discover(
        "RabbitMQ", "F8A_TEST_BROKER_URL", 5672, "amqp://guest:guest@127.0.0.1:5672//", container
    )


def stop_containers() -> None:
    while _containers:
        _containers.pop().stop()


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """moto's SQS emulator as a real HTTP server on 127.0.0.1, in a process of its own."""

    def __init__(self) -> None:
        import sys
        import time

        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("moto's SQS server did not start")
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"sqs://testing:testing@127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
