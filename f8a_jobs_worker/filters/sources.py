"""The tables a ``$filter`` query reads (FROM and JOIN) and how its names resolve to their columns.

A name only ever selects an existing ``Table``/``Column`` object; anything else is a
:class:`~f8a_jobs_worker.errors.FilterError` naming the offending part by its JSON path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Table
from sqlalchemy.sql import ColumnElement, FromClause

from f8a_jobs_worker.errors import FilterError

NAME = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
_TABLE = re.compile(rf"^\s*({NAME})(?:\s+(?:as\s+)?({NAME}))?\s*$", re.IGNORECASE)
_COLUMN = re.compile(rf"^({NAME})(?:\.({NAME}))?$")
JOIN_KEYS = {"table", "on", "type", "join_type", "using"}
JOIN_TYPES = {"inner", "left", "right", "full", "cross"}
#: the original's json2sql spelling (``join_type``) and the type it means
JOIN_TYPE_SPELLINGS = {
    "join": "inner",
    "left_join": "left",
    "right_join": "right",
    "cross_join": "cross",
}


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

    def column(self, text: Any, path: str) -> ColumnElement[Any]:
        """``table.column`` (by alias or name, also of enclosing queries) or an unambiguous ``column``."""
        match = _COLUMN.match(text) if isinstance(text, str) else None
        if not match:
            raise FilterError(
                f"{path}: {text!r} is not a column name", [detail(path, "not a column name")]
            )
        qualifier, name = (
            (match.group(1), match.group(2)) if match.group(2) else (None, match.group(1))
        )
        if qualifier is not None:
            table = self.find(qualifier)
            if table is None:
                raise FilterError(
                    f"{path}: {qualifier!r} is not a table of this query",
                    [detail(path, f"unknown table {qualifier!r}")],
                )
            if name not in table.c:
                raise FilterError(
                    f"{path}: table {qualifier!r} has no column {name!r}",
                    [detail(path, f"unknown column {qualifier}.{name}")],
                )
            return table.c[name]
        owners = [t for t in self.tables.values() if name in t.c]
        if len(owners) == 1:
            return owners[0].c[name]
        problem = "is ambiguous; qualify it" if owners else "is not a column of this query's tables"
        raise FilterError(f"{path}: {name!r} {problem}", [detail(path, problem)])

    def add_table(self, tables: Mapping[str, Table], text: Any, path: str) -> FromClause:
        """The table ``text`` names (``name [AS alias]``), known from now on by its alias or name."""
        if not isinstance(text, str):
            raise FilterError(
                f"{path}: a table name is required", [detail(path, "expected a string")]
            )
        match = _TABLE.match(text)
        if not match:
            raise FilterError(
                f"{path}: {text!r} is not a table name (optionally 'AS alias')",
                [detail(path, "not a table name")],
            )
        name, alias = match.group(1), match.group(2)
        table = tables.get(name)
        if table is None:
            raise FilterError(
                f"{path}: unknown table {name!r} (known: {', '.join(tables)})",
                [detail(path, f"unknown table {name!r}")],
            )
        key = alias or name
        if key in self.tables:
            raise FilterError(
                f"{path}: {key!r} is named twice; give one an alias",
                [detail(path, "duplicate table name")],
            )
        source: FromClause = table.alias(alias) if alias else table
        self.tables[key] = source
        return source


def join_tables(
    tables: Mapping[str, Table], left: FromClause, join: Mapping[str, Any], path: str, scope: Scope
) -> FromClause:
    """``left`` joined with the table ``join`` names, on ``on`` column pairs or ``using`` columns."""
    unknown = sorted(set(join) - JOIN_KEYS)
    if unknown:
        hint = ' (YAML reads an unquoted on: as true; write "on":)' if "True" in unknown else ""
        raise FilterError(
            f"{path}: unknown join key(s) {', '.join(map(repr, unknown))}{hint}",
            [detail(f"{path}.{k}", "unknown key") for k in unknown],
        )
    kind = _join_type(join, path)
    left_scope = dict(scope.tables)
    right = scope.add_table(tables, join.get("table"), f"{path}.table")
    if kind == "cross":
        if join.get("on") is not None or join.get("using") is not None:
            raise FilterError(
                f"{path}: a cross join takes neither 'on' nor 'using'",
                [detail(path, "cross join with a condition")],
            )
        return sa.join(left, right, sa.true())
    if join.get("on") is not None:
        on = join["on"]
        if not isinstance(on, Mapping) or not on:
            raise FilterError(
                f"{path}.on: expected an object of column pairs",
                [detail(f"{path}.on", "expected {left_column: right_column}")],
            )
        clause = sa.and_(
            *(
                scope.column(lhs, f"{path}.on") == scope.column(rhs, f"{path}.on.{lhs}")
                for lhs, rhs in on.items()
            )
        )
    elif join.get("using") is not None:
        columns = as_list(join["using"], f"{path}.using", str)
        clause = sa.and_(
            *(_using(column, right, left_scope, f"{path}.using") for column in columns)
        )
    else:
        raise FilterError(
            f"{path}: a join needs 'on' or 'using' (natural joins are not supported)",
            [detail(path, "missing on/using")],
        )
    if kind == "right":
        return sa.join(right, left, clause, isouter=True)
    return sa.join(left, right, clause, isouter=kind in {"left", "full"}, full=kind == "full")


def _join_type(join: Mapping[str, Any], path: str) -> str:
    """``type`` (inner, left, right, full, cross) or the original's ``join_type`` (join, left_join,
    right_join, cross_join); both may be given if they agree."""
    kinds = []
    if "type" in join:
        kind = str(join["type"]).lower()
        if kind not in JOIN_TYPES:
            raise FilterError(
                f"{path}.type: join type must be one of {sorted(JOIN_TYPES)}",
                [detail(f"{path}.type", "unknown join type")],
            )
        kinds.append(kind)
    if "join_type" in join:
        spelled = str(join["join_type"]).lower()
        if spelled not in JOIN_TYPE_SPELLINGS:
            raise FilterError(
                f"{path}.join_type: must be one of {sorted(JOIN_TYPE_SPELLINGS)}",
                [detail(f"{path}.join_type", "unknown join type")],
            )
        kinds.append(JOIN_TYPE_SPELLINGS[spelled])
    if len(set(kinds)) > 1:
        raise FilterError(
            f"{path}: type {kinds[0]!r} and join_type {join['join_type']!r} disagree",
            [detail(path, "conflicting join types")],
        )
    return kinds[0] if kinds else "inner"


def _using(
    column: str, right: FromClause, left_tables: Mapping[str, FromClause], path: str
) -> ColumnElement[bool]:
    owners = [t for t in left_tables.values() if column in t.c]
    if column not in right.c or len(owners) != 1:
        raise FilterError(
            f"{path}: {column!r} must be a column of the joined table and of exactly one "
            "table before it",
            [detail(path, f"bad using column {column!r}")],
        )
    return owners[0].c[column] == right.c[column]


def detail(path: str, message: str) -> dict[str, str]:
    return {"path": path, "message": message}


def as_list(value: Any, path: str, kind: type) -> list[Any]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    for index, item in enumerate(items):
        if not isinstance(item, kind):
            raise FilterError(
                f"{path}[{index}]: expected {kind.__name__}", [detail(f"{path}[{index}]", "type")]
            )
    return items
