"""Engines for the job store: PostgreSQL in production, SQLite as the embedded default.

Every database error that means "the store is not answering" becomes :class:`Unavailable`, so callers can
retry instead of losing the command.

PostgreSQL is reached through psycopg 3, the driver SQLAlchemy 2.1 picks for ``postgresql://``. Every spelling
of a PostgreSQL URL (``postgresql://``, ``postgres://``, ``postgresql+psycopg2://``) is read as psycopg 3, so a
URL means the same here whichever SQLAlchemy release is installed and whichever driver an older configuration
named: all of them take the same libpq connection parameters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

from f8a_jobs_worker.errors import Unavailable
from f8a_jobs_worker.retry import reason

log = logging.getLogger(__name__)


POSTGRES_DRIVER = "postgresql+psycopg"
_POSTGRES_SPELLINGS = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}
SUPPORTED_URLS = "postgresql://user:password@host:5432/database or sqlite:///path/to/file.sqlite"


def database_url(url: str) -> sa.URL:
    """The SQLAlchemy URL the worker connects with; ValueError (with no password in it) for a URL that
    cannot work: unparseable, another database than PostgreSQL or SQLite, or a driver that is not installed.
    A server that does not answer is not checked here: that is retried at start."""
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise ValueError(f"cannot parse the URL; expected {SUPPORTED_URLS}") from None
    if parsed.drivername in _POSTGRES_SPELLINGS:
        parsed = parsed.set(drivername=POSTGRES_DRIVER)
    elif parsed.drivername not in {"sqlite", "sqlite+pysqlite"}:
        raise ValueError(f"unsupported database {parsed.drivername!r}; expected {SUPPORTED_URLS}")
    try:
        parsed.get_dialect().import_dbapi()
    except Exception as exc:
        raise ValueError(f"the driver of {parsed.drivername!r} cannot be loaded: {exc}") from None
    return parsed


def create_engine(url: str, pool_size: int = 10, lapse: float | None = None) -> Engine:
    """An engine tuned for the store: WAL and a busy timeout on SQLite, a ping of idle connections on
    servers. With ``lapse`` (the job store of replicas), a PostgreSQL session that stalls inside a
    transaction, or a connection that stops answering, is ended within about ``lapse`` seconds, so the rows
    it locked (a pass's claimed jobs) are free for the other replicas."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=sa.pool.QueuePool,
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if lapse is not None:
        seconds = max(1, int(lapse))
        # a connection cut without a reset is noticed by the kernel, not after the default two hours
        connect_args = {
            "keepalives": 1,
            "keepalives_idle": seconds,
            "keepalives_interval": 1,
            "keepalives_count": 3,
            "tcp_user_timeout": seconds * 1000,
        }
        connect_args = {k: v for k, v in connect_args.items() if k not in parsed.query}
    engine = sa.create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args=connect_args,
    )
    if lapse is not None:
        event.listen(engine, "connect", partial(_session_timeouts, int(lapse * 1000)))
    event.listen(engine, "connect", _note_use)
    event.listen(engine, "checkin", _note_use)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


#: a pooled connection idle longer than this is pinged before use (seconds)
PING_AFTER_IDLE = 5.0


def _note_use(_dbapi_connection: Any, record: Any) -> None:
    record.info["last_used"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """SQLAlchemy's ``pool_pre_ping`` costs a round trip at every checkout, a tenth of a busy worker's
    time; a connection in steady use has just proven itself, so only one that sat idle is pinged. A dead one
    is replaced by the pool (DisconnectionError); one that dies while in use fails its statement, which
    callers already treat as ``unavailable`` and retry."""
    if time.monotonic() - record.info.get("last_used", 0.0) < PING_AFTER_IDLE:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
    except Exception as exc:
        raise DisconnectionError(reason(exc)) from exc


def _session_timeouts(idle_in_transaction_ms: int, dbapi_connection: Any, _record: Any) -> None:
    """The server ends a session left idle inside a transaction (a paused or cut-off replica holding
    claimed rows) after ``idle_in_transaction_ms``."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"SET idle_in_transaction_session_timeout = {int(idle_in_transaction_ms)}")
    finally:
        cursor.close()
    dbapi_connection.commit()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def advisory_xact_lock(connection: sa.Connection, key: int) -> None:
    """Wait for PostgreSQL's advisory lock ``key``, held until the transaction ends: replicas doing the same
    set-up at the same time (creating tables, applying default jobs) take turns. SQLite serves one worker."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def ping(engine: Engine) -> None:
    """Raise :class:`Unavailable` unless the database answers a trivial query."""
    with store_errors("job store"), engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))


def is_unavailable(exc: BaseException) -> bool:
    """True for errors that mean the database cannot be reached, not that the statement was wrong."""
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


@contextmanager
def store_errors(what: str) -> Iterator[None]:
    """Turn connection-level database errors into :class:`Unavailable` (with no URL or SQL in it)."""
    try:
        yield
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        raise Unavailable(f"{what} unavailable: {reason(exc)}") from exc


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every stored time is UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
