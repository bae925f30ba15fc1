"""The unit of work: one database transaction, and what is to happen once it has committed.

Everything a command or a scheduler pass changes is written on :attr:`UnitOfWork.connection`: job rows, run
records, the events it causes and a command's stored reply (into the outbox, in the same transaction). Work
with an effect outside the database (waking the scheduler, starting a run, pausing the in-memory scheduler) is
registered with :meth:`UnitOfWork.after_commit` and happens only once the commit succeeded, so a transaction
that is rolled back, or re-applied, never has an effect twice. The object is handed to whatever takes part,
explicitly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from f8a_jobs_worker.access.principal import Principal
from f8a_jobs_worker.clock import SYSTEM, Clock
from f8a_jobs_worker.events.model import Event
from f8a_jobs_worker.persistence.bulk import insert_rows
from f8a_jobs_worker.persistence.database import store_errors
from f8a_jobs_worker.persistence.outbox import Outbox, event_row, reply_row

log = logging.getLogger(__name__)

Callback = Callable[[], Any]


class UnitOfWork:
    """A transaction's connection, its clock, the outbox rows it will write, and its after-commit work."""

    def __init__(
        self, connection: sa.Connection, outbox: Outbox, clock: Clock = SYSTEM, writes: bool = True
    ) -> None:
        self.connection = connection
        self.outbox = outbox
        self.clock = clock
        #: False for read-only work: nothing may be queued for sending
        self.writes = writes
        #: whose command is being applied (the events it causes say ``by``); None: the worker's own work
        self.actor: Principal | None = None
        self._rows: list[dict[str, Any]] = []
        self._inserts: dict[sa.Table, list[dict[str, Any]]] = {}
        self._after_commit: list[Callback] = []
        self._after_rollback: list[Callback] = []
        self._done_once: list[str] = []

    def now(self) -> datetime:
        """The time by the worker's clock (UTC)."""
        return self.clock.now()

    def emit(self, event: Event) -> None:
        """Queue an event: written to the outbox with this transaction."""
        self._require_writes()
        if self.actor is not None and "by" not in event.fields:
            event = replace(event, fields={**event.fields, "by": self.actor.to_dict()})
        self._rows.append(event_row(event, self.now()))

    def store_reply(
        self,
        command_id: str,
        command: str,
        body: str,
        reply_to: str | None,
        correlation_id: str | None,
    ) -> None:
        """Store a command's reply (its idempotency record) and queue it for ``reply_to``."""
        self._require_writes()
        self._rows.append(
            reply_row(command_id, command, body, reply_to, correlation_id, self.now())
        )

    def insert_later(self, table: sa.Table, row: dict[str, Any]) -> None:
        """Insert ``row`` with the other rows for the same ``table`` (one statement for all) just before
        the commit: a scheduler pass enters a hundred runs in the ledger with one statement, not a hundred.
        Only for rows nothing in the transaction reads back."""
        self._inserts.setdefault(table, []).append(row)

    def first_time(self, what: str) -> bool:
        """True the first time ``what`` is asked about in this transaction (a savepoint rolled back
        forgets what it did): work needed once per commit, however many commands of a batch need it."""
        if what in self._done_once:
            return False
        self._done_once.append(what)
        return True

    def after_commit(self, callback: Callback) -> None:
        self._after_commit.append(callback)

    def after_rollback(self, callback: Callback) -> None:
        self._after_rollback.append(callback)

    @contextmanager
    def savepoint(self, enabled: bool = True) -> Iterator[None]:
        """Part of the transaction that can fail alone: its writes, queued rows and after-commit work are
        undone (and its after-rollback work done) if it raises, the rest of the transaction is not."""
        if not enabled:
            yield
            return
        marks = (
            len(self._rows),
            len(self._after_commit),
            len(self._after_rollback),
            len(self._done_once),
        )
        inserted = {table: len(rows) for table, rows in self._inserts.items()}
        try:
            with self.connection.begin_nested():
                yield
        except BaseException:
            for table, rows in self._inserts.items():
                del rows[inserted.get(table, 0) :]
            undone = self._after_rollback[marks[2] :]
            del (
                self._rows[marks[0] :],
                self._after_commit[marks[1] :],
                self._after_rollback[marks[2] :],
                self._done_once[marks[3] :],
            )
            _run_all(undone, "after-rollback")
            raise

    def flush(self) -> bool:
        """Write the queued rows (one statement per table); called before the commit. Whether any outbox
        rows were written."""
        inserts, self._inserts = self._inserts, {}
        for table, rows in inserts.items():
            insert_rows(self.connection, table, rows)
        rows, self._rows = self._rows, []
        self.outbox.add(self.connection, rows)
        return bool(rows)

    def _require_writes(self) -> None:
        if not self.writes:
            raise RuntimeError("read-only work cannot queue messages")


class Transactions:
    """Where units of work come from: ``with transactions.begin() as uow: ...``."""

    def __init__(
        self,
        engine: sa.Engine,
        outbox: Outbox | None = None,
        clock: Clock = SYSTEM,
        wrote_outbox: Callback = lambda: None,
    ) -> None:
        """``wrote_outbox`` is called after each commit that wrote outbox rows (the relay's doorbell)."""
        self.engine = engine
        self.outbox = outbox or Outbox()
        self.clock = clock
        self.wrote_outbox = wrote_outbox

    @contextmanager
    def begin(self, writes: bool = True) -> Iterator[UnitOfWork]:
        """A unit of work: committed when the block ends (the outbox rows with it), then its after-commit
        work is done; rolled back if the block raises. A store that does not answer is
        :class:`~f8a_jobs_worker.errors.Unavailable`. Read-only work runs without a transaction: under READ
        COMMITTED each statement reads its own snapshot either way, and a read saves BEGIN's and COMMIT's
        round trips."""
        uow: UnitOfWork | None = None
        try:
            with store_errors("job store"), self._connection(writes) as connection:
                uow = UnitOfWork(connection, self.outbox, self.clock, writes)
                yield uow
                wrote = uow.flush()
        except BaseException:
            if uow is not None:
                _run_all(uow._after_rollback, "after-rollback")
            raise
        if wrote:
            self.wrote_outbox()
        _run_all(uow._after_commit, "after-commit")

    @contextmanager
    def _connection(self, writes: bool) -> Iterator[sa.Connection]:
        if writes:
            with self.engine.begin() as connection:
                yield connection
            return
        with self.engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")


def _run_all(callbacks: list[Callback], what: str) -> None:
    """Run each callback; one that fails is logged and does not keep the others from running."""
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("%s work failed", what)
