"""Compile the ``$filter`` JSON query language to a SQLAlchemy ``Select`` in which every value is a bound
parameter and every name was checked against the analytics schema and an allow-list.

Nothing from a query ever becomes SQL text: table and column names select existing ``Table``/``Column``
objects, operators select SQLAlchemy operators from a fixed table, values become bind parameters. Anything
else is a :class:`~f8a_jobs_worker.errors.FilterError` naming the offending part by its JSON path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement, FromClause, Select

from f8a_jobs_worker.errors import FilterError
from f8a_jobs_worker.filters.analytics_tables import TABLES
from f8a_jobs_worker.filters.sources import NAME, Scope, as_list, detail, join_tables

KEYS = {
    "table",
    "select",
    "distinct",
    "count",
    "joins",
    "where",
    "group_by",
    "having",
    "order_by",
    "limit",
    "offset",
}
#: the aggregate functions ``having`` may compare
AGGREGATES = ("count", "min", "max", "sum", "avg")
MAX_DEPTH = 4
MAX_IN_LIST = 10_000
MAX_CONDITIONS = 100

_SELECT = re.compile(rf"^\s*({NAME}(?:\.{NAME})?)(?:\s+as\s+({NAME}))?\s*$", re.IGNORECASE)
_ORDER = re.compile(rf"^\s*({NAME}(?:\.{NAME})?)(?:\s+(asc|desc))?\s*$", re.IGNORECASE)
_CONDITION = re.compile(rf"^\s*({NAME}(?:\.{NAME})?)(?:\s+(.+?))?\s*$")
_AGGREGATE = re.compile(
    rf"^\s*({'|'.join(AGGREGATES)})\s*\(\s*(\*|{NAME}(?:\.{NAME})?)\s*\)(?:\s+(.+?))?\s*$",
    re.IGNORECASE,
)

Scalar = str | int | float | bool | None

_OPERATORS: dict[str, Callable[[ColumnElement[Any], Any], ColumnElement[bool]]] = {
    "=": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<>": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    ">": lambda c, v: c > v,
    "<=": lambda c, v: c <= v,
    ">=": lambda c, v: c >= v,
    "is": lambda c, v: c.is_(v),
    "is not": lambda c, v: c.is_not(v),
    "like": lambda c, v: c.like(v),
    "not like": lambda c, v: c.not_like(v),
    "similar to": lambda c, v: c.op("SIMILAR TO", is_comparison=True)(v),
    "not similar to": lambda c, v: c.op("NOT SIMILAR TO", is_comparison=True)(v),
    "~": lambda c, v: c.op("~", is_comparison=True)(v),
    "~*": lambda c, v: c.op("~*", is_comparison=True)(v),
    "!~": lambda c, v: c.op("!~", is_comparison=True)(v),
    "!~*": lambda c, v: c.op("!~*", is_comparison=True)(v),
}
_LIST_OPERATORS = {"in", "not in"}


class FilterCompiler:
    """Compiles queries against an allow-list of analytics tables (all of them by default)."""

    def __init__(self, allowed_tables: Iterable[str] | None = None) -> None:
        allowed = set(TABLES if allowed_tables is None else allowed_tables)
        unknown = allowed - set(TABLES)
        if unknown:
            raise ValueError(f"unknown analytics tables in the allow-list: {sorted(unknown)}")
        self.tables = {name: TABLES[name] for name in sorted(allowed)}

    def compile(
        self, query: Any, path: str = "$", scope: Scope | None = None, depth: int = 0
    ) -> Select[Any]:
        if not isinstance(query, Mapping):
            raise FilterError(
                f"{path}: a query is a JSON object", [detail(path, "expected an object")]
            )
        if depth > MAX_DEPTH:
            raise FilterError(
                f"{path}: queries nest at most {MAX_DEPTH} levels deep",
                [detail(path, "nested too deeply")],
            )
        unknown = sorted(set(query) - KEYS)
        if unknown:
            raise FilterError(
                f"{path}: unknown key(s) {', '.join(map(repr, unknown))}",
                [detail(f"{path}.{k}", "unknown key") for k in unknown],
            )
        scope = Scope(parent=scope)
        source = scope.add_table(self.tables, query.get("table"), f"{path}.table")
        for index, join in enumerate(as_list(query.get("joins"), f"{path}.joins", dict)):
            source = join_tables(self.tables, source, join, f"{path}.joins[{index}]", scope)
        statement = self._select(query, path, scope, source)
        conditions = self._where(query.get("where"), f"{path}.where", scope, depth)
        if conditions:
            statement = statement.where(*conditions)
        for index, item in enumerate(as_list(query.get("group_by"), f"{path}.group_by", str)):
            statement = statement.group_by(scope.column(item, f"{path}.group_by[{index}]"))
        having = self._where(query.get("having"), f"{path}.having", scope, depth, aggregates=True)
        if having:
            statement = statement.having(*having)
        for index, item in enumerate(as_list(query.get("order_by"), f"{path}.order_by", str)):
            statement = statement.order_by(self._order(item, f"{path}.order_by[{index}]", scope))
        for key in ("limit", "offset"):
            value = query.get(key)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise FilterError(
                        f"{path}.{key}: expected a non-negative integer",
                        [detail(f"{path}.{key}", "expected a non-negative integer")],
                    )
                statement = statement.limit(value) if key == "limit" else statement.offset(value)
        return statement

    # -- SELECT ---------------------------------------------------------------------------------------

    def _select(
        self, query: Mapping[str, Any], path: str, scope: Scope, source: FromClause
    ) -> Select[Any]:
        count, distinct = query.get("count"), query.get("distinct")
        for key, value in (("count", count), ("distinct", distinct)):
            if value is not None and not isinstance(value, bool):
                raise FilterError(
                    f"{path}.{key}: expected true or false", [detail(f"{path}.{key}", "bool")]
                )
        if count:
            if query.get("select") is not None or distinct:
                raise FilterError(
                    f"{path}.count: count cannot be combined with select or distinct",
                    [detail(f"{path}.count", "count with select/distinct")],
                )
            return sa.select(sa.func.count().label("count")).select_from(source)
        items = as_list(query.get("select"), f"{path}.select", str)
        if items:
            columns = [
                self._select_item(item, f"{path}.select[{i}]", scope)
                for i, item in enumerate(items)
            ]
        else:
            base = next(iter(scope.tables.values()))
            columns = list(base.c)
        statement = sa.select(*columns).select_from(source)
        return statement.distinct() if distinct else statement

    def _select_item(self, text: str, path: str, scope: Scope) -> ColumnElement[Any]:
        match = _SELECT.match(text)
        if not match:
            raise FilterError(
                f"{path}: {text!r} is not a column ('table.column' or 'table.column as name'); "
                "functions and expressions are not allowed",
                [detail(path, "not a column")],
            )
        column = scope.column(match.group(1), path)
        if not match.group(2):
            return column
        labelled = column.label(match.group(2))
        scope.labels[match.group(2)] = labelled
        return labelled

    def _order(self, text: str, path: str, scope: Scope) -> ColumnElement[Any]:
        match = _ORDER.match(text)
        if not match:
            raise FilterError(
                f"{path}: {text!r} is not 'column [asc|desc]'", [detail(path, "bad order")]
            )
        column = scope.labels.get(match.group(1))
        if column is None:
            column = scope.column(match.group(1), path)
        return column.desc() if (match.group(2) or "").lower() == "desc" else column.asc()

    # -- WHERE ----------------------------------------------------------------------------------------

    def _where(
        self, where: Any, path: str, scope: Scope, depth: int, aggregates: bool = False
    ) -> list[ColumnElement[bool]]:
        if where is None:
            return []
        if not isinstance(where, Mapping):
            raise FilterError(
                f"{path}: expected an object of conditions", [detail(path, "expected object")]
            )
        if len(where) > MAX_CONDITIONS:
            raise FilterError(
                f"{path}: at most {MAX_CONDITIONS} conditions", [detail(path, "too many")]
            )
        return [
            self._condition(key, value, f"{path}.{key}", scope, depth, aggregates)
            for key, value in where.items()
        ]

    def _condition(
        self, key: str, value: Any, path: str, scope: Scope, depth: int, aggregates: bool = False
    ) -> ColumnElement[bool]:
        aggregate = _AGGREGATE.match(key) if aggregates and isinstance(key, str) else None
        if aggregate:
            column = self._aggregate(aggregate.group(1).lower(), aggregate.group(2), path, scope)
            written_operator = aggregate.group(3)
        else:
            match = _CONDITION.match(key) if isinstance(key, str) else None
            if not match:
                expected = (
                    "'column [operator]' or 'count(column) [operator]'"
                    if aggregates
                    else ("'column [operator]'")
                )
                raise FilterError(
                    f"{path}: {key!r} is not {expected}", [detail(path, "bad condition")]
                )
            column = scope.column(match.group(1), path)
            written_operator = match.group(2)
        operator = " ".join((written_operator or "").lower().split())
        if operator and operator not in _OPERATORS and operator not in _LIST_OPERATORS:
            raise FilterError(
                f"{path}: unknown operator {written_operator!r}",
                [detail(path, f"unknown operator {written_operator!r}")],
            )
        if isinstance(value, Mapping):
            return self._subquery(column, operator, value, path, scope, depth)
        if isinstance(value, list):
            if operator not in {"", "in", "not in"}:
                raise FilterError(
                    f"{path}: a list needs 'in' or 'not in'", [detail(path, "list value")]
                )
            items = [self._scalar(item, f"{path}[{i}]", scope) for i, item in enumerate(value)]
            if len(items) > MAX_IN_LIST:
                raise FilterError(
                    f"{path}: at most {MAX_IN_LIST} values", [detail(path, "list too long")]
                )
            return column.not_in(items) if operator == "not in" else column.in_(items)
        operand = self._scalar(value, path, scope)
        if operator in _LIST_OPERATORS:
            raise FilterError(
                f"{path}: '{operator}' needs a list or a $filter", [detail(path, "not a list")]
            )
        if not operator:
            return column.is_(None) if value is None else column == operand
        return _OPERATORS[operator](column, operand)

    def _aggregate(
        self, function: str, argument: str, path: str, scope: Scope
    ) -> ColumnElement[Any]:
        """``count(*)``, ``count(column)``, ``min``, ``max``, ``sum``, ``avg`` of a column (in ``having``)."""
        if argument == "*":
            if function != "count":
                raise FilterError(f"{path}: only count takes *", [detail(path, f"{function}(*)")])
            return sa.func.count()
        aggregate: ColumnElement[Any] = getattr(sa.func, function)(scope.column(argument, path))
        return aggregate

    def _subquery(
        self,
        column: ColumnElement[Any],
        operator: str,
        value: Mapping[str, Any],
        path: str,
        scope: Scope,
        depth: int,
    ) -> ColumnElement[bool]:
        if set(value) != {"$filter"}:
            raise FilterError(
                f'{path}: an object value must be {{"$filter": query}}',
                [detail(path, "object value without $filter")],
            )
        inner = self.compile(value["$filter"], f"{path}.$filter", scope, depth + 1)
        if operator in {"", "in"}:
            return column.in_(inner)
        if operator == "not in":
            return column.not_in(inner)
        if operator in {"is", "is not"}:
            raise FilterError(
                f"{path}: '{operator}' takes null, not a query", [detail(path, "is query")]
            )
        return _OPERATORS[operator](column, inner.scalar_subquery())

    def _scalar(self, value: Any, path: str, scope: Scope) -> Any:
        if isinstance(value, str) and value.startswith("$"):
            return scope.column(value[1:], path)
        if isinstance(value, str):
            # untyped, so that PostgreSQL reads it as the type it is compared with ('2017-04-05' as a
            # timestamp): psycopg 3 would otherwise send it cast to VARCHAR
            return sa.literal(value, sa.types.NullType())
        if value is None or isinstance(value, int | float | bool):
            return value
        raise FilterError(
            f'{path}: values are strings, numbers, booleans, null, lists or {{"$filter"}}',
            [detail(path, f"unsupported value of type {type(value).__name__}")],
        )
