"""Many rows into one table with one statement: ``INSERT ... SELECT FROM unnest(...)`` on PostgreSQL, an
``executemany`` elsewhere.

An ``executemany`` through psycopg sends one ``INSERT`` per row: the server plans and runs each on its own, and
the counting triggers (statement triggers, :mod:`persistence.counts`) fire once per row. Here each column's
values go as one array parameter, in the driver's binary format, and ``unnest`` turns the arrays back into
rows: one statement whatever the number of rows (one trigger firing), one round trip (a ``COPY`` takes two),
one text, so the driver prepares it once. It goes to the driver's connection, past SQLAlchemy, so its errors
are given SQLAlchemy's form here (a connection lost is an ``OperationalError`` and the connection is
invalidated, a duplicate key an ``IntegrityError``): callers see what SQLAlchemy's ``INSERT`` would have raised.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql


def insert_rows(connection: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, column names of ``table``) in the caller's transaction."""
    if not rows:
        return
    if connection.dialect.driver != "psycopg":
        connection.execute(table.insert(), list(rows))
        return
    columns = tuple(rows[0])
    statement, processors = _insert_of(table, columns, connection.dialect)
    arrays = [
        [row[column] for row in rows] if process is None else [process(row[column]) for row in rows]
        for column, process in zip(columns, processors, strict=True)
    ]
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    try:
        with driver.cursor() as cursor:
            cursor.execute(statement, arrays)
    except psycopg.Error as exc:
        raise _as_sqlalchemy(connection, driver, f"INSERT INTO {table.name}", exc) from exc


@functools.lru_cache(maxsize=64)
def _insert_of(
    table: sa.Table, columns: tuple[str, ...], dialect: sa.Dialect
) -> tuple[bytes, list[Callable[[Any], Any] | None]]:
    """The ``INSERT ... SELECT FROM unnest(...)`` for ``columns`` of ``table`` (one array per column, each
    cast to its column's type), and the conversion SQLAlchemy applies to each column's values (a JSON
    column's, for one) before the driver sees them."""
    types = [table.c[column].type.dialect_impl(dialect) for column in columns]
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    # in the arrays' order (ORDER BY n): the outbox's generated ids are the order its rows are sent in
    statement = sql.SQL(
        "INSERT INTO {table} ({columns}) SELECT {columns}"
        " FROM unnest({arrays}) WITH ORDINALITY AS u ({columns}, n) ORDER BY n"
    ).format(
        table=sql.Identifier(*filter(None, (table.schema, table.name))),
        columns=names,
        arrays=sql.SQL(", ").join(
            sql.SQL("%b::{}[]").format(sql.SQL(kind.compile(dialect=dialect))) for kind in types
        ),
    )
    return statement.as_bytes(), [_processor(kind, dialect) for kind in types]


def _processor(kind: sa.types.TypeEngine[Any], dialect: sa.Dialect) -> Callable[[Any], Any] | None:
    """SQLAlchemy's conversion for a column's values; for a float column also ``int`` to ``float`` (an
    array is of one type: the driver refuses ``[0, 0.25]``, where an ``INSERT`` of each row takes either)."""
    process = kind.bind_processor(dialect)
    if not isinstance(kind, sa.Float):
        return process
    if process is None:
        return _as_float
    return lambda value: process(_as_float(value))


def _as_float(value: Any) -> Any:
    return float(value) if isinstance(value, int) else value


def _as_sqlalchemy(
    connection: sa.Connection, driver: psycopg.Connection, statement: str, exc: psycopg.Error
) -> sa.exc.StatementError:
    """The exception SQLAlchemy raises for ``exc`` from a statement of its own; a connection that is lost
    is invalidated, so the pool does not hand it out again."""
    error: Any = exc
    lost = connection.dialect.is_disconnect(error, connection.connection, None) or driver.closed
    if lost:
        connection.invalidate(exc)
    wrapped: sa.exc.StatementError = sa.exc.DBAPIError.instance(
        statement,
        None,
        error,
        psycopg.Error,
        connection_invalidated=lost,
        dialect=connection.dialect,
    )
    return wrapped
