"""Compile the ``$filter`` JSON query language to a SQLAlchemy ``Select`` in which every value is a bound
parameter and every name was checked against the analytics schema and an allow-list.

Nothing from a query ever becomes SQL text: table and column names select existing ``Table``/``Column``
objects, operators select SQLAlchemy operators from a fixed table, values become bind parameters. Anything
else is a :class:`~f8a_jobs_worker.errors.FilterError` naming the offending part by its JSON path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement, FromClause, Select

from f8a_jobs_worker.errors import FilterError
from f8a_jobs_worker.filters.tables import TABLES

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
JOIN_KEYS = {"table", "on", "type", "join_type", "using"}
JOIN_TYPES = {"inner", "left", "right", "full", "cross"}
#: the original's json2sql spelling (``join_type``) and the type it means
JOIN_TYPE_SPELLINGS = {
    "join": "inner",
    "left_join": "left",
    "right_join": "right",
    "cross_join": "cross",
}
#: the aggregate functions ``having`` may compare
AGGREGATES = ("count", "min", "max", "sum", "avg")
MAX_DEPTH = 4
MAX_IN_LIST = 10_000
MAX_CONDITIONS = 100

_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
_TABLE = re.compile(rf"^\s*({_NAME})(?:\s+(?:as\s+)?({_NAME}))?\s*$", re.IGNORECASE)
_COLUMN = re.compile(rf"^({_NAME})(?:\.({_NAME}))?$")
_SELECT = re.compile(rf"^\s*({_NAME}(?:\.{_NAME})?)(?:\s+as\s+({_NAME}))?\s*$", re.IGNORECASE)
_ORDER = re.compile(rf"^\s*({_NAME}(?:\.{_NAME})?)(?:\s+(asc|desc))?\s*$", re.IGNORECASE)
_CONDITION = re.compile(rf"^\s*({_NAME}(?:\.{_NAME})?)(?:\s+(.+?))?\s*$")
_AGGREGATE = re.compile(
    rf"^\s*({'|'.join(AGGREGATES)})\s*\(\s*(\*|{_NAME}(?:\.{_NAME})?)\s*\)(?:\s+(.+?))?\s*$",
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


@dataclass
class Scope:
    """The tables a query can name (by alias or table name), with the enclosing query's for correlation."""

    tables: dict[str, FromClause] = field(default_factory=dict)
    parent: Scope | None = None
    labels: dict[str, ColumnElement[Any]] = field(default_factory=dict)

    def find(self, name: str) -> FromClause | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.tables:
                return scope.tables[name]
            scope = scope.parent
        return None


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
                f"{path}: a query is a JSON object", [_detail(path, "expected an object")]
            )
        if depth > MAX_DEPTH:
            raise FilterError(
                f"{path}: queries nest at most {MAX_DEPTH} levels deep",
                [_detail(path, "nested too deeply")],
            )
        unknown = sorted(set(query) - KEYS)
        if unknown:
            raise FilterError(
                f"{path}: unknown key(s) {', '.join(map(repr, unknown))}",
                [_detail(f"{path}.{k}", "unknown key") for k in unknown],
            )
        scope = Scope(parent=scope)
        source = self._from(query.get("table"), f"{path}.table", scope)
        for index, join in enumerate(_as_list(query.get("joins"), f"{path}.joins", dict)):
            source = self._join(source, join, f"{path}.joins[{index}]", scope)
        statement = self._select(query, path, scope, source)
        conditions = self._where(query.get("where"), f"{path}.where", scope, depth)
        if conditions:
            statement = statement.where(*conditions)
        for index, item in enumerate(_as_list(query.get("group_by"), f"{path}.group_by", str)):
            statement = statement.group_by(self._column(item, f"{path}.group_by[{index}]", scope))
        having = self._where(query.get("having"), f"{path}.having", scope, depth, aggregates=True)
        if having:
            statement = statement.having(*having)
        for index, item in enumerate(_as_list(query.get("order_by"), f"{path}.order_by", str)):
            statement = statement.order_by(self._order(item, f"{path}.order_by[{index}]", scope))
        for key in ("limit", "offset"):
            value = query.get(key)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise FilterError(
                        f"{path}.{key}: expected a non-negative integer",
                        [_detail(f"{path}.{key}", "expected a non-negative integer")],
                    )
                statement = statement.limit(value) if key == "limit" else statement.offset(value)
        return statement

    # -- FROM and JOIN --------------------------------------------------------------------------------

    def _from(self, text: Any, path: str, scope: Scope) -> FromClause:
        if not isinstance(text, str):
            raise FilterError(
                f"{path}: a table name is required", [_detail(path, "expected a string")]
            )
        match = _TABLE.match(text)
        if not match:
            raise FilterError(
                f"{path}: {text!r} is not a table name (optionally 'AS alias')",
                [_detail(path, "not a table name")],
            )
        name, alias = match.group(1), match.group(2)
        table = self.tables.get(name)
        if table is None:
            raise FilterError(
                f"{path}: unknown table {name!r} (known: {', '.join(self.tables)})",
                [_detail(path, f"unknown table {name!r}")],
            )
        key = alias or name
        if key in scope.tables:
            raise FilterError(
                f"{path}: {key!r} is named twice; give one an alias",
                [_detail(path, "duplicate table name")],
            )
        source: FromClause = table.alias(alias) if alias else table
        scope.tables[key] = source
        return source

    def _join(
        self, left: FromClause, join: Mapping[str, Any], path: str, scope: Scope
    ) -> FromClause:
        unknown = sorted(set(join) - JOIN_KEYS)
        if unknown:
            hint = ' (YAML reads an unquoted on: as true; write "on":)' if "True" in unknown else ""
            raise FilterError(
                f"{path}: unknown join key(s) {', '.join(map(repr, unknown))}{hint}",
                [_detail(f"{path}.{k}", "unknown key") for k in unknown],
            )
        kind = self._join_type(join, path)
        left_scope = dict(scope.tables)
        right = self._from(join.get("table"), f"{path}.table", scope)
        if kind == "cross":
            if join.get("on") is not None or join.get("using") is not None:
                raise FilterError(
                    f"{path}: a cross join takes neither 'on' nor 'using'",
                    [_detail(path, "cross join with a condition")],
                )
            return sa.join(left, right, sa.true())
        if join.get("on") is not None:
            on = join["on"]
            if not isinstance(on, Mapping) or not on:
                raise FilterError(
                    f"{path}.on: expected an object of column pairs",
                    [_detail(f"{path}.on", "expected {left_column: right_column}")],
                )
            clause = sa.and_(
                *(
                    self._column(lhs, f"{path}.on", scope)
                    == self._column(rhs, f"{path}.on.{lhs}", scope)
                    for lhs, rhs in on.items()
                )
            )
        elif join.get("using") is not None:
            columns = _as_list(join["using"], f"{path}.using", str)
            clause = sa.and_(
                *(self._using(column, right, left_scope, f"{path}.using") for column in columns)
            )
        else:
            raise FilterError(
                f"{path}: a join needs 'on' or 'using' (natural joins are not supported)",
                [_detail(path, "missing on/using")],
            )
        if kind == "right":
            return sa.join(right, left, clause, isouter=True)
        return sa.join(left, right, clause, isouter=kind in {"left", "full"}, full=kind == "full")

    @staticmethod
    def _join_type(join: Mapping[str, Any], path: str) -> str:
        """``type`` (inner, left, right, full, cross) or the original's ``join_type`` (join, left_join,
        right_join, cross_join); both may be given if they agree."""
        kinds = []
        if "type" in join:
            kind = str(join["type"]).lower()
            if kind not in JOIN_TYPES:
                raise FilterError(
                    f"{path}.type: join type must be one of {sorted(JOIN_TYPES)}",
                    [_detail(f"{path}.type", "unknown join type")],
                )
            kinds.append(kind)
        if "join_type" in join:
            spelled = str(join["join_type"]).lower()
            if spelled not in JOIN_TYPE_SPELLINGS:
                raise FilterError(
                    f"{path}.join_type: must be one of {sorted(JOIN_TYPE_SPELLINGS)}",
                    [_detail(f"{path}.join_type", "unknown join type")],
                )
            kinds.append(JOIN_TYPE_SPELLINGS[spelled])
        if len(set(kinds)) > 1:
            raise FilterError(
                f"{path}: type {kinds[0]!r} and join_type {join['join_type']!r} disagree",
                [_detail(path, "conflicting join types")],
            )
        return kinds[0] if kinds else "inner"

    def _using(
        self, column: str, right: FromClause, left_tables: Mapping[str, FromClause], path: str
    ) -> ColumnElement[bool]:
        owners = [t for t in left_tables.values() if column in t.c]
        if column not in right.c or len(owners) != 1:
            raise FilterError(
                f"{path}: {column!r} must be a column of the joined table and of exactly one "
                "table before it",
                [_detail(path, f"bad using column {column!r}")],
            )
        return owners[0].c[column] == right.c[column]

    # -- SELECT ---------------------------------------------------------------------------------------

    def _select(
        self, query: Mapping[str, Any], path: str, scope: Scope, source: FromClause
    ) -> Select[Any]:
        count, distinct = query.get("count"), query.get("distinct")
        for key, value in (("count", count), ("distinct", distinct)):
            if value is not None and not isinstance(value, bool):
                raise FilterError(
                    f"{path}.{key}: expected true or false", [_detail(f"{path}.{key}", "bool")]
                )
        if count:
            if query.get("select") is not None or distinct:
                raise FilterError(
                    f"{path}.count: count cannot be combined with select or distinct",
                    [_detail(f"{path}.count", "count with select/distinct")],
                )
            return sa.select(sa.func.count().label("count")).select_from(source)
        items = _as_list(query.get("select"), f"{path}.select", str)
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
                [_detail(path, "not a column")],
            )
        column = self._column(match.group(1), path, scope)
        if not match.group(2):
            return column
        labelled = column.label(match.group(2))
        scope.labels[match.group(2)] = labelled
        return labelled

    def _order(self, text: str, path: str, scope: Scope) -> ColumnElement[Any]:
        match = _ORDER.match(text)
        if not match:
            raise FilterError(
                f"{path}: {text!r} is not 'column [asc|desc]'", [_detail(path, "bad order")]
            )
        column = scope.labels.get(match.group(1))
        if column is None:
            column = self._column(match.group(1), path, scope)
        return column.desc() if (match.group(2) or "").lower() == "desc" else column.asc()

    def _column(self, text: Any, path: str, scope: Scope) -> ColumnElement[Any]:
        """``table.column`` (by alias or name, also of enclosing queries) or an unambiguous ``column``."""
        match = _COLUMN.match(text) if isinstance(text, str) else None
        if not match:
            raise FilterError(
                f"{path}: {text!r} is not a column name", [_detail(path, "not a column name")]
            )
        qualifier, name = (
            (match.group(1), match.group(2)) if match.group(2) else (None, match.group(1))
        )
        if qualifier is not None:
            table = scope.find(qualifier)
            if table is None:
                raise FilterError(
                    f"{path}: {qualifier!r} is not a table of this query",
                    [_detail(path, f"unknown table {qualifier!r}")],
                )
            if name not in table.c:
                raise FilterError(
                    f"{path}: table {qualifier!r} has no column {name!r}",
                    [_detail(path, f"unknown column {qualifier}.{name}")],
                )
            return table.c[name]
        owners = [t for t in scope.tables.values() if name in t.c]
        if len(owners) == 1:
            return owners[0].c[name]
        problem = "is ambiguous; qualify it" if owners else "is not a column of this query's tables"
        raise FilterError(f"{path}: {name!r} {problem}", [_detail(path, problem)])

    # -- WHERE ----------------------------------------------------------------------------------------

    def _where(
        self, where: Any, path: str, scope: Scope, depth: int, aggregates: bool = False
    ) -> list[ColumnElement[bool]]:
        if where is None:
            return []
        if not isinstance(where, Mapping):
            raise FilterError(
                f"{path}: expected an object of conditions", [_detail(path, "expected object")]
            )
        if len(where) > MAX_CONDITIONS:
            raise FilterError(
                f"{path}: at most {MAX_CONDITIONS} conditions", [_detail(path, "too many")]
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
                    f"{path}: {key!r} is not {expected}", [_detail(path, "bad condition")]
                )
            column = self._column(match.group(1), path, scope)
            written_operator = match.group(2)
        operator = " ".join((written_operator or "").lower().split())
        if operator and operator not in _OPERATORS and operator not in _LIST_OPERATORS:
            raise FilterError(
                f"{path}: unknown operator {written_operator!r}",
                [_detail(path, f"unknown operator {written_operator!r}")],
            )
        if isinstance(value, Mapping):
            return self._subquery(column, operator, value, path, scope, depth)
        if isinstance(value, list):
            if operator not in {"", "in", "not in"}:
                raise FilterError(
                    f"{path}: a list needs 'in' or 'not in'", [_detail(path, "list value")]
                )
            items = [self._scalar(item, f"{path}[{i}]", scope) for i, item in enumerate(value)]
            if len(items) > MAX_IN_LIST:
                raise FilterError(
                    f"{path}: at most {MAX_IN_LIST} values", [_detail(path, "list too long")]
                )
            return column.not_in(items) if operator == "not in" else column.in_(items)
        operand = self._scalar(value, path, scope)
        if operator in _LIST_OPERATORS:
            raise FilterError(
                f"{path}: '{operator}' needs a list or a $filter", [_detail(path, "not a list")]
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
                raise FilterError(f"{path}: only count takes *", [_detail(path, f"{function}(*)")])
            return sa.func.count()
        aggregate: ColumnElement[Any] = getattr(sa.func, function)(
            self._column(argument, path, scope)
        )
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
                [_detail(path, "object value without $filter")],
            )
        inner = self.compile(value["$filter"], f"{path}.$filter", scope, depth + 1)
        if operator in {"", "in"}:
            return column.in_(inner)
        if operator == "not in":
            return column.not_in(inner)
        if operator in {"is", "is not"}:
            raise FilterError(
                f"{path}: '{operator}' takes null, not a query", [_detail(path, "is query")]
            )
        return _OPERATORS[operator](column, inner.scalar_subquery())

    def _scalar(self, value: Any, path: str, scope: Scope) -> Any:
        if isinstance(value, str) and value.startswith("$"):
            return self._column(value[1:], path, scope)
        if isinstance(value, str):
            # untyped, so that PostgreSQL reads it as the type it is compared with ('2017-04-05' as a
            # timestamp): psycopg 3 would otherwise send it cast to VARCHAR
            return sa.literal(value, sa.types.NullType())
        if value is None or isinstance(value, int | float | bool):
            return value
        raise FilterError(
            f'{path}: values are strings, numbers, booleans, null, lists or {{"$filter"}}',
            [_detail(path, f"unsupported value of type {type(value).__name__}")],
        )


def _detail(path: str, message: str) -> dict[str, str]:
    return {"path": path, "message": message}


def _as_list(value: Any, path: str, kind: type) -> list[Any]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    for index, item in enumerate(items):
        if not isinstance(item, kind):
            raise FilterError(
                f"{path}[{index}]: expected {kind.__name__}", [_detail(f"{path}[{index}]", "type")]
            )
    return items
