"""$filter queries against seeded analytics data in PostgreSQL: every key and operator with exact rows, the
five README queries, and a corpus of hostile input that must never reach the database as SQL text."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from f8a_jobs_worker.errors import FilterError
from f8a_jobs_worker.filters.compiler import FilterCompiler
from f8a_jobs_worker.filters.demo import create_demo_data
from f8a_jobs_worker.filters.query import FilterRunner

EXAMPLES = Path(__file__).parents[1] / "docs" / "filter-examples"


@pytest.fixture
def runner(database_url: str):
    engine = sa.create_engine(database_url)
    create_demo_data(engine)
    yield FilterRunner(engine)
    engine.dispose()


def rows(runner: FilterRunner, query: dict[str, Any]) -> list[dict[str, Any]]:
    return runner.expand(query)["matched"]


def ids(runner: FilterRunner, table: str, where: dict[str, Any], column: str = "id") -> list[int]:
    query = {
        "table": table,
        "select": f"{table}.{column}",
        "where": where,
        "order_by": f"{table}.{column}",
    }
    return [row[column] for row in rows(runner, query)]


@pytest.mark.parametrize(
    ("table", "where", "expected"),
    [
        ("versions", {"versions.identifier": "1.7.1"}, [1]),
        ("versions", {"versions.identifier =": "1.7.1"}, [1]),
        ("versions", {"versions.package_id !=": 1}, [3, 4, 5, 6, 7, 8]),
        ("versions", {"versions.package_id <>": 1}, [3, 4, 5, 6, 7, 8]),
        ("versions", {"versions.id <": 3}, [1, 2]),
        ("versions", {"versions.id >": 6}, [7, 8]),
        ("versions", {"versions.id <=": 2}, [1, 2]),
        ("versions", {"versions.id >=": 8}, [8]),
        ("analyses", {"analyses.finished_at is": None}, [2, 4, 5]),
        ("analyses", {"analyses.finished_at is not": None}, [1, 3, 6, 7, 8]),
        ("analyses", {"analyses.finished_at": None}, [2, 4, 5]),
        ("versions", {"versions.id in": [2, 4, 99]}, [2, 4]),
        ("versions", {"versions.id": [2, 4]}, [2, 4]),
        ("versions", {"versions.id not in": [1, 2, 3, 4, 5, 6]}, [7, 8]),
        ("versions", {"versions.id in": []}, []),
        ("packages", {"packages.name like": "%re%"}, [5]),
        ("packages", {"packages.name not like": "%-%"}, [3, 4, 5, 6]),
        ("packages", {"packages.name similar to": "(flask|requests)"}, [5, 6]),
        ("packages", {"packages.name not similar to": "(flask|requests)%"}, [1, 2, 3, 4]),
        ("packages", {"packages.name ~": "^s"}, [1]),
        ("packages", {"packages.name ~*": "^S"}, [1]),
        ("packages", {"packages.name !~": "[-:.]"}, [5, 6]),
        ("packages", {"packages.name !~*": "^[A-R]"}, [1]),
        ("worker_results", {"worker_results.error": True, "worker_results.worker": "digests"}, [6]),
        ("analyses", {"analyses.started_at >": "2017-04-05 00:00:00"}, [3, 6, 8]),
        ("analyses", {"analyses.id": "$analyses.version_id"}, [1, 2, 3, 4, 5, 6]),
    ],
)
def test_operators(
    runner: FilterRunner, table: str, where: dict[str, Any], expected: list[int]
) -> None:
    assert ids(runner, table, where) == expected


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("inner", 3), ("left", 6), ("right", 3), ("full", 6)],
)
def test_join_types(runner: FilterRunner, kind: str, expected: int) -> None:
    query = {
        "table": "packages",
        "select": ["packages.name", "monitored_upstreams.url"],
        "joins": [
            {
                "table": "monitored_upstreams",
                "type": kind,
                "on": {"packages.id": "monitored_upstreams.package_id"},
            }
        ],
    }
    found = rows(runner, query)
    assert len(found) == expected
    assert {r["url"] for r in found if r["name"] == "serve-static"} == {
        "https://github.com/expressjs/serve-static"
    }


def test_join_using_and_aliases(runner: FilterRunner) -> None:
    query = {
        "table": "versions AS v",
        "select": ["v.identifier as version", "p.name as name"],
        "joins": [{"table": "packages AS p", "using": "id"}],
        "order_by": "version",
    }
    assert [r["version"] for r in rows(runner, query)] == [
        "1.0.0",
        "1.7.1",
        "1.8.0",
        "2.3.9",
        "2.31.0",
        "4.12",
    ]


def test_count_distinct_group_order_limit_offset(runner: FilterRunner) -> None:
    assert rows(runner, {"table": "analyses", "count": True}) == [{"count": 8}]
    assert rows(
        runner, {"table": "analyses", "count": True, "where": {"analyses.finished_at": None}}
    ) == [{"count": 3}]
    distinct = rows(
        runner,
        {
            "table": "worker_results",
            "select": "worker_results.worker",
            "distinct": True,
            "order_by": "worker_results.worker desc",
        },
    )
    assert [r["worker"] for r in distinct] == ["security", "metadata", "digests"]
    grouped = rows(
        runner,
        {
            "table": "versions",
            "select": "versions.package_id",
            "group_by": "versions.package_id",
            "order_by": "versions.package_id",
        },
    )
    assert [r["package_id"] for r in grouped] == [1, 2, 3, 4, 5, 6]
    page = rows(
        runner,
        {
            "table": "versions",
            "select": "versions.id",
            "order_by": "versions.id desc",
            "limit": 3,
            "offset": 2,
        },
    )
    assert [r["id"] for r in page] == [6, 5, 4]


def test_nested_filter_with_comparison_and_in(runner: FilterRunner) -> None:
    newest = {
        "table": "analyses",
        "select": "analyses.version_id",
        "where": {"analyses.started_at >=": "2017-05-01 00:00:00"},
    }
    assert ids(runner, "versions", {"versions.id": {"$filter": newest}}) == [6]
    assert ids(runner, "versions", {"versions.id =": {"$filter": newest}}) == [6]


def _example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())["$filter"]


def triples(found: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    return Counter((r["ecosystem"], r["name"], r["version"]) for r in found)


def test_readme_query_failed_analyses(runner: FilterRunner) -> None:
    found = rows(runner, _example("failed-analyses"))
    assert triples(found) == Counter(
        {("npm", "serve-static", "1.8.0"): 2, ("maven", "net.iharder:base64", "2.3.9"): 1}
    )


def test_readme_query_started_after_date(runner: FilterRunner) -> None:
    assert triples(rows(runner, _example("started-after-date"))) == Counter(
        {
            ("npm", "serve-static", "1.8.0"): 1,
            ("npm", "left-pad", "1.0.0"): 1,
            ("maven", "net.iharder:base64", "2.3.9"): 1,
            ("pypi", "requests", "2.31.0"): 1,
            ("pypi", "flask", "3.0.0"): 1,
            ("pypi", "requests", "2.32.0"): 1,
        }
    )


def test_readme_query_unfinished(runner: FilterRunner) -> None:
    assert triples(rows(runner, _example("unfinished-analyses"))) == Counter(
        {
            ("npm", "serve-static", "1.8.0"): 1,
            ("maven", "net.iharder:base64", "2.3.9"): 1,
            ("maven", "junit:junit", "4.12"): 1,
        }
    )


def test_readme_query_count(runner: FilterRunner) -> None:
    assert rows(runner, _example("count-analyses")) == [{"count": 8}]


def test_readme_query_unfinished_without_newer_success(runner: FilterRunner) -> None:
    found = rows(runner, _example("unfinished-without-newer-success"))
    assert triples(found) == Counter(
        {("npm", "serve-static", "1.8.0"): 1, ("maven", "junit:junit", "4.12"): 1}
    )


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.json")))
def test_every_readme_query_shows_bound_parameters(runner: FilterRunner, name: str) -> None:
    sql = runner.sql(_example(name))
    values = [
        v
        for v in _example(name).get("where", {}).values()
        if isinstance(v, str) and not v.startswith("$")
    ]
    for value in values:  # null and booleans become IS NULL / true, constants of the compiler
        assert value not in sql["query"]
        assert value in sql["params"].values()
        assert "%(" in sql["query"]


def test_expand_is_capped(runner: FilterRunner) -> None:
    capped = runner.expand({"table": "versions"}, limit=3)
    assert (len(capped["matched"]), capped["truncated"]) == (3, True)
    assert runner.expand({"table": "versions"})["truncated"] is False


def _nested(levels: int) -> dict[str, Any]:
    query: dict[str, Any] = {"table": "versions", "select": "versions.id"}
    for _ in range(levels):
        query = {
            "table": "versions",
            "select": "versions.id",
            "where": {"versions.id in": {"$filter": query}},
        }
    return query


HOSTILE: list[tuple[str, dict[str, Any]]] = [
    (
        "quote in value",
        {"table": "packages", "where": {"packages.name": "x'; DROP TABLE packages; --"}},
    ),
    (
        "semicolon in value",
        {"table": "packages", "where": {"packages.name like": "%; SELECT 1; --"}},
    ),
    ("quote in list", {"table": "packages", "where": {"packages.name in": ["a'", 'b"; DROP']}}),
    ("unknown table", {"table": "users"}),
    ("schema-qualified catalogue", {"table": "pg_catalog.pg_user"}),
    ("information_schema", {"table": "information_schema.tables"}),
    ("pg_shadow", {"table": "pg_shadow"}),
    ("table with statement", {"table": "packages; DROP TABLE packages"}),
    ("alias with statement", {"table": "packages AS p; DROP TABLE packages"}),
    ("quoted table", {"table": '"packages"'}),
    ("function select", {"table": "packages", "select": "count(*)"}),
    ("sleep select", {"table": "packages", "select": "pg_sleep(10)"}),
    ("version select", {"table": "packages", "select": "version()"}),
    ("star select", {"table": "packages", "select": "*"}),
    ("expression select", {"table": "packages", "select": "packages.id + 1"}),
    ("label injection", {"table": "packages", "select": "packages.id as x; DROP TABLE packages"}),
    (
        "column injection in where",
        {"table": "packages", "where": {"packages.name = 'a' OR 1=1 --": 1}},
    ),
    ("unknown operator", {"table": "packages", "where": {"packages.id ||": 1}}),
    ("unknown column", {"table": "packages", "where": {"packages.password": 1}}),
    ("catalogue column ref", {"table": "packages", "where": {"packages.id": "$pg_catalog.oid"}}),
    (
        "join to catalogue",
        {
            "table": "packages",
            "joins": [{"table": "pg_class", "on": {"packages.id": "pg_class.oid"}}],
        },
    ),
    (
        "on with expression",
        {"table": "packages", "joins": [{"table": "versions", "on": {"packages.id": "1 OR 1=1"}}]},
    ),
    ("natural join", {"table": "packages", "joins": [{"table": "versions"}]}),
    ("order injection", {"table": "packages", "order_by": "packages.name; DROP TABLE packages"}),
    ("limit injection", {"table": "packages", "limit": "10; DROP TABLE packages"}),
    ("negative offset", {"table": "packages", "offset": -1}),
    ("unknown key", {"table": "packages", "for_update": True}),
    ("object value", {"table": "packages", "where": {"packages.id": {"raw": "1=1"}}}),
    ("huge in list", {"table": "packages", "where": {"packages.id in": list(range(20_000))}}),
    ("deep nesting", _nested(6)),
    ("non-ascii name", {"table": "p\u0430ckages"}),  # a Cyrillic a
    ("comment in name", {"table": "packages--"}),
]


@pytest.mark.parametrize(("case", "query"), HOSTILE, ids=[c for c, _ in HOSTILE])
def test_hostile_input_is_refused_or_bound(
    runner: FilterRunner, case: str, query: dict[str, Any]
) -> None:
    try:
        sql = runner.sql(query)
    except FilterError as exc:
        assert exc.code == "filter_error"
        assert exc.details and exc.details[0]["path"].startswith("$")
        return
    text = sql["query"].upper()
    assert "DROP" not in text and "--" not in text and ";" not in text, sql
    assert runner.expand(query)["matched"] == []
    assert rows(runner, {"table": "packages", "count": True}) == [{"count": 6}]


def test_a_large_in_list_below_the_cap_is_bound(runner: FilterRunner) -> None:
    sql = runner.sql({"table": "packages", "where": {"packages.id in": list(range(10_000))}})
    assert len(sql["params"]) == 10_000
    assert (
        len(rows(runner, {"table": "packages", "where": {"packages.id in": list(range(10_000))}}))
        == 6
    )


def test_allow_list_limits_tables(runner: FilterRunner) -> None:
    narrow = FilterCompiler(["packages"])
    narrow.compile({"table": "packages"})
    with pytest.raises(FilterError, match="unknown table 'versions'"):
        narrow.compile({"table": "versions"})


def test_queries_run_read_only(runner: FilterRunner) -> None:
    with runner.read_only() as connection:
        assert connection.execute(sa.text("SHOW transaction_read_only")).scalar() == "on"
        with pytest.raises(sa.exc.InternalError, match="read-only transaction"):
            connection.execute(sa.text("DELETE FROM packages"))
    assert rows(runner, {"table": "packages", "count": True}) == [{"count": 6}]


def test_a_slow_query_is_cancelled_as_a_filter_error(runner: FilterRunner) -> None:
    impatient = FilterRunner(runner.engine, timeout_s=0.1)
    cross = {
        "table": "versions AS v0",
        "count": True,
        "joins": [
            {"table": f"versions AS v{n}", "on": {f"v{n}.id": f"v{n}.id"}} for n in range(1, 9)
        ],
    }
    with pytest.raises(FilterError, match=r"longer than 0\.1s"):
        impatient.expand(cross)


def test_demo_data_command(database_url: str) -> None:
    from click.testing import CliRunner

    from f8a_jobs_worker.cli.main import cli

    result = CliRunner().invoke(cli, ["demo-data", "--database-url", database_url], env={})
    assert result.exit_code == 0, result.output
    assert "8 analyses" in result.output and "7 worker_results" in result.output
    engine = sa.create_engine(database_url)
    try:
        runner = FilterRunner(engine)
        assert rows(runner, _example("count-analyses")) == [{"count": 8}]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("spelling", "kind"),
    [("join", "inner"), ("left_join", "left"), ("right_join", "right")],
)
def test_the_original_join_type_spellings(runner: FilterRunner, spelling: str, kind: str) -> None:
    def query(key: str, value: str) -> dict[str, Any]:
        return {
            "table": "packages",
            "select": ["packages.name", "monitored_upstreams.url"],
            "joins": [
                {
                    "table": "monitored_upstreams",
                    key: value,
                    "on": {"packages.id": "monitored_upstreams.package_id"},
                }
            ],
            "order_by": ["packages.name", "monitored_upstreams.url"],
        }

    assert rows(runner, query("join_type", spelling)) == rows(runner, query("type", kind))
    both = query("type", kind)
    both["joins"][0]["join_type"] = spelling
    assert rows(runner, both) == rows(runner, query("type", kind))


def test_cross_join_and_conflicting_join_types(runner: FilterRunner) -> None:
    crossed = {
        "table": "ecosystems",
        "select": ["ecosystems.name as ecosystem", "e2.name as other"],
        "joins": [{"table": "ecosystems AS e2", "join_type": "cross_join"}],
    }
    assert len(rows(runner, crossed)) == 9  # 3 x 3
    with pytest.raises(FilterError, match="takes neither 'on' nor 'using'"):
        rows(runner, {**crossed, "joins": [{"table": "packages", "type": "cross", "using": "id"}]})
    conflicting = {
        "table": "packages",
        "joins": [
            {
                "table": "ecosystems",
                "type": "left",
                "join_type": "join",
                "on": {"packages.ecosystem_id": "ecosystems.id"},
            }
        ],
    }
    with pytest.raises(FilterError, match="disagree") as caught:
        rows(runner, conflicting)
    assert caught.value.details == [{"path": "$.joins[0]", "message": "conflicting join types"}]


def test_having_compares_groups(runner: FilterRunner) -> None:
    """Ecosystems with more than two package versions; having takes aggregates and grouped columns."""
    query = {
        "table": "versions",
        "select": ["ecosystems.name as ecosystem"],
        "joins": [
            {"table": "packages", "on": {"versions.package_id": "packages.id"}},
            {"table": "ecosystems", "on": {"packages.ecosystem_id": "ecosystems.id"}},
        ],
        "group_by": ["ecosystems.name"],
        "having": {"count(*) >": 2},
        "order_by": ["ecosystems.name"],
    }
    assert rows(runner, query) == [{"ecosystem": "npm"}, {"ecosystem": "pypi"}]
    query["having"] = {"count(versions.id) >=": 3, "max(versions.id) <": 8}
    assert rows(runner, query) == [{"ecosystem": "npm"}]
    query["having"] = {"ecosystems.name": "pypi"}
    assert rows(runner, query) == [{"ecosystem": "pypi"}]
    for bad, message in (
        ({"sum(*) >": 1}, "only count takes"),
        ({"count(versions.nope) >": 1}, "has no column"),
        ({"lower(ecosystems.name)": "npm"}, "is not"),
        ({"count(*) ===": 1}, "unknown operator"),
    ):
        query["having"] = bad
        with pytest.raises(FilterError, match=message):
            rows(runner, query)
    # aggregates stay out of where
    query["having"] = None
    query["where"] = {"count(*) >": 2}
    with pytest.raises(FilterError, match="is not 'column"):
        rows(runner, query)


def test_analyses_report_counts_the_demo_data(runner: FilterRunner) -> None:
    from f8a_jobs_worker.errors import ValidationFailed
    from f8a_jobs_worker.filters.report import analyses_report

    assert analyses_report(runner, "npm") == {
        "ecosystem": "npm",
        "from_date": None,
        "to_date": None,
        "report": {
            "analyses": 3,
            "analyses_finished": 2,
            "analyses_unfinished": 1,
            "analyses_unique": 3,
            "analyses_finished_unique": 2,
            "packages": 2,
            "packages_finished": 2,
            "versions": 3,
        },
    }
    maven = analyses_report(runner, "maven", "2017-04-01", "2017-04-05T00:00:00")
    assert (maven["from_date"], maven["to_date"]) == ("2017-04-01T00:00:00", "2017-04-05T00:00:00")
    assert maven["report"] == {
        "analyses": 2,  # the base64 analyses of April 1st and 3rd; junit's of March is outside
        "analyses_finished": 1,
        "analyses_unfinished": 1,
        "analyses_unique": 1,
        "analyses_finished_unique": 1,
        "packages": 2,
        "packages_finished": 1,
        "versions": 2,
    }
    assert analyses_report(runner, "nuget")["report"] == dict.fromkeys(maven["report"], 0)
    with pytest.raises(ValidationFailed, match="from_date"):
        analyses_report(runner, "npm", "yesterday")
