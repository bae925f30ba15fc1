"""Running ``$filter`` queries: the SQL with its parameters, and the matched rows, read-only and timed out.

Queries run in a read-only transaction with a statement timeout (PostgreSQL; SQLite is opened query-only),
through a server-side cursor, so callers can stream rows without holding them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import Select

from f8a_jobs_worker.errors import FilterError
from f8a_jobs_worker.filters.compiler import FilterCompiler
from f8a_jobs_worker.persistence.database import is_unavailable, store_errors
from f8a_jobs_worker.retry import reason

DEFAULT_EXPAND_LIMIT = 1000
MAX_EXPAND_LIMIT = 10_000
QUERY_CANCELED = "57014"  # PostgreSQL: statement_timeout reached


class FilterRunner:
    def __init__(
        self, engine: sa.Engine, compiler: FilterCompiler | None = None, timeout_s: float = 30
    ) -> None:
        self.engine = engine
        self.compiler = compiler or FilterCompiler()
        self.timeout_s = timeout_s

    def compile(self, query: Any, path: str = "$") -> Select[Any]:
        """``path`` is where the query sits in its message, for the JSON paths of errors."""
        return self.compiler.compile(query, path)

    def sql(self, query: Any, path: str = "$") -> dict[str, Any]:
        """``filter.sql``: the PostgreSQL text of the query and its bound parameters."""
        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
        compiled = self.compile(query, path).compile(
            dialect=dialect, compile_kwargs={"render_postcompile": True}
        )
        return {
            "query": str(compiled),
            "params": {k: jsonable(v) for k, v in compiled.params.items()},
        }

    def expand(
        self,
        query: Any,
        limit: int | None = None,
        path: str = "$",
        siblings: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``filter.expand``: up to ``limit`` rows (default 1000, at most 10000), each with ``siblings``
        merged in; ``truncated`` says if there were more."""
        cap = min(DEFAULT_EXPAND_LIMIT if limit is None else max(limit, 0), MAX_EXPAND_LIMIT)
        rows: list[dict[str, Any]] = []
        truncated = False
        for row in self.rows(query, path):
            if len(rows) == cap:
                truncated = True
                break
            rows.append({**row, **(siblings or {})})
        return {"matched": rows, "truncated": truncated}

    def rows(self, query: Any, path: str = "$") -> Iterator[dict[str, Any]]:
        """Every matching row as a JSON-able dict, streamed from a server-side cursor."""
        statement = self.compile(query, path)
        with self.read_only() as connection:
            try:
                result = connection.execution_options(stream_results=True, yield_per=500).execute(
                    statement
                )
                keys = list(result.keys())
                try:
                    for row in result:
                        yield {key: jsonable(value) for key, value in zip(keys, row, strict=True)}
                finally:  # a caller that stops early (a capped expand) closes the server-side cursor
                    result.close()
            except sa.exc.DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED:
                    raise FilterError(f"the query ran longer than {self.timeout_s}s") from None
                if is_unavailable(exc):
                    raise
                raise FilterError(f"the query failed: {reason(exc)}") from None

    @contextmanager
    def read_only(self) -> Iterator[sa.Connection]:
        """A read-only transaction on the analytics database with the filter timeout."""
        with store_errors("analytics database"), self.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                with connection.begin():
                    connection.execute(sa.text("SET TRANSACTION READ ONLY"))
                    connection.execute(
                        sa.text("SELECT set_config('statement_timeout', :ms, true)"),
                        {"ms": str(int(self.timeout_s * 1000))},
                    )
                    # rows are streamed while the handler publishes: the transaction may sit idle
                    # between fetches for as long as the broker takes (it holds no row locks)
                    connection.execute(sa.text("SET LOCAL idle_in_transaction_session_timeout = 0"))
                    yield connection
            else:
                connection.exec_driver_sql("PRAGMA query_only = ON")
                try:
                    with connection.begin():
                        yield connection
                finally:
                    connection.exec_driver_sql("PRAGMA query_only = OFF")


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value
