"""The replicas sharing one job store: who they are and whether they are still there.

Each worker process registers a row in ``f8a_replicas`` at start and renews its ``heartbeat_at`` at least every
:attr:`Replicas.heartbeat_interval` (its heartbeat thread, and every scheduler pass in the pass's own
transaction). A replica whose heartbeat is older than ``lapse`` is gone: any other replica deletes its row and
takes over what it left (its unfinished runs, its unsent outbox rows). Times are the database's clock on
PostgreSQL, so replicas with clocks apart still agree on who lapsed.

The heartbeat is also a fence. A pass that renews it in its transaction has proven, at commit, that nobody took
its runs over; nobody can for ``lapse`` seconds after that transaction began. A replica starts runs only while
its last renewal is younger than ``lapse - FENCE_MARGIN`` (:meth:`Replicas.fresh`), so a replica cut from the
database or paused stops starting runs before the others may report them interrupted.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from f8a_jobs_worker import __version__, zones
from f8a_jobs_worker.persistence.database import as_utc
from f8a_jobs_worker.persistence.tables import outbox, replicas, run_ledger
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork

#: how much earlier than the others may a replica consider itself gone (seconds): slack for a slow statement
FENCE_MARGIN = 1.5


def _owners_of_unsent_rows() -> sa.CTE:
    """The replicas that own unsent outbox rows, one index descent each (a loose scan of
    ``ix_f8a_outbox_unsent``): a backlog of a million unsent rows costs as many descents as it has owners."""
    first = sa.select(sa.func.min(outbox.c.replica).label("replica")).where(
        outbox.c.published_at.is_(None)
    )
    owners = first.cte("owners", recursive=True)
    row = outbox.alias("o")
    following = (
        sa.select(sa.func.min(row.c.replica))
        .where(row.c.published_at.is_(None), row.c.replica > owners.c.replica)
        .scalar_subquery()
    )
    return owners.union_all(sa.select(following).where(owners.c.replica.is_not(None)))


_OWNERS = _owners_of_unsent_rows()
#: owners of unsent rows that are no longer registered (gone, or stopped without sending everything)
_GONE_OWNERS = sa.select(_OWNERS.c.replica).where(
    _OWNERS.c.replica.is_not(None), _OWNERS.c.replica.not_in(sa.select(replicas.c.replica_id))
)
_ADOPT = outbox.update().values(replica=sa.bindparam("me"))
_ADOPT_UNOWNED = _ADOPT.where(outbox.c.published_at.is_(None), outbox.c.replica.is_(None))
_ADOPT_GONE = _ADOPT.where(
    outbox.c.published_at.is_(None), outbox.c.replica.in_(sa.bindparam("owners", expanding=True))
)


def replica_identity() -> str:
    """host:pid:random, unique per process start."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:128]


@dataclass(frozen=True)
class ReplicaView:
    replica_id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    tz_rules: str | None = None

    def to_dict(self, runs: int, now: datetime, me: str) -> dict[str, Any]:
        return {
            "id": self.replica_id,
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
            "tz_rules": self.tz_rules,
            "started_at": self.started_at.isoformat(),
            "heartbeat_age_s": round(max(0.0, (now - self.heartbeat_at).total_seconds()), 3),
            "runs_in_progress": runs,
            "this": self.replica_id == me,
        }


class Replicas:
    """The ``f8a_replicas`` table as seen by one replica (``replica_id``)."""

    def __init__(self, replica_id: str | None = None, lapse: float = 4.0) -> None:
        self.replica_id = replica_id or replica_identity()
        self.lapse = lapse
        #: how often the heartbeat thread renews (a pass renews too, when it runs)
        self.heartbeat_interval = max(0.2, lapse / 4)
        self._renewed = float("-inf")  # monotonic time at which the last committed renewal began

    # -- this replica ------------------------------------------------------------------------------------

    def register(self, uow: UnitOfWork) -> None:
        connection = uow.connection
        now = self._now(uow)
        connection.execute(replicas.delete().where(replicas.c.replica_id == self.replica_id))
        connection.execute(
            replicas.insert().values(
                replica_id=self.replica_id,
                host=socket.gethostname()[:255],
                pid=os.getpid(),
                version=__version__,
                tz_rules=zones.rules_version(),
                started_at=uow.now(),
                heartbeat_at=now,
            )
        )

    def renew(self, uow: UnitOfWork) -> bool:
        """Renew the heartbeat in ``connection``'s transaction; False if this replica was taken for gone (its
        row deleted by another). Call :meth:`renewed` with the time taken before the transaction began once
        it has committed."""
        updated = uow.connection.execute(
            replicas.update()
            .where(replicas.c.replica_id == self.replica_id)
            .values(heartbeat_at=self._now(uow))
        )
        return bool(updated.rowcount)

    def renewed(self, began: float) -> None:
        """A renewal from a transaction begun at ``began`` (``time.monotonic()``) has committed."""
        self._renewed = max(self._renewed, began)

    def renew_due(self) -> bool:
        """Whether a scheduler pass should renew the heartbeat: not when a renewal committed within the
        heartbeat interval (no replica takes this one for gone before the lapse, several intervals away),
        so a catch-up's passes do not each write it."""
        return time.monotonic() - self._renewed >= self.heartbeat_interval

    def fresh(self) -> bool:
        """Whether no other replica can have taken this one for gone: runs may start."""
        return time.monotonic() - self._renewed < self.lapse - FENCE_MARGIN

    def leave(self, uow: UnitOfWork) -> None:
        uow.connection.execute(replicas.delete().where(replicas.c.replica_id == self.replica_id))

    # -- the others --------------------------------------------------------------------------------------

    def reap(self, uow: UnitOfWork, everyone_else: bool = False) -> list[str]:
        """Delete the replicas whose heartbeat lapsed (``everyone_else``: all others, known to be gone);
        their ids."""
        conditions = [replicas.c.replica_id != self.replica_id]
        if not everyone_else:
            conditions.append(replicas.c.heartbeat_at < self._now(uow, -self.lapse))
        lapsed = uow.connection.execute(
            replicas.delete().where(*conditions).returning(replicas.c.replica_id)
        )
        return [row.replica_id for row in lapsed]

    def adopt_outbox(self, uow: UnitOfWork) -> int:
        """Take over the unsent outbox rows of replicas that are gone (or of none): this replica's relay
        sends them. The rows of replicas still there are never read (:data:`_GONE_OWNERS`)."""
        connection, me = uow.connection, self.replica_id
        adopted = connection.execute(_ADOPT_UNOWNED, {"me": me}).rowcount or 0
        gone = list(connection.execute(_GONE_OWNERS).scalars())
        if gone:
            adopted += connection.execute(_ADOPT_GONE, {"me": me, "owners": gone}).rowcount or 0
        return int(adopted)

    def all(self, uow: UnitOfWork) -> list[tuple[ReplicaView, int]]:
        """Every registered replica with the runs it has in progress, oldest first."""
        runs = (
            sa.select(run_ledger.c.worker, sa.func.count().label("runs"))
            .group_by(run_ledger.c.worker)
            .subquery()
        )
        query = (
            sa.select(*replicas.c, sa.func.coalesce(runs.c.runs, 0))
            .select_from(replicas.outerjoin(runs, runs.c.worker == replicas.c.replica_id))
            .order_by(replicas.c.started_at, replicas.c.replica_id)
        )
        return [
            (
                ReplicaView(
                    row.replica_id,
                    row.host,
                    row.pid,
                    row.version,
                    as_utc(row.started_at) or uow.now(),
                    as_utc(row.heartbeat_at) or uow.now(),
                    row.tz_rules,
                ),
                int(row[-1]),
            )
            for row in uow.connection.execute(query)
        ]

    def now(self, uow: UnitOfWork) -> datetime:
        """The time by which heartbeats are judged."""
        if uow.connection.dialect.name == "postgresql":
            found = uow.connection.execute(sa.select(sa.func.now())).scalar_one()
            return as_utc(found) or uow.now()
        return uow.now()

    def _now(self, uow: UnitOfWork, offset: float = 0.0) -> Any:
        """The database's clock on PostgreSQL (the transaction's start), the worker's elsewhere (SQLite
        serves one replica)."""
        if uow.connection.dialect.name == "postgresql":
            clock: Any = sa.func.now()
            if offset:
                clock = clock + sa.cast(sa.literal(f"{offset} seconds"), postgresql.INTERVAL)
            return clock
        return uow.now() + timedelta(seconds=offset)
