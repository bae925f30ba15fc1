"""The embedded store (SQLite) serves one worker: a lock file beside the database makes sure of it.

Two workers on one SQLite file would both fire every due job (SQLite has no row locks to share the work with),
so the second refuses to start. The lock is the operating system's (``filelock``): it goes with the process,
so a worker killed with ``kill -9`` does not keep the next one from starting.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from filelock import FileLock, Timeout

from f8a_jobs_worker.errors import StoreInUse


class SingleWorkerLock:
    def __init__(self, database: Path) -> None:
        self.database = database
        self._lock = FileLock(str(database) + ".lock", timeout=0)

    @classmethod
    def for_engine(cls, engine: sa.Engine) -> SingleWorkerLock | None:
        """The lock of a file-backed SQLite store; None for PostgreSQL (replicas share it) or an in-memory
        database (no other process can reach it)."""
        database = engine.url.database
        if engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return None
        return cls(Path(database).resolve())

    def acquire(self) -> None:
        try:
            self._lock.acquire()
        except Timeout:
            raise StoreInUse(
                f"another worker is already running on the SQLite store {self.database}; SQLite serves "
                "one worker (stop the other one, or use PostgreSQL to run several replicas)"
            ) from None

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()
