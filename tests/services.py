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
