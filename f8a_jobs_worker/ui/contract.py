"""The dashboard's one connection to the workers: commands through the message contract, as any client sends
them, one at a time (a connection is used by one thread at a time), reconnected after a broker failure."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from f8a_jobs_worker.client import Client
from f8a_jobs_worker.errors import BrokerUnavailable


class Contract:
    def __init__(self, make_client: Callable[[], Client]) -> None:
        self._make = make_client
        self._client: Client | None = None
        self._lock = threading.Lock()

    def call(
        self, command: str, args: dict[str, Any] | None = None, on_behalf_of: str | None = None
    ) -> dict[str, Any]:
        """The command's result (a JobsError for an error reply); ``on_behalf_of``: the person the
        dashboard acts for (its broker user is a trusted forwarder of the workers' policy)."""
        with self._lock:
            if self._client is None:
                self._client = self._make()
            client = self._client
            client.on_behalf_of = on_behalf_of
            try:
                return client.call(command, args or {})
            except BrokerUnavailable:
                self.close()
                raise
            finally:
                client.on_behalf_of = None

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
