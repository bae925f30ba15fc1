"""The signatures of signed commands applied within the replay window, shared by every replica: a signed
message seen again, and not given back by the broker (a redelivery), is a replay."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import sqlalchemy as sa

from f8a_jobs_worker.access.signing import Seal
from f8a_jobs_worker.persistence.tables import signatures_seen
from f8a_jobs_worker.persistence.unit_of_work import UnitOfWork

_SEEN = sa.select(signatures_seen.c.signature).where(
    signatures_seen.c.signature.in_(sa.bindparam("signatures", expanding=True))
)


class SeenSignatures:
    @staticmethod
    def seen(uow: UnitOfWork, seals: Iterable[Seal]) -> set[str]:
        """Which of these signatures were applied before (one query for a batch)."""
        wanted = [seal.signature for seal in seals]
        if not wanted:
            return set()
        return set(uow.connection.execute(_SEEN, {"signatures": wanted}).scalars())

    @staticmethod
    def remember(uow: UnitOfWork, seal: Seal) -> None:
        """Remember a signature with the command's effects: a replica applying the same one at the same
        time fails its commit on the key, and sees it as seen when it applies its batch again."""
        row = {"signature": seal.signature, "command_id": seal.command_id, "seen_at": uow.now()}
        uow.insert_later(signatures_seen, row)

    @staticmethod
    def prune(uow: UnitOfWork, window: int) -> int:
        """Forget what the window no longer admits (kept twice the window: clocks differ)."""
        cutoff = uow.now() - timedelta(seconds=2 * window)
        statement = signatures_seen.delete().where(signatures_seen.c.seen_at < cutoff)
        return int(uow.connection.execute(statement).rowcount or 0)
