"""Finding the real services the tests use: environment variable, then the local port, then testcontainers.

A service that cannot be found fails the tests that need it; nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
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


def postgres_url() -> str:
    """An admin URL of a PostgreSQL server the tests may create schemas in."""
    url = os.environ.get("F8A_TEST_DATABASE_URL")
    if url:
        return url
    if port_open("127.0.0.1", 5432):
        return "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    if docker_available():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:15-alpine", driver="psycopg2")
        container.start()
        _containers.append(container)
        return str(container.get_connection_url())
    raise RuntimeError(
        "no PostgreSQL for the tests: set F8A_TEST_DATABASE_URL, start one on 127.0.0.1:5432 "
        "(scripts/services start), or make a Docker engine available for testcontainers"
    )


def stop_containers() -> None:
    while _containers:
        _containers.pop().stop()


def rabbitmq_url() -> str:
    """A RabbitMQ URL: F8A_TEST_BROKER_URL, else 127.0.0.1:5672, else testcontainers."""
    url = os.environ.get("F8A_TEST_BROKER_URL")
    if url:
        return url
    if port_open("127.0.0.1", 5672):
        return "amqp://guest:guest@127.0.0.1:5672//"
    if docker_available():
        from testcontainers.rabbitmq import RabbitMqContainer

        container = RabbitMqContainer("rabbitmq:3.13-alpine")
        container.start()
        _containers.append(container)
        port = container.get_exposed_port(5672)
        return f"amqp://guest:guest@{container.get_container_host_ip()}:{port}//"
    raise RuntimeError(
        "no RabbitMQ for the tests: set F8A_TEST_BROKER_URL, start one on 127.0.0.1:5672 "
        "(scripts/services start), or make a Docker engine available for testcontainers"
    )


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
