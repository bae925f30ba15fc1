"""The benchmark harness keeps working: its statistics, and one tiny run of all four benchmarks end to end
against the real services (sizes scaled down; no timing is asserted, only that every number was measured)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.harness import Row, Stats, percentile, table

ROOT = Path(__file__).resolve().parent.parent


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(list(reversed(values)), 100) == 100.0
    assert percentile([7.0], 99) == 7.0


def test_rows_report_median_spread_and_ratio() -> None:
    row = Row("x", "rate", "msg/s", Stats((10.0, 30.0, 20.0)), Stats((40.0, 40.0)), "bare")
    assert row.project.median == 20.0
    assert row.ratio == 0.5
    assert row.to_dict()["project"] == {
        "median": 20.0,
        "min": 10.0,
        "max": 30.0,
        "n": 3,
        "values": [10.0, 30.0, 20.0],
    }
    assert "20.0 [10.0-30.0]" in table([row]) and "0.5" in table([row])
    assert Row("x", "m", "s", Stats((1.0,))).ratio is None


def bench(pg_admin_url: str, rabbitmq_url: str, module: str, *args: str) -> str:
    """Run ``python -m module args`` against the test services; what it printed (it must succeed)."""
    env = {
        **os.environ,
        "F8A_BENCH_POSTGRES_URL": pg_admin_url,
        "F8A_BENCH_RABBITMQ_URL": rabbitmq_url,
    }
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_a_tiny_run_of_every_benchmark(
    pg_admin_url: str, rabbitmq_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "results.json"
    args = ["--scale", "0.01", "-r", "1", "--json", str(out), "--log-dir", str(tmp_path)]
    printed = bench(pg_admin_url, rabbitmq_url, "bench", *args)
    report = json.loads(out.read_text())
    benchmarks = {row["benchmark"] for row in report["rows"]}
    assert benchmarks == {
        "1 commands",
        "2 fan-out",
        "3 firing",
        "4 latency",
        "5 selinon",
        "6 dashboard",
    }
    for row in report["rows"]:
        assert row["project"]["median"] > 0, row
        assert row["limit"] is None or row["limit"]["median"] > 0, row
    assert report["machine"]["cpus"] >= 1
    assert "ratio" in printed


@pytest.mark.slow
def test_the_profile_and_the_postgresql_costs_measure_what_they_say(
    pg_admin_url: str, rabbitmq_url: str
) -> None:
    """A tiny run of bench.profile (with py-spy) and of bench.pgcost: every figure measured, the counts
    consistent with what was fired (one history row and one event per run at least)."""

    def run(*args: str) -> str:
        return bench(pg_admin_url, rabbitmq_url, *args)

    profiled = run("bench.profile", "running", "--count", "300", "--spy")
    assert "running @50:" in profiled and "samples holding the GIL" in profiled
    assert "thread: f8a-commands" in profiled
    two = run("bench.profile", "running", "--count", "300", "--replicas", "2")
    replica = re.search(r"other replicas (\d+)", two)
    assert replica and int(replica[1]) > 0, two  # the second worker's CPU, per create
    assert re.search(r"all processes \d+ us: \d+ cores carry at most \d+/s", two), two
    costs = json.loads(run("bench.pgcost", "--runs", "300"))
    reports = costs["catch_ups"]
    assert [r["replicas"] for r in reports] == [1, 3]
    pinned = costs["pinned_catch_ups"]
    assert [(r["replicas"], r["cpus"]) for r in pinned] == [(1, "1"), (3, "1")]
    for report in [*reports, *pinned]:
        assert report["rows inserted per run"] >= 2.0  # its history row and its event, at least
        assert report["WAL bytes per run"] > 0 and report["commits per run"] > 0
        assert report["PostgreSQL CPU ms per run"] > 0
    streamed = costs["stream"]
    assert streamed["runs"] == 300 and streamed["due per second"] == 500
    assert streamed["rows inserted per run"] >= 2.0 and streamed["commits per run"] > 0
    assert any("Index Scan using ix_f8a_jobs_next_run_time" in line for line in costs["claim_plan"])


@pytest.mark.slow
def test_a_tiny_run_of_the_scale_benchmark(
    pg_admin_url: str, rabbitmq_url: str, tmp_path: Path
) -> None:
    """The opt-in ten-million-job benchmark at 10,000 jobs: its template filled, copied and dropped with
    the copy, every figure measured, the counts exact, the claim plan printed."""
    out = tmp_path / "results.json"
    args = ["--only", "scale", "--scale", "0.001", "-r", "1", "--json", str(out)]
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")

    def databases() -> list[str]:
        """Drop the template (filled anew by each run of this test); the databases left."""
        with admin.connect() as connection:
            connection.execute(sa.text("DROP DATABASE IF EXISTS f8a_bench_template_10000"))
            names = ("f8a_bench_template_10000", "f8a_bench_template_10000_run")
            query = sa.text("SELECT datname FROM pg_database WHERE datname IN :names")
            query = query.bindparams(sa.bindparam("names", names, expanding=True))
            return list(connection.execute(query).scalars())

    databases()
    try:
        printed = bench(pg_admin_url, rabbitmq_url, "bench", *args, "--log-dir", str(tmp_path))
    finally:
        left = databases()
        admin.dispose()
    assert left == []
    rows = {row["metric"]: row for row in json.loads(out.read_text())["rows"]}
    assert rows["jobs_count - count(*), 10,000 stored"]["project"]["values"] == [0]
    measured = [row for metric, row in rows.items() if not metric.startswith("jobs_count")]
    assert len(measured) >= 13
    for row in measured:
        assert row["project"]["median"] > 0, row
    assert any(metric.startswith("fill of the template") for metric in rows)
    assert "Index Scan using ix_f8a_jobs_next_run_time" in printed


@pytest.mark.slow
def test_the_paired_comparison_and_the_adapter_costs_measure_what_they_say(
    pg_admin_url: str, rabbitmq_url: str
) -> None:
    """bench.paired of this checkout against itself (two workers, every command answered) and a tiny run
    of bench.amqpcost: every figure measured."""
    report = json.loads(
        bench(
            pg_admin_url,
            rabbitmq_url,
            "bench.paired",
            *("--base", str(ROOT), "--command", "job.list", "--count", "20", "--stored", "200"),
        )
    )
    assert report["command"] == "job.list" and report["count"] == 20
    for side in ("base", "this"):
        assert 0 < report[side]["p50_ms"] <= report[side]["p90_ms"] <= report[side]["p99_ms"]
    assert report["this/base"]["p50_ms"] > 0
    start_ups = json.loads(
        bench(
            pg_admin_url,
            rabbitmq_url,
            "bench.paired",
            *("--base", str(ROOT), "--command", "start-up", "--count", "2"),
        )
    )
    assert [len(start_ups[side]["all_s"]) for side in ("base", "this")] == [2, 2]
    assert start_ups["this"]["median_s"] > 0 and start_ups["this/base"]["median_s"] > 0
    costs = json.loads(bench(pg_admin_url, rabbitmq_url, "bench.amqpcost", "--count", "500"))
    assert costs["messages"] == 500
    assert all(value > 0 for value in costs.values()), costs
