"""Many rows into one table with one statement: PostgreSQL's ``COPY``, an ``executemany`` elsewhere.

An ``executemany`` through psycopg sends one ``INSERT`` per row: the server plans and runs each on its own, and
the counting triggers (statement triggers, :mod:`persistence.counts`) fire once per row. ``COPY ... FROM STDIN``
is one statement whatever the number of rows: one trigger firing, the rows streamed in the driver's C code.
A ``COPY`` goes to the driver's connection, past SQLAlchemy, so its errors are given SQLAlchemy's form here
(a connection lost is an ``OperationalError`` and the connection is invalidated, a duplicate key an
``IntegrityError``): callers see what an ``INSERT`` would have raised.
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
    statement, processors = _copy_of(table, columns, connection.dialect)
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    [
                        row[column] if process is None else process(row[column])
                        for column, process in zip(columns, processors, strict=True)
                    ]
                )
    except psycopg.Error as exc:
        raise _as_sqlalchemy(connection, driver, f"COPY {table.name}", exc) from exc


@functools.lru_cache(maxsize=64)
def _copy_of(
    table: sa.Table, columns: tuple[str, ...], dialect: sa.Dialect
) -> tuple[sql.Composed, list[Callable[[Any], Any] | None]]:
    """The ``COPY`` statement for ``columns`` of ``table``, and the conversion SQLAlchemy applies to each
    column's values (a JSON column's, for one) before the driver sees them."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(*filter(None, (table.schema, table.name))),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
    )
    types = [table.c[column].type.dialect_impl(dialect) for column in columns]
    return statement, [kind.bind_processor(dialect) for kind in types]


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
